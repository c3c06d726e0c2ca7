"""The users service's FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from pasar_kit.app import service_app
from pasar_kit.auth import TokenVerifier
from pasar_kit.db import Database
from pasar_kit.workers import Periodic
from pasar_users import keys, tokens
from pasar_users.clients import ServiceClients
from pasar_users.grants import Authority
from pasar_users.keys import KeyRing, RingKeys
from pasar_users.passwords import Passwords
from pasar_users.routes import admin, auth, internal, me
from pasar_users.settings import Settings
from pasar_users.throttle import Throttle, ThrottlePolicy
from pasar_users.tokens import TokenPolicy

MIGRATIONS = "pasar_users:migrations"

log = logging.getLogger("pasar.users")


def _key_ring(settings: Settings) -> KeyRing:
    if settings.signing_key_pem is not None:
        assert settings.signing_key_id is not None
        pem = settings.signing_key_pem.get_secret_value().encode()
        return KeyRing.from_pem(settings.signing_key_id, pem)
    return KeyRing()


async def _load_keys(db: Database, ring: KeyRing) -> int:
    """Load the keys from the database (creating the first one); safe to call again."""
    if ring.fixed:
        return 0
    ring.replace(await keys.ensure_signing_key(db=db))
    return 0


async def _signing_key_ready(app: FastAPI) -> None:
    authority: Authority = app.state.authority
    if not authority.keys.loaded:
        # Started while the database was unreachable: try again now.
        await _load_keys(authority.db, authority.keys)
    if not authority.keys.loaded:
        raise RuntimeError("no signing key loaded")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url, pool_size=settings.database_pool_size)
        passwords = Passwords.from_settings(settings)
        ring = _key_ring(settings)
        authority = Authority(
            db=db,
            passwords=passwords,
            keys=ring,
            policy=TokenPolicy(
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                access_ttl_seconds=settings.access_token_ttl_seconds,
                refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
            ),
            throttle=Throttle(db, _throttle_policy(settings)),
            clients=ServiceClients(settings.service_clients, passwords),
        )
        app.state.db = db
        app.state.passwords = passwords
        app.state.authority = authority
        # Our own tokens are verified against the keys in memory: no HTTP to ourselves.
        app.state.verifier = TokenVerifier(
            RingKeys(ring, db),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        try:
            await _load_keys(db, ring)
        except (SQLAlchemyError, OSError):
            log.exception("could not load the signing keys; /readyz retries")
        await passwords.prepare()

        jobs: list[Periodic] = []
        if settings.workers_enabled:
            jobs = [
                Periodic(
                    "reload-signing-keys", lambda: _load_keys(db, ring), settings.key_reload_seconds
                ),
                Periodic(
                    "purge-expired",
                    lambda: _purge(db, authority.throttle),
                    settings.purge_interval_seconds,
                ),
            ]
            for job in jobs:
                job.start()
        try:
            yield
        finally:
            for job in jobs:
                await job.stop()
            passwords.close()
            await db.dispose()

    app = service_app(
        "users",
        title="pasar User-Service",
        description="Accounts, the OAuth 2.0 token endpoint, signing keys (JWKS) and "
        "the notification inbox.",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        ready_checks=[_signing_key_ready],
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
    )
    app.include_router(auth.router)
    app.include_router(me.router)
    app.include_router(admin.router)
    app.include_router(internal.router)
    return app


def _throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        window_seconds=settings.login_window_seconds,
        pair_free_failures=settings.login_pair_free_failures,
        base_delay_seconds=settings.login_base_delay_seconds,
        pair_max_delay_seconds=settings.login_pair_max_delay_seconds,
        account_soft_limit=settings.login_account_soft_limit,
        account_max_delay_seconds=settings.login_account_max_delay_seconds,
        address_max_failures=settings.login_address_max_failures,
        registrations_per_address=settings.registrations_per_address,
        registration_window_seconds=settings.registration_window_seconds,
    )


async def _purge(db: Database, throttle: Throttle) -> int:
    await tokens.purge_expired(db=db)
    await throttle.purge()
    return 0  # never "a full batch": wait for the next tick
