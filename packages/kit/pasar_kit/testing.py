"""Test support shared by every service's suite: real databases, real servers.

``PASAR_TEST_DB`` picks the backend: ``sqlite`` (default), ``mariadb`` or ``postgres``.
Each test session gets its own freshly created database per service, dropped at the end,
so suites can run side by side on one server.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import MetaData, delete
from sqlalchemy.ext.asyncio import create_async_engine

from pasar_kit.db import Database
from pasar_kit.server import server_options

MARIADB_URL = os.environ.get("PASAR_TEST_MARIADB_URL", "mysql+asyncmy://root@127.0.0.1:3306")
POSTGRES_URL = os.environ.get(
    "PASAR_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432"
)


def backend() -> str:
    value = os.environ.get("PASAR_TEST_DB", "sqlite").lower()
    if value not in ("sqlite", "mariadb", "postgres"):
        raise RuntimeError(f"PASAR_TEST_DB must be sqlite, mariadb or postgres, not {value!r}")
    return value


async def _server_admin(statement: str) -> None:
    if backend() == "mariadb":
        engine = create_async_engine(MARIADB_URL + "/", isolation_level="AUTOCOMMIT")
    else:
        engine = create_async_engine(POSTGRES_URL + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()


@contextmanager
def fresh_database(name: str, directory: Path) -> Iterator[str]:
    """A new, empty database for ``name`` on the chosen backend; dropped afterwards.

    Call outside a running event loop (a session-scoped sync fixture).
    """
    kind = backend()
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / (name + '.db')}"
        return
    db_name = f"pasar_test_{name}_{uuid.uuid4().hex[:8]}"
    if kind == "mariadb":
        asyncio.run(
            _server_admin(
                f"CREATE DATABASE {db_name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        )
        url = f"{MARIADB_URL}/{db_name}?charset=utf8mb4"
    else:
        asyncio.run(_server_admin(f"CREATE DATABASE {db_name}"))
        url = f"{POSTGRES_URL}/{db_name}"
    try:
        yield url
    finally:
        statement = f"DROP DATABASE IF EXISTS {db_name}"
        if kind == "postgres":
            statement += " WITH (FORCE)"
        asyncio.run(_server_admin(statement))


async def clear_tables(url: str, metadata: MetaData) -> None:
    """Empty every table of ``metadata`` (children first) so the next test starts clean."""
    db = Database(url)
    try:
        async with db.write() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(delete(table))
    finally:
        await db.dispose()


@asynccontextmanager
async def lifespan_of(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's startup and shutdown around the block (for in-process clients)."""
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def serve(
    app: FastAPI, *, port: int = 0, forwarded_allow_ips: str | None = None
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields its base URL.

    Other services call it over real HTTP, exactly as in production (``pasar serve``'s
    server options: a bounded request head, forwarding headers trusted from nobody unless
    ``forwarded_allow_ips`` names proxies). ``port`` serves on a given port instead, e.g.
    to bring a stopped service back where its callers expect it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    # A hanging handler (fault tests) must not hold the shutdown for long.
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=1,
        **server_options(forwarded_allow_ips=forwarded_allow_ips),
    )
    server = uvicorn.Server(config)
    # uvicorn would otherwise take over Ctrl-C for the whole test run.
    server.capture_signals = _no_signals  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the server stopped while starting")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextmanager
def _no_signals() -> Iterator[None]:
    yield
