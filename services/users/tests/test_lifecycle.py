"""Start-up and background work: replicas racing for the first key, readiness that
recovers, the periodic jobs, and the schema matching the migrations."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from users_support import UsersApi

from pasar_kit.db import Database, utcnow
from pasar_kit.migrations import upgrade
from pasar_kit.testing import lifespan_of
from pasar_users.app import MIGRATIONS, create_app
from pasar_users.settings import Settings
from pasar_users.tables import attempts, metadata, signing_keys
from pasar_users.throttle import Throttle, ThrottlePolicy


async def test_schema_matches_the_migrations(users_database_url: str) -> None:
    engine = create_async_engine(users_database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_replicas_starting_together_share_one_key(
    users_database_url: str, users_db: Database
) -> None:
    async with users_db.write() as conn:
        await conn.execute(delete(signing_keys))
    apps = [
        create_app(Settings(database_url=users_database_url, workers_enabled=False))
        for _ in range(3)
    ]

    async def start(app: FastAPI) -> str:
        async with lifespan_of(app):
            signing = app.state.runtime.authority.keys.signing
            assert signing is not None
            return str(signing.kid)

    kids = await asyncio.gather(*(start(app) for app in apps))
    assert len(set(kids)) == 1
    async with users_db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(signing_keys)) == 1


async def test_readiness_recovers_once_the_database_is_migrated(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'late.db'}"
    app = create_app(Settings(database_url=url, workers_enabled=False))
    async with (
        lifespan_of(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://u") as client,
    ):
        assert (await client.get("/readyz")).status_code == 503
        await asyncio.to_thread(upgrade, url, MIGRATIONS)
        assert (await client.get("/readyz")).status_code == 200
        assert len((await client.get("/.well-known/jwks.json")).json()["keys"]) == 1


async def test_workers_start_and_stop_with_the_app(users_database_url: str) -> None:
    settings = Settings(
        database_url=users_database_url,
        workers_enabled=True,
        key_reload_seconds=0.05,
        purge_interval_seconds=0.05,
    )
    app = create_app(settings)
    async with lifespan_of(app):
        ring = app.state.runtime.authority.keys
        from pasar_users.keys import rotate_signing_key

        new_kid = await rotate_signing_key(db=app.state.db, now=utcnow())
        for _ in range(200):  # the reload job picks the rotation up by itself
            if ring.signing is not None and ring.signing.kid == new_kid:
                break
            await asyncio.sleep(0.02)
        assert ring.signing is not None and ring.signing.kid == new_kid


async def test_throttle_purge_forgets_only_old_attempts(users_app: FastAPI) -> None:
    db: Database = users_app.state.db
    now = utcnow()
    throttle = Throttle(
        db, ThrottlePolicy(window_seconds=300, registration_window_seconds=600), clock=lambda: now
    )
    row = {"kind": "login", "address": "192.0.2.1"}
    async with db.write() as conn:
        await conn.execute(
            insert(attempts),
            [
                {**row, "subject": "old@example.com", "at": now - timedelta(seconds=601)},
                {**row, "subject": "new@example.com", "at": now - timedelta(seconds=599)},
            ],
        )
    assert await throttle.purge() == 1
    async with db.read() as conn:
        left: Any = (await conn.scalars(select(attempts.c.subject))).all()
    assert left == ["new@example.com"]


async def test_a_replica_verifies_tokens_signed_with_a_key_rotated_elsewhere(
    users_database_url: str, users_api: UsersApi
) -> None:
    from pasar_users.keys import rotate_signing_key

    account = await users_api.account()
    settings = Settings(
        database_url=users_database_url,
        workers_enabled=False,
        argon2_time_cost=1,
        argon2_memory_kib=64,
        argon2_parallelism=1,
    )
    replica_a, replica_b = create_app(settings), create_app(settings)
    async with lifespan_of(replica_a), lifespan_of(replica_b):
        new_kid = await rotate_signing_key(db=replica_a.state.db, now=utcnow())
        transport_a = httpx.ASGITransport(app=replica_a)
        transport_b = httpx.ASGITransport(app=replica_b)
        async with (
            httpx.AsyncClient(transport=transport_a, base_url="http://a") as a,
            httpx.AsyncClient(transport=transport_b, base_url="http://b") as b,
        ):
            await a.get("/.well-known/jwks.json")  # replica A picks the new key up first
            login = await a.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": account.email,
                    "password": account.password,
                },
            )
            token = login.json()["access_token"]
            import jwt

            assert jwt.get_unverified_header(token)["kid"] == new_kid
            assert replica_b.state.runtime.authority.keys.signing.kid != new_kid  # B is behind
            me = await b.get("/users/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert replica_b.state.runtime.authority.keys.signing.kid == new_kid
