"""The production token path: the JWKS fetched over HTTP from a server, then cached."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pasar_kit.auth import SigningKey, access_claims, jwks_document
from pasar_kit.db import Database
from pasar_kit.testing import lifespan_of, serve
from pasar_products.app import create_app
from pasar_products.settings import Settings


def _admin_token(key: SigningKey) -> dict[str, str]:
    claims = access_claims(
        "admin-1", issuer="pasar-users", audience="pasar", ttl_seconds=300, role="admin"
    )
    return {"Authorization": f"Bearer {key.sign(claims)}"}


@pytest.fixture
async def jwks_server() -> AsyncIterator[tuple[str, SigningKey, list[int]]]:
    """A stand-in for the User-Service's JWKS endpoint, counting its fetches."""
    key = SigningKey.generate()
    fetches: list[int] = []
    jwks = FastAPI()

    @jwks.get("/.well-known/jwks.json")
    async def document() -> dict[str, Any]:
        fetches.append(1)
        return jwks_document([key])

    async with serve(jwks) as url:
        yield f"{url}/.well-known/jwks.json", key, fetches


async def _client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://products")


async def test_tokens_verify_against_the_fetched_and_cached_jwks(
    products_db: Database,
    products_settings: Settings,
    jwks_server: tuple[str, SigningKey, list[int]],
) -> None:
    url, key, fetches = jwks_server
    app = create_app(products_settings.model_copy(update={"jwks_url": url}))
    async with lifespan_of(app), await _client_for(app) as client:
        for _ in range(3):
            response = await client.get("/admin/stock-audit", headers=_admin_token(key))
            assert response.status_code == 200, response.text
        forged = await client.get("/admin/stock-audit", headers=_admin_token(SigningKey.generate()))
        assert forged.status_code == 401
    assert 1 <= len(fetches) <= 2  # cached: not one fetch per request


async def test_with_the_users_service_down_unknown_keys_are_503_and_the_catalogue_works(
    products_db: Database, products_settings: Settings
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nobody listens there
    settings = products_settings.model_copy(
        update={"jwks_url": f"http://127.0.0.1:{port}/.well-known/jwks.json", "http_timeout": 1.0}
    )
    app = create_app(settings)
    async with lifespan_of(app), await _client_for(app) as client:
        guarded = await client.get(
            "/admin/stock-audit", headers=_admin_token(SigningKey.generate())
        )
        # The token may be fine; we cannot tell until the keys can be fetched.
        assert guarded.status_code == 503
        assert guarded.json()["code"] == "dependency_unavailable"
        assert guarded.headers["retry-after"] == "1"
        assert (await client.get("/products")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
