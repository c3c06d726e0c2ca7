"""The database layer on the configured backend (PASAR_TEST_DB)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, String, Table, insert, select, update

from pasar_kit.db import Database, UTCDateTime, new_metadata, retrying
from pasar_kit.testing import fresh_database

metadata = new_metadata()
things = Table(
    "kit_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50)),
    Column("stock", Integer, nullable=False),
    Column("at", UTCDateTime()),
)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("kitdb")
    with fresh_database("kit", directory) as url:
        yield url


@pytest.fixture
async def db(url: str) -> object:
    database = Database(url)
    async with database.write() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def test_timestamps_round_trip_as_aware_utc(db: Database) -> None:
    moment = datetime(2026, 11, 25, 14, 3, 0, 123456, tzinfo=UTC)
    async with db.write() as conn:
        await conn.execute(insert(things).values(id=1, name="a", stock=1, at=moment))
    async with db.read() as conn:
        stored = (await conn.execute(select(things.c.at))).scalar_one()
    assert stored == moment and stored.tzinfo is not None


async def test_write_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(insert(things).values(id=2, name="b", stock=1))
            raise RuntimeError("abort")
    async with db.read() as conn:
        assert (await conn.execute(select(things.c.id))).all() == []


async def test_guarded_decrement_never_oversells(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(insert(things).values(id=3, name="c", stock=10))

    async def take_one() -> bool:
        async def work() -> bool:
            async with db.write() as conn:
                result = await conn.execute(
                    update(things)
                    .where(things.c.id == 3, things.c.stock >= 1)
                    .values(stock=things.c.stock - 1)
                )
                return result.rowcount == 1

        return await retrying(work)

    results = await asyncio.gather(*(take_one() for _ in range(40)))
    assert sum(results) == 10
    async with db.read() as conn:
        assert (
            await conn.execute(select(things.c.stock).where(things.c.id == 3))
        ).scalar_one() == 0


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1) - timedelta(0), None)  # type: ignore[arg-type]
