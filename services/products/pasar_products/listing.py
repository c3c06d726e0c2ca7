"""The public catalogue listing and the category counts: the service's hottest reads.

Core selects with explicit columns, one query for the page and one for the total. Search
input is data: ``%``, ``_`` and ``\\`` are escaped, so they match themselves.

Counting ~100,000 matching rows costs more than fetching a page of 20 (it reads the whole
index range), so totals are kept for a couple of seconds per filter (``TotalsCache``),
and the anonymous pages themselves for about a second (``PageCache``); both are dropped
whenever an admin changes the catalogue through this process.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import astuple, dataclass, replace
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, func, or_, select, true

from pasar_kit.db import Database
from pasar_products.catalogue import PRODUCT_COLUMNS, Product, with_images
from pasar_products.tables import products

V = TypeVar("V")

Sort = Literal["name", "-name", "price", "-price", "created_at", "-created_at"]

_SORT_COLUMNS = {
    "name": products.c.name,
    "price": products.c.price,
    "created_at": products.c.created_at,
}


@dataclass(frozen=True)
class ProductQuery:
    q: str | None = None
    category: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    in_stock: bool = False
    include_archived: bool = False  # the admin pages' view
    sort: Sort = "name"
    limit: int = 20
    offset: int = 0


class _Expiring(Generic[V]):
    """Values kept for ``ttl_seconds`` by key, the least recently stored dropped first
    beyond ``max_entries``; a TTL of 0 keeps nothing."""

    def __init__(self, ttl_seconds: float, *, max_entries: int = 1024) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[object, ...], tuple[float, V]] = OrderedDict()

    def key(self, query: ProductQuery) -> tuple[object, ...]:
        return astuple(query)

    def get(self, query: ProductQuery) -> V | None:
        entry = self._entries.get(self.key(query))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, query: ProductQuery, value: V) -> None:
        if self.ttl_seconds <= 0:
            return
        key = self.key(query)
        self._entries[key] = (time.monotonic() + self.ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class TotalsCache(_Expiring[int]):
    """Recent totals by filter, so a page does not pay for a full count every time.

    A total may lag behind changes made by another replica for at most ``ttl_seconds``.
    """

    def key(self, query: ProductQuery) -> tuple[object, ...]:
        return astuple(replace(query, sort="name", limit=0, offset=0))


class PageCache(_Expiring[bytes]):
    """Whole anonymous pages as sent (JSON), for about a second: the way shops microcache
    their busiest pages. An admin's change through this process drops them at once; the
    stock a page shows may lag behind reservations and other replicas for at most
    ``ttl_seconds`` (a product's own page and every reservation read the database)."""


@dataclass
class ListingCache:
    """What the listing keeps between requests; every admin change to the catalogue or
    its stock made through this process clears it."""

    totals: TotalsCache
    pages: PageCache

    def clear(self) -> None:
        self.totals.clear()
        self.pages.clear()


def like_pattern(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, with wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(query: ProductQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if not query.include_archived:
        conditions.append(products.c.active == true())
    if query.q:
        pattern = like_pattern(query.q)
        conditions.append(
            or_(
                products.c.name.ilike(pattern, escape="\\"),
                products.c.sku.ilike(pattern, escape="\\"),
                products.c.description.ilike(pattern, escape="\\"),
            )
        )
    if query.category is not None:
        conditions.append(products.c.category == query.category)
    if query.min_price is not None:
        conditions.append(products.c.price >= query.min_price)
    if query.max_price is not None:
        conditions.append(products.c.price <= query.max_price)
    if query.in_stock:
        conditions.append(products.c.stock > 0)
    return conditions


async def list_products(
    *, db: Database, query: ProductQuery, totals: TotalsCache | None = None
) -> tuple[list[Product], int]:
    """One page of active products and how many match in all."""
    conditions = _conditions(query)
    column = _SORT_COLUMNS[query.sort.lstrip("-")]
    descending = query.sort.startswith("-")
    # The id breaks ties so that consecutive pages never overlap or skip.
    order: list[Any] = (
        [column.desc(), products.c.id.desc()] if descending else [column.asc(), products.c.id.asc()]
    )
    page = (
        select(*PRODUCT_COLUMNS)
        .where(*conditions)
        .order_by(*order)
        .limit(query.limit)
        .offset(query.offset)
    )
    async with db.read() as conn:
        rows = await with_images(conn, (await conn.execute(page)).mappings().all())
        if 0 < len(rows) < query.limit or (not rows and query.offset == 0):
            total = query.offset + len(rows)  # this page holds the end of the result
        else:
            cached = totals.get(query) if totals is not None else None
            if cached is not None:
                return rows, cached
            count = select(func.count()).select_from(products).where(*conditions)
            total = int((await conn.execute(count)).scalar_one())
    if totals is not None:
        totals.put(query, total)
    return rows, total


async def list_categories(*, db: Database) -> list[tuple[str, int]]:
    """Each category of the active catalogue with its number of products, by name."""
    statement = (
        select(products.c.category, func.count())
        .where(products.c.active == true())
        .group_by(products.c.category)
        .order_by(products.c.category)
    )
    async with db.read() as conn:
        return [(str(name), int(n)) for name, n in (await conn.execute(statement)).all()]


async def list_low_stock(
    *, db: Database, threshold: int, limit: int, offset: int
) -> tuple[list[Product], int]:
    """Active products with at most ``threshold`` in stock, emptiest first, and their count.

    For the admin pages only, so there is no index for it: it scans the catalogue.
    """
    conditions = (products.c.active == true(), products.c.stock <= threshold)
    page = (
        select(*PRODUCT_COLUMNS)
        .where(*conditions)
        .order_by(products.c.stock.asc(), products.c.name.asc(), products.c.id.asc())
        .limit(limit)
        .offset(offset)
    )
    count = select(func.count()).select_from(products).where(*conditions)
    async with db.read() as conn:
        total = int((await conn.execute(count)).scalar_one())
        found = (await conn.execute(page)).mappings().all() if total > offset else []
        rows = await with_images(conn, found)
    return rows, total
