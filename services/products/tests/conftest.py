"""Fixtures for the Product-Service suite: a real database (PASAR_TEST_DB), the real app.

Tokens are minted with the kit's ``access_claims`` (what the users service signs) and a
key of our own, verified through a ``StaticKeys`` verifier; ``test_jwks.py`` covers the
production path that fetches the JWKS over HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pasar_kit.auth import SigningKey, StaticKeys, TokenVerifier, access_claims
from pasar_kit.db import Database
from pasar_kit.migrations import upgrade
from pasar_kit.testing import clear_tables, fresh_database, lifespan_of
from pasar_products.app import MIGRATIONS, create_app
from pasar_products.settings import Settings
from pasar_products.tables import metadata


@pytest.fixture(scope="session")
def products_db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database("products", tmp_path_factory.mktemp("products")) as url:
        upgrade(url, MIGRATIONS)
        yield url


@pytest.fixture
async def products_db(products_db_url: str) -> AsyncIterator[Database]:
    """The service's database, emptied before the test."""
    await clear_tables(products_db_url, metadata)
    db = Database(products_db_url)
    try:
        yield db
    finally:
        await db.dispose()


@dataclass
class Clock:
    """The fake clock the app reads; tests move it instead of sleeping."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Tokens:
    key: SigningKey

    def _sign(self, subject: str, **claims: Any) -> str:
        return self.key.sign(
            access_claims(
                subject, issuer="pasar-users", audience="pasar", ttl_seconds=300, **claims
            )
        )

    def admin(self, user_id: str | None = None) -> dict[str, str]:
        return self.bearer(self._sign(user_id or str(uuid.uuid4()), role="admin"))

    def customer(self, user_id: str | None = None) -> dict[str, str]:
        return self.bearer(self._sign(user_id or str(uuid.uuid4()), role="customer"))

    def service(self, scope: str = "stock:reserve", client_id: str = "orders") -> dict[str, str]:
        return self.bearer(self._sign(client_id, scope=scope))

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def products_signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def products_tokens(products_signing_key: SigningKey) -> Tokens:
    return Tokens(products_signing_key)


@pytest.fixture
def products_clock() -> Clock:
    return Clock()


@pytest.fixture
def products_settings(products_db_url: str) -> Settings:
    return Settings(database_url=products_db_url, environment="test", workers_enabled=False)


@pytest.fixture
def products_verifier(products_signing_key: SigningKey) -> TokenVerifier:
    return TokenVerifier(
        StaticKeys(lambda: [products_signing_key]), issuer="pasar-users", audience="pasar"
    )


@pytest.fixture
async def products_app(
    products_db: Database,
    products_settings: Settings,
    products_verifier: TokenVerifier,
    products_clock: Clock,
) -> AsyncIterator[FastAPI]:
    app = create_app(products_settings, verifier=products_verifier, clock=products_clock)
    async with lifespan_of(app):
        yield app


@pytest.fixture
async def products_client(products_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=products_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://products") as client:
        yield client


@dataclass
class Catalogue:
    """Shortcuts over the real API for arranging a test."""

    client: httpx.AsyncClient
    tokens: Tokens
    counter: int = 0

    async def product(self, **fields: Any) -> dict[str, Any]:
        self.counter += 1
        body = {
            "sku": f"SKU-{uuid.uuid4().hex[:10]}",
            "name": f"Product {self.counter}",
            "price": 1_500_000,
            "stock": 10,
            "category": "General",
            **fields,
        }
        response = await self.client.post("/products", json=body, headers=self.tokens.admin())
        assert response.status_code == 201, response.text
        product: dict[str, Any] = response.json()
        return product

    async def reserve(
        self, items: list[tuple[str, int]], reservation_id: str | None = None, **extra: Any
    ) -> httpx.Response:
        body = {
            "reservation_id": reservation_id or str(uuid.uuid4()),
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in items],
            **extra,
        }
        return await self.client.post(
            "/internal/reservations", json=body, headers=self.tokens.service()
        )

    async def stock(self, product_id: str) -> int:
        response = await self.client.get(f"/products/{product_id}")
        assert response.status_code == 200, response.text
        return int(response.json()["stock"])

    async def audit(self) -> dict[str, Any]:
        response = await self.client.get("/admin/stock-audit", headers=self.tokens.admin())
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def products_catalogue(products_client: httpx.AsyncClient, products_tokens: Tokens) -> Catalogue:
    return Catalogue(products_client, products_tokens)
