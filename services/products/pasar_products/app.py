"""The Product-Service application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI

from pasar_kit.app import service_app
from pasar_kit.auth import RemoteJWKS, TokenVerifier
from pasar_kit.db import Database, utcnow
from pasar_kit.workers import Periodic
from pasar_products.listing import TotalsCache
from pasar_products.reservations import expire_reservations
from pasar_products.routes import admin, catalogue, reservations
from pasar_products.settings import Settings

MIGRATIONS = "pasar_products:migrations"


def default_verifier(settings: Settings) -> TokenVerifier:
    """Tokens checked offline against the users service's JWKS (cached)."""
    if not settings.jwks_url:
        raise ValueError("PRODUCTS_JWKS_URL must be set")
    keys = RemoteJWKS(
        settings.jwks_url,
        cache_seconds=settings.jwks_cache_seconds,
        timeout=settings.http_timeout,
    )
    return TokenVerifier(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience)


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
        app.state.verifier = verifier or default_verifier(settings)
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
            await db.dispose()

    app = service_app(
        "products",
        title="pasar Product-Service",
        description="Catalogue, search, stock and stock reservations.",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.totals = TotalsCache(settings.list_total_cache_seconds)
    app.include_router(catalogue.router)
    app.include_router(reservations.router)
    app.include_router(admin.router)
    return app
