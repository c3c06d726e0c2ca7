"""The Product-Service application factory."""

from __future__ import annotations

import re

from fastapi import FastAPI

from pasar_kit.app import runtime_lifespan, service_app
from pasar_kit.auth import TokenVerifier
from pasar_kit.db import Clock, utcnow
from pasar_kit.middleware import UploadRoute
from pasar_products.bootstrap import build_runtime
from pasar_products.problems import ImageTooLarge
from pasar_products.routes import admin, catalogue, images, reservations
from pasar_products.settings import Settings

MIGRATIONS = "pasar_products:migrations"
# Image uploads may be larger than other bodies (PRODUCTS_IMAGE_MAX_BYTES).
UPLOAD_PATH = re.compile(r"/products/[^/]+/images")


def create_app(
    settings: Settings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    clock: Clock = utcnow,
) -> FastAPI:
    """The app; nothing connects until its lifespan starts. ``verifier`` and ``clock``
    are for tests."""
    settings = settings or Settings()

    app = service_app(
        "products",
        title="pasar Product-Service",
        description="Catalogue, search, stock and stock reservations.",
        lifespan=runtime_lifespan(lambda: build_runtime(settings, verifier=verifier, clock=clock)),
        max_body_bytes=settings.max_body_bytes,
        uploads=[
            UploadRoute(
                "POST",
                UPLOAD_PATH,
                settings.image_max_bytes + images.MULTIPART_OVERHEAD,
                ImageTooLarge,
            )
        ],
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
    )
    app.include_router(catalogue.router)
    app.include_router(reservations.router)
    app.include_router(images.router)
    app.include_router(admin.router)
    return app
