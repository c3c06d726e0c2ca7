"""Async SQLAlchemy engines for SQLite, MariaDB/MySQL and PostgreSQL.

A ``Database`` hands out two kinds of connection:

* ``db.read()`` for queries, and
* ``db.write()`` for a transaction that commits once at the end and rolls back on any
  error (the unit of work).

On the server databases both come from one pool. On SQLite, writes go through a single
connection that starts every transaction with ``BEGIN IMMEDIATE``: SQLite has one writer
at a time anyway, and queueing writers in-process keeps the tail latency flat where many
writer connections would spin on the file lock.

Statements on a hot path are built once, as module constants with ``bindparam`` where
the values go, and executed with their values (``conn.execute(STATEMENT, {...})``).
Written inline, SQLAlchemy builds the statement and computes its cache key on every
call, which costs about three times what running it does (measured on SQLite: 150 µs a
statement built per call, 45 µs built once).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A ``MetaData`` with a naming convention, so migrations name constraints stably."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


# Where a service takes the time from (``utcnow`` in production), so tests can move it.
Clock = Callable[[], datetime]


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always read back as an aware UTC datetime.

    MariaDB's DATETIME has no zone and SQLite has no type at all; storing naive UTC
    everywhere keeps the three databases identical. Microseconds are kept (``fsp=6``).
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; pasar stores UTC only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class _InlineSqlite(aiosqlite.Connection):
    """aiosqlite without its worker thread: each sqlite3 call runs on the event loop.

    A SQLite statement on a page-cached WAL database takes microseconds, while handing it
    to a thread and back costs a GIL round trip that a busy event loop stretches to
    milliseconds (placement latency was dominated by it). Only this process writes its
    file, so a call blocks only for the statement itself.
    """

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()

    async def _connect(self) -> aiosqlite.Connection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    path = make_url(url).database or ":memory:"

    async def connect() -> aiosqlite.Connection:
        # isolation_level=None: BEGIN is ours to issue (see _on_begin).
        return await _InlineSqlite(
            lambda: sqlite3.connect(path, timeout=30, isolation_level=None), 64
        )

    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        async_creator=connect,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _connect_or_connection_error(
    dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """Open a connection as the dialect would, but a server that hangs up while it is
    being opened is a ``ConnectionResetError`` (503 to the client), whatever the driver
    makes of it: asyncmy under uvloop raises a bare ``RuntimeError`` ("Transport does not
    expose socket instance") when the reset beats its first socket option."""
    try:
        return dialect.connect(*cargs, **cparams)
    except RuntimeError as exc:
        raise ConnectionResetError(f"the database hung up while connecting: {exc}") from exc


class Database:
    """The engines of one service's database."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.is_sqlite = _is_sqlite(url)
        if self.is_sqlite:
            path = make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._writer = _sqlite_engine(url, immediate=True, pool_size=1)
            self._reader = _sqlite_engine(url, immediate=False, pool_size=4)
        else:
            # A fixed pool: no overflow connections, because each one would be opened
            # for a burst and closed again at once, a handshake on both sides per
            # checkout (measured: 15 % of a placement's CPU at 32 concurrent requests).
            # A request that finds every connection busy waits for one (no code path
            # holds two at once). No pre-ping: it costs a round trip on every checkout.
            # Connections are recycled before any server idle timeout; after a database
            # restart the first statement on a dead connection fails, the pool drops them
            # all, and that one request is answered 503 (``problems.database_unreachable``).
            self._writer = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=0,
                pool_recycle=1800,
            )
            event.listen(self._writer.sync_engine, "do_connect", _connect_or_connection_error)
            self._reader = self._writer

    @property
    def dialect(self) -> str:
        return self._writer.dialect.name

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self._writer.begin() as conn:
            yield conn

    async def ping(self) -> None:
        async with self._reader.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()


# MySQL/MariaDB: 1213 deadlock, 1205 lock wait timeout. PostgreSQL: 40P01 deadlock,
# 40001 serialization failure. SQLite: "database is locked" past the busy timeout.
_MYSQL_RETRYABLE = {1213, 1205}
_PG_RETRYABLE = {"40P01", "40001"}


def is_retryable(exc: BaseException) -> bool:
    """True for a transaction the database aborted for concurrency, safe to run again."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_RETRYABLE:
        return True
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _PG_RETRYABLE:
        return True
    # asyncpg wraps its errors; the original exception carries the state.
    cause = getattr(orig, "__cause__", None)
    if getattr(cause, "sqlstate", None) in _PG_RETRYABLE:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


async def retrying(
    work: Callable[[], Awaitable[T]], *, attempts: int = 5, base_delay: float = 0.01
) -> T:
    """Run ``work`` (a whole transaction) again when the database aborts it for a deadlock."""
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            await asyncio.sleep(base_delay * 2**attempt * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


async def looking_again(work: Callable[[], Awaitable[T]], *, looks: int = 3) -> T:
    """Run ``work`` (a whole transaction that reads what exists, then inserts what it did
    not find) again when a concurrent one inserted the same first and a unique index
    refused ours (``IntegrityError``), so that the next look finds it; deadlocks are
    retried as by ``retrying``."""
    for _ in range(looks - 1):
        try:
            return await retrying(work)
        except IntegrityError:
            continue
    return await retrying(work)


def skip_locked(dialect: str) -> dict[str, Any]:
    """``with_for_update`` arguments that let several workers claim disjoint rows.

    SQLite has neither row locks nor SKIP LOCKED; its writes are serialised by
    ``BEGIN IMMEDIATE`` so a plain select inside a write transaction is already exclusive.
    """
    if dialect == "sqlite":
        return {}
    return {"skip_locked": True}
