"""Fixtures for the Product-Service suite: a real database (PASAR_TEST_DB), the real app.

Tokens are minted with the kit's ``access_claims`` (what the User-Service signs) and a
key of our own, verified through a ``StaticKeys`` verifier; ``test_jwks.py`` covers the
production path that fetches the JWKS over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from products_support import Catalogue, Clock, Tokens

from pasar_kit.auth import SigningKey, StaticKeys, TokenVerifier
from pasar_kit.db import Database
from pasar_kit.migrations import upgrade
from pasar_kit.testing import clear_tables, fresh_database, lifespan_of
from pasar_products.app import MIGRATIONS, create_app
from pasar_products.settings import Settings
from pasar_products.storage import LocalImageStore
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
def products_settings(products_db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=products_db_url,
        environment="test",
        workers_enabled=False,
        image_dir=tmp_path / "images",
    )


@pytest.fixture
def products_store(products_settings: Settings) -> LocalImageStore:
    """The image directory the app of ``products_settings`` serves."""
    return LocalImageStore(products_settings.image_dir)


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


@pytest.fixture
def products_catalogue(products_client: httpx.AsyncClient, products_tokens: Tokens) -> Catalogue:
    return Catalogue(products_client, products_tokens)
