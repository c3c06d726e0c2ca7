"""The Order-Service application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pasar_kit.app import service_app
from pasar_kit.auth import PolledRevocations, RemoteJWKS, TokenVerifier
from pasar_kit.problems import DependencyUnavailable
from pasar_orders.bootstrap import build_runtime
from pasar_orders.routes import router
from pasar_orders.settings import Settings

MIGRATIONS = "pasar_orders:migrations"
log = logging.getLogger("pasar.orders")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings)
        app.state.runtime = runtime
        app.state.db = runtime.db
        jwks = RemoteJWKS(
            settings.effective_jwks_url,
            cache_seconds=settings.jwks_cache_seconds,
            timeout=settings.http_timeout,
        )
        # A demoted or deactivated user's tokens stop working within a poll or two.
        revocations = PolledRevocations.from_settings(settings, users_url=settings.users_url)
        app.state.verifier = TokenVerifier(
            jwks,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            revocations=revocations,
        )
        # Fetch the keys now (best effort), so tokens still verify if the User-Service
        # goes down before this replica's first request. Users being slow or down must
        # not stop this replica from starting: the first token fetches them again.
        try:
            await jwks.get("")
        except DependencyUnavailable as exc:
            log.warning("signing keys not fetched at start-up: %s", exc)
        if revocations is not None:
            await revocations.start()
        if settings.workers_enabled:
            runtime.start_jobs()
        try:
            yield
        finally:
            if revocations is not None:
                await revocations.stop()
            await runtime.close()

    async def credentials_configured(_app: FastAPI) -> None:
        if not settings.client_id or settings.client_secret is None:
            raise RuntimeError("ORDERS_CLIENT_ID / ORDERS_CLIENT_SECRET are not set")

    app = service_app(
        "orders",
        title="pasar Order-Service",
        description="Order placement (a saga over users and products), tracking, "
        "notifications and payments.",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        ready_checks={"credentials": credentials_configured},
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
    )
    app.include_router(router)
    return app
