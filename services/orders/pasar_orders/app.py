"""The Order-Service application factory."""

from __future__ import annotations

from fastapi import FastAPI

from pasar_kit.app import runtime_lifespan, service_app
from pasar_orders.bootstrap import build_runtime
from pasar_orders.routes import router
from pasar_orders.settings import Settings

MIGRATIONS = "pasar_orders:migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; nothing connects until its lifespan starts."""
    settings = settings or Settings()

    async def credentials_configured(_app: FastAPI) -> None:
        if not settings.client_id or settings.client_secret is None:
            raise RuntimeError("ORDERS_CLIENT_ID / ORDERS_CLIENT_SECRET are not set")

    app = service_app(
        "orders",
        title="pasar Order-Service",
        description="Order placement (a saga over users and products), tracking, "
        "notifications and payments.",
        lifespan=runtime_lifespan(lambda: build_runtime(settings)),
        max_body_bytes=settings.max_body_bytes,
        ready_checks={"credentials": credentials_configured},
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
    )
    app.include_router(router)
    return app
