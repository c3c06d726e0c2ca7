"""The yardstick: the catalogue page and a guarded stock update written as plainly as
FastAPI allows on the raw database driver (sqlite3, asyncmy, asyncpg), with no ORM, no
validation of the answer, no cache, no middleware.

`bench/matrix.py` serves it beside the shop, on the Product-Service's own database, so
each figure of the shop is also a ratio to what the same work costs at its simplest:

    BASELINE_DATABASE_URL=... uvicorn baseline:create_app --factory

* ``GET /products?category=&sort=&offset=``: the page of 20 and the total, the same two
  queries and the same JSON fields as the Product-Service's listing;
* ``POST /reserve/{id}``: ``stock = stock - 1`` guarded by ``stock >= 1``, in its own
  transaction; 204, or 409 when the guard refuses.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import asyncmy
import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, Response

COLUMNS = (
    "id", "sku", "name", "description", "price", "stock", "category", "image_url",
    "active", "created_at", "updated_at",
)  # fmt: skip
SORTS = {"name", "price", "created_at"}


class Driver(Protocol):
    """The two things the routes need from a database: rows of a query, and one guarded
    update's row count. ``?`` marks a parameter whatever the driver's own style."""

    async def rows(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]: ...
    async def update(self, sql: str, params: Sequence[Any]) -> int: ...
    async def close(self) -> None: ...


class SQLite:
    """One connection, statements run on the event loop: how the shop runs SQLite too."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=5000")

    async def rows(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return self.conn.execute(sql, params).fetchall()

    async def update(self, sql: str, params: Sequence[Any]) -> int:
        return self.conn.execute(sql, params).rowcount

    async def close(self) -> None:
        self.conn.close()


class MariaDB:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str) -> MariaDB:
        parts = urlsplit(url)
        pool = await asyncmy.create_pool(
            host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
            password=parts.password or "", db=parts.path.lstrip("/"), autocommit=True,
            minsize=1, maxsize=20,
        )  # fmt: skip
        return cls(pool)

    async def rows(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        async with self.pool.acquire() as conn, conn.cursor() as cursor:
            await cursor.execute(sql.replace("?", "%s"), params)
            return list(await cursor.fetchall())

    async def update(self, sql: str, params: Sequence[Any]) -> int:
        async with self.pool.acquire() as conn, conn.cursor() as cursor:
            return int(await cursor.execute(sql.replace("?", "%s"), params))

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()


class PostgreSQL:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str) -> PostgreSQL:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        return cls(await asyncpg.create_pool(dsn, min_size=1, max_size=20))

    @staticmethod
    def _numbered(sql: str) -> str:
        parts = sql.split("?")
        return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]

    async def rows(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return list(await self.pool.fetch(self._numbered(sql), *params))

    async def update(self, sql: str, params: Sequence[Any]) -> int:
        status = await self.pool.execute(self._numbered(sql), *params)
        return int(status.rsplit(" ", 1)[1])  # "UPDATE 1"

    async def close(self) -> None:
        await self.pool.close()


async def connect(url: str) -> Driver:
    if url.startswith("sqlite"):
        return SQLite(url.split(":///", 1)[1])
    if url.startswith("mysql"):
        return await MariaDB.connect(url)
    return await PostgreSQL.connect(url)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def create_app() -> FastAPI:
    driver: Driver | None = None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        nonlocal driver
        driver = await connect(os.environ["BASELINE_DATABASE_URL"])
        yield
        await driver.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/products")
    async def listing(category: str, sort: str = "name", offset: int = 0) -> Response:
        assert driver is not None
        column = sort.lstrip("-")
        if column not in SORTS:
            return Response(status_code=422)
        direction = "DESC" if sort.startswith("-") else "ASC"
        page = await driver.rows(
            f"SELECT {', '.join(COLUMNS)} FROM products WHERE active = true AND category = ?"
            f" ORDER BY {column} {direction}, id {direction} LIMIT 20 OFFSET ?",
            (category, offset),
        )
        (total,) = (
            await driver.rows(
                "SELECT count(*) FROM products WHERE active = true AND category = ?", (category,)
            )
        )[0]
        items = [
            {
                **{name: _value(value) for name, value in zip(COLUMNS, row, strict=True)},
                "currency": "IDR",
            }
            for row in page
        ]
        body = {"items": items, "total": total, "limit": 20, "offset": offset}
        return Response(json.dumps(body), media_type="application/json")

    @app.post("/reserve/{product_id}")
    async def reserve(product_id: str) -> Response:
        assert driver is not None
        changed = await driver.update(
            "UPDATE products SET stock = stock - 1 WHERE id = ? AND stock >= 1", (product_id,)
        )
        return Response(status_code=204 if changed else 409)

    @app.get("/readyz")
    async def ready() -> Response:
        return Response(status_code=200)

    return app
