"""The User-Service application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pasar_kit.app import service_app
from pasar_users.bootstrap import Runtime, build_runtime
from pasar_users.routes import admin, auth, internal, me
from pasar_users.settings import Settings

MIGRATIONS = "pasar_users:migrations"


async def _signing_key_ready(app: FastAPI) -> None:
    runtime: Runtime = app.state.runtime
    await runtime.signing_key_ready()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; nothing connects until its lifespan starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings)
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
        "users",
        title="pasar User-Service",
        description="Accounts, the OAuth 2.0 token endpoint, signing keys (JWKS) and "
        "the notification inbox.",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        ready_checks={"signing_key": _signing_key_ready},
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
    )
    app.include_router(auth.router)
    app.include_router(me.router)
    app.include_router(admin.router)
    app.include_router(internal.router)
    return app
