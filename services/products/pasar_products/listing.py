"""The public catalogue listing and the category counts: the service's hottest reads.

Core selects with explicit columns, one query for the page and one for the total. Search
input is data: ``%``, ``_`` and ``\\`` are escaped, so they match themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, RowMapping, func, or_, select, true

from pasar_kit.db import Database
from pasar_products.catalogue import PRODUCT_COLUMNS
from pasar_products.tables import products

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
    sort: Sort = "name"
    limit: int = 20
    offset: int = 0


def like_pattern(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, with wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(query: ProductQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [products.c.active == true()]
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


async def list_products(*, db: Database, query: ProductQuery) -> tuple[Sequence[RowMapping], int]:
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
    count = select(func.count()).select_from(products).where(*conditions)
    async with db.read() as conn:
        rows = (await conn.execute(page)).mappings().all()
        if query.offset == 0 and len(rows) < query.limit:
            total = len(rows)  # the whole result fits on this page
        else:
            total = int((await conn.execute(count)).scalar_one())
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
