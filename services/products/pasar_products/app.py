"""The Product-Service application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI

from pasar_kit.app import service_app
from pasar_kit.auth import TokenVerifier
from pasar_kit.db import utcnow
from pasar_products.bootstrap import build_runtime
from pasar_products.routes import admin, catalogue, reservations
from pasar_products.settings import Settings

MIGRATIONS = "pasar_products:migrations"


def create_app(
    settings: Settings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The app; nothing connects until its lifespan starts. ``verifier`` and ``clock``
    are for tests."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings, verifier=verifier, clock=clock)
        app.state.runtime = runtime
        # The kit's readiness check pings app.state.db; its auth reads app.state.verifier.
        app.state.db = runtime.db
        app.state.verifier = runtime.verifier
        await runtime.start()
        try:
            yield
        finally:
            await runtime.close()

    app = service_app(
        "products",
        title="pasar Product-Service",
        description="Catalogue, search, stock and stock reservations.",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
    )
    app.include_router(catalogue.router)
    app.include_router(reservations.router)
    app.include_router(admin.router)
    return app
