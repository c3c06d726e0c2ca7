"""The User-Service application factory."""

from __future__ import annotations

from fastapi import FastAPI

from pasar_kit.app import runtime_lifespan, service_app
from pasar_kit.db import Clock, utcnow
from pasar_users.bootstrap import Runtime, build_runtime
from pasar_users.routes import admin, auth, deliveries, internal, me
from pasar_users.settings import Settings

MIGRATIONS = "pasar_users:migrations"


async def _signing_key_ready(app: FastAPI) -> None:
    runtime: Runtime = app.state.runtime
    await runtime.signing_key_ready()


def create_app(settings: Settings | None = None, *, clock: Clock = utcnow) -> FastAPI:
    """The app; nothing connects until its lifespan starts. ``clock`` is for tests."""
    settings = settings or Settings()

    app = service_app(
        "users",
        title="pasar User-Service",
        description="Accounts, the OAuth 2.0 token endpoint, signing keys (JWKS) and "
        "the notification inbox.",
        lifespan=runtime_lifespan(lambda: build_runtime(settings, clock=clock)),
        max_body_bytes=settings.max_body_bytes,
        ready_checks={"signing_key": _signing_key_ready},
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
    )
    app.include_router(auth.router)
    app.include_router(me.router)
    app.include_router(admin.router)
    app.include_router(deliveries.router)
    app.include_router(internal.router)
    return app
