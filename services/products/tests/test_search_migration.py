"""Migration 0003 on a database that already has products: it indexes them (the same
analysis as the service), seeds the synonym rules, and goes down and up again cleanly."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from alembic import command
from sqlalchemy import insert, inspect, select

from pasar_kit.db import Database, utcnow
from pasar_kit.migrations import alembic_config, upgrade
from pasar_kit.testing import fresh_database
from pasar_products.app import MIGRATIONS
from pasar_products.listing import ProductQuery, list_products
from pasar_products.search.lexicon import Lexicon, list_synonyms
from pasar_products.tables import products, search_terms

SEARCH_TABLES = {"product_search", "search_terms", "search_synonyms"}


async def _add_products(url: str) -> None:
    now = utcnow()
    rows = [
        ("SPT-1", "Sepatu Lari Ringan", "Olahraga", "Untuk berlari", True),
        ("KOPI-1", "Kopi Gayo", "Minuman", "Arabika", True),
        ("LAMA-1", "Sepatu Lari Lama", "Olahraga", "Arsip", False),
    ]
    db = Database(url)
    try:
        async with db.write() as conn:
            for sku, name, category, description, active in rows:
                await conn.execute(
                    insert(products).values(
                        id=str(uuid.uuid4()), sku=sku, name=name, description=description,
                        price=10_000, stock=1, category=category, image_url=None,
                        active=active, version=1, created_at=now, updated_at=now,
                    )
                )  # fmt: skip
    finally:
        await db.dispose()


async def _searchable(url: str) -> None:
    db = Database(url)
    try:
        found = await list_products(db=db, query=ProductQuery(q="berlari"), lexicon=Lexicon(0))
        assert [p.sku for p in found.items] == ["SPT-1"]
        archived = ProductQuery(q="lari", include_archived=True)
        assert {p.sku for p in (await list_products(db=db, query=archived)).items} == {
            "SPT-1", "LAMA-1",
        }  # fmt: skip
        typo = await list_products(db=db, query=ProductQuery(q="kopu"), lexicon=Lexicon(0))
        assert ([p.sku for p in typo.items], typo.corrected_q) == (["KOPI-1"], "kopi")
        async with db.read() as conn:
            counts = dict(
                (await conn.execute(select(search_terms.c.term, search_terms.c.products))).all()
            )
        assert counts["lari"] == 1 and counts["kopi"] == 1 and "lama" not in counts
        rules = {rule.term: rule.expands_to for rule in await list_synonyms(db=db)}
        assert rules["hp"] == ["handphone", "ponsel"] and rules["shoes"] == ["sepatu"]
        assert 20 <= len(rules) <= 30
    finally:
        await db.dispose()


async def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        async with db.read() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await db.dispose()


def test_upgrade_indexes_existing_products_and_downgrade_removes_the_index(
    tmp_path: Path,
) -> None:
    with fresh_database("search_migration", tmp_path) as url:
        upgrade(url, MIGRATIONS, "0001")
        asyncio.run(_add_products(url))
        upgrade(url, MIGRATIONS, "0003")
        asyncio.run(_searchable(url))

        command.downgrade(alembic_config(url, MIGRATIONS), "0002")
        left = asyncio.run(_tables(url))
        assert not left & SEARCH_TABLES and not any(t.startswith("product_search") for t in left)
        assert {"products", "product_images"} <= left

        upgrade(url, MIGRATIONS, "0003")
        asyncio.run(_searchable(url))
