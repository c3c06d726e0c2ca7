"""The Product-Service application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI

from pasar_kit.app import service_app
from pasar_kit.auth import PolledRevocations, RemoteJWKS, TokenVerifier
from pasar_kit.db import Database, utcnow
from pasar_kit.workers import Periodic
from pasar_products.listing import TotalsCache
from pasar_products.reservations import expire_reservations
from pasar_products.routes import admin, catalogue, reservations
from pasar_products.settings import Settings

MIGRATIONS = "pasar_products:migrations"
log = logging.getLogger("pasar.products")


def revocations_for(settings: Settings) -> PolledRevocations | None:
    """The users service's token revocations, polled with this service's credentials."""
    return PolledRevocations.from_settings(settings, users_url=settings.users_url)


def default_verifier(
    settings: Settings, revocations: PolledRevocations | None = None
) -> TokenVerifier:
    """Tokens checked offline against the users service's JWKS (cached), and against
    the revocations it publishes (polled)."""
    if not settings.jwks_url:
        raise ValueError("PRODUCTS_JWKS_URL must be set")
    keys = RemoteJWKS(
        settings.jwks_url,
        cache_seconds=settings.jwks_cache_seconds,
        timeout=settings.http_timeout,
    )
    return TokenVerifier(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        revocations=revocations,
    )


def create_app(
    settings: Settings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The app; nothing connects until its lifespan starts. ``clock`` is for tests."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url, pool_size=settings.database_pool_size)
        app.state.db = db
        revocations = None
        if verifier is None:
            revocations = revocations_for(settings)
            if revocations is None:
                log.warning(
                    "PRODUCTS_CLIENT_ID / PRODUCTS_CLIENT_SECRET are not set: token "
                    "revocations are not polled, so a demoted admin keeps admin powers "
                    "here until their access token expires"
                )
            else:
                await revocations.start()
        app.state.verifier = verifier or default_verifier(settings, revocations)
        jobs: list[Periodic] = []
        if settings.workers_enabled:

            async def expire() -> int:
                return await expire_reservations(
                    db=db, now=clock(), batch_size=settings.expiry_batch_size
                )

            jobs.append(Periodic("reservation-expiry", expire, settings.expiry_interval_seconds))
        for job in jobs:
            job.start()
        app.state.jobs = jobs
        try:
            yield
        finally:
            for job in jobs:
                await job.stop()
            if revocations is not None:
                await revocations.stop()
            await db.dispose()

    app = service_app(
        "products",
        title="pasar Product-Service",
        description="Catalogue, search, stock and stock reservations.",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.totals = TotalsCache(settings.list_total_cache_seconds)
    app.include_router(catalogue.router)
    app.include_router(reservations.router)
    app.include_router(admin.router)
    return app
