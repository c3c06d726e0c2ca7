"""Fixtures for the User-Service: a real database per session, the app per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from users_support import AppFactory, ClientFrom, UsersApi, users_test_settings

from pasar_kit.db import Clock, Database, utcnow
from pasar_kit.migrations import upgrade
from pasar_kit.testing import clear_tables, fresh_database, lifespan_of
from pasar_users.app import MIGRATIONS, create_app
from pasar_users.settings import Settings
from pasar_users.tables import metadata


@pytest.fixture(scope="session")
def users_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("users-db")
    with fresh_database("users", directory) as url:
        upgrade(url, MIGRATIONS)
        yield url


@pytest.fixture
def users_settings(users_database_url: str) -> Settings:
    return users_test_settings(users_database_url)


@pytest.fixture
async def users_app(users_settings: Settings, users_database_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(users_settings)
    try:
        async with lifespan_of(app):
            yield app
    finally:
        await clear_tables(users_database_url, metadata)


@pytest.fixture
async def users_app_with(users_database_url: str) -> AsyncIterator[AppFactory]:
    """``async with users_app_with(login_pair_free_failures=3) as app``: the app with
    settings of the test's own (and a ``clock`` of its own, if given), on the session's
    database (emptied afterwards)."""

    @asynccontextmanager
    async def make(clock: Clock = utcnow, **overrides: Any) -> AsyncIterator[FastAPI]:
        app = create_app(users_test_settings(users_database_url, **overrides), clock=clock)
        async with lifespan_of(app):
            yield app

    try:
        yield make
    finally:
        await clear_tables(users_database_url, metadata)


def _client_from(app: FastAPI, address: str | None = "127.0.0.1") -> httpx.AsyncClient:
    """A client of ``app`` whose requests come from ``address`` (as uvicorn reports it)."""
    client = (address, 40000) if address is not None else None
    transport = httpx.ASGITransport(app=app, client=client)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://users.test")


async def _age_attempts(db: Database, seconds: float) -> None:
    """Move every throttle row ``seconds`` into the past, instead of waiting."""
    from pasar_users.tables import attempts

    async with db.write() as conn:
        rows = (await conn.execute(select(attempts.c.id, attempts.c.at))).all()
        for row in rows:
            await conn.execute(
                update(attempts)
                .where(attempts.c.id == row.id)
                .values(at=row.at - timedelta(seconds=seconds))
            )


@pytest.fixture
def client_from() -> ClientFrom:
    return _client_from


@pytest.fixture
def age_attempts() -> Callable[[Database, float], Awaitable[None]]:
    return _age_attempts


@pytest.fixture
async def users_db(users_app: FastAPI) -> Database:
    db: Database = users_app.state.db
    return db


@pytest.fixture
async def users_client(users_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=users_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://users.test") as client:
        yield client


@pytest.fixture
def users_api(users_client: httpx.AsyncClient, users_app: FastAPI) -> UsersApi:
    return UsersApi(users_client, users_app)
