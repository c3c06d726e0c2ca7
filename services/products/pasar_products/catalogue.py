"""The catalogue: creating, reading, editing and archiving products, and adjusting stock.

Every stock movement is one guarded statement (``stock = stock + :d WHERE stock + :d >= 0``)
so stock never goes below zero however many requests or replicas run at once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, bindparam, case, func, insert, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database
from pasar_products.images import StoredImage, images_of
from pasar_products.problems import InsufficientStock, ProductNotFound, SkuTaken, StaleProduct
from pasar_products.search.index import index_product
from pasar_products.tables import products, stock_adjustments

# A change to any of these changes what the product is found by.
SEARCHED_FIELDS = frozenset({"sku", "name", "description", "category", "active"})

INITIAL_REASON = "initial"

PRODUCT_COLUMNS = (
    products.c.id,
    products.c.sku,
    products.c.name,
    products.c.description,
    products.c.price,
    products.c.stock,
    products.c.category,
    products.c.image_url,
    products.c.active,
    products.c.version,
    products.c.created_at,
    products.c.updated_at,
)


@dataclass(frozen=True)
class Product:
    id: str
    sku: str
    name: str
    description: str
    price: int
    stock: int
    category: str
    image_url: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    # In order, the main one first; filled by the reads that answer with products.
    images: tuple[StoredImage, ...] = field(default=())

    @property
    def etag(self) -> str:
        return etag_of(self.version)


@dataclass(frozen=True)
class StockAdjustment:
    """One entry of a product's stock ledger."""

    id: str
    delta: int
    reason: str
    by: str | None
    at: datetime


def etag_of(version: int) -> str:
    """A strong ETag over the product's editable state.

    Stock moved by reservations does not change it, so a customer's order never makes an
    admin's pending edit stale; catalogue edits and stock adjustments do.
    """
    return f'"v{version}"'


# ``version`` is a 32-bit column: a larger number is no version of ours, and binding it
# would overflow the database (a 500 rather than a 412).
MAX_VERSION = 2**31 - 1
# Exactly the tags ``etag_of`` makes: ASCII digits (``str.isdigit`` also takes "²" and
# the Arabic-Indic one, which ``int`` reads as 1), no sign, no leading zero.
_OUR_TAG = re.compile(r'"v([1-9][0-9]{0,9})"')


def versions_matching(if_match: str | None) -> frozenset[int] | None:
    """The product versions an ``If-Match`` header accepts; None when it sets no condition.

    ``*`` only asks that the product exists, which every route checks anyway. Weak tags
    never match (RFC 9110 compares strongly for If-Match), nor does any tag we did not
    make, however it is spelled: such a header is a condition nothing meets (412).
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions = set()
    for tag in if_match.split(","):
        ours = _OUR_TAG.fullmatch(tag.strip())
        if ours is not None and int(ours.group(1)) <= MAX_VERSION:
            versions.add(int(ours.group(1)))
    return frozenset(versions)


# Built once (see ``pasar_kit.db``): a product's page and every write read it.
_BY_ID = select(*PRODUCT_COLUMNS).where(products.c.id == bindparam("pid"))


async def _fetch(conn: AsyncConnection, product_id: str) -> Product | None:
    row = (await conn.execute(_BY_ID, {"pid": product_id})).first()
    if row is None:
        return None
    images = await images_of(conn, [product_id])
    return Product(**row._mapping, images=images.get(product_id, ()))


async def with_images(conn: AsyncConnection, rows: Sequence[RowMapping]) -> list[Product]:
    """Products from rows of ``PRODUCT_COLUMNS``, with their images: one query for all."""
    images = await images_of(conn, [row["id"] for row in rows])
    return [Product(**row, images=images.get(row["id"], ())) for row in rows]


async def get_product(*, db: Database, product_id: str) -> Product:
    async with db.read() as conn:
        product = await _fetch(conn, product_id)
    if product is None:
        raise ProductNotFound(f"No product has id {product_id!r}.")
    return product


async def insert_product(
    conn: AsyncConnection, *, fields: Mapping[str, Any], by: str | None, now: datetime
) -> str:
    """Insert one product, its initial stock as the first row of its ledger, and its
    search index entry."""
    product_id = str(uuid.uuid4())
    stock = int(fields.get("stock", 0))
    await conn.execute(
        insert(products).values(
            id=product_id,
            sku=fields["sku"],
            name=fields["name"],
            description=fields.get("description", ""),
            price=fields["price"],
            stock=stock,
            category=fields["category"],
            image_url=fields.get("image_url"),
            active=True,
            version=1,
            created_at=now,
            updated_at=now,
        )
    )
    await conn.execute(
        insert(stock_adjustments).values(
            id=str(uuid.uuid4()),
            product_id=product_id,
            delta=stock,
            reason=INITIAL_REASON,
            by=by,
            at=now,
        )
    )
    await index_product(conn, product_id)
    return product_id


async def create_product(
    *, db: Database, fields: Mapping[str, Any], by: str | None, now: datetime
) -> Product:
    try:
        async with db.write() as conn:
            product_id = await insert_product(conn, fields=fields, by=by, now=now)
            product = await _fetch(conn, product_id)
    except IntegrityError as exc:
        # The SKU is the only unique value a client chooses.
        raise SkuTaken(f"SKU {fields['sku']!r} is already in the catalogue.") from exc
    assert product is not None
    return product


async def _explain_no_match(
    conn: AsyncConnection, product_id: str, if_versions: Collection[int] | None
) -> Product:
    """A guarded update matched nothing: say why (unknown, stale), or return the product."""
    product = await _fetch(conn, product_id)
    if product is None:
        raise ProductNotFound(f"No product has id {product_id!r}.")
    if if_versions is not None and product.version not in if_versions:
        raise StaleProduct(
            f"The product is now at {product.etag}; read it again before changing it."
        )
    return product


async def update_product(
    *,
    db: Database,
    product_id: str,
    changes: Mapping[str, Any],
    if_versions: Collection[int] | None,
    now: datetime,
) -> Product:
    async with db.write() as conn:
        if not changes:
            return await _explain_no_match(conn, product_id, if_versions)
        statement = (
            update(products)
            .where(products.c.id == product_id)
            .values(**changes, version=products.c.version + 1, updated_at=now)
        )
        if if_versions is not None:
            statement = statement.where(products.c.version.in_(list(if_versions)))
        try:
            result = await conn.execute(statement)
        except IntegrityError as exc:
            raise SkuTaken(f"SKU {changes.get('sku')!r} is already in the catalogue.") from exc
        if result.rowcount != 1:
            await _explain_no_match(conn, product_id, if_versions)
        elif SEARCHED_FIELDS & changes.keys():
            await index_product(conn, product_id)
        product = await _fetch(conn, product_id)
    assert product is not None
    return product


async def archive_product(
    *, db: Database, product_id: str, if_versions: Collection[int] | None, now: datetime
) -> None:
    """Hide the product from the public list (and the search vocabulary); it stays
    readable by id. Idempotent."""
    async with db.write() as conn:
        statement = (
            update(products)
            .where(products.c.id == product_id, products.c.active == true())
            .values(active=False, version=products.c.version + 1, updated_at=now)
        )
        if if_versions is not None:
            statement = statement.where(products.c.version.in_(list(if_versions)))
        if (await conn.execute(statement)).rowcount != 1:
            await _explain_no_match(conn, product_id, if_versions)
        else:
            await index_product(conn, product_id)


async def adjust_stock(
    *,
    db: Database,
    product_id: str,
    delta: int,
    reason: str,
    by: str | None,
    now: datetime,
) -> Product:
    """Restock (+) or write off (-), recorded in the ledger; never below zero."""
    async with db.write() as conn:
        result = await conn.execute(
            update(products)
            .where(products.c.id == product_id, products.c.stock >= -delta)
            .values(
                stock=products.c.stock + delta,
                version=products.c.version + 1,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            current = await _explain_no_match(conn, product_id, None)
            raise InsufficientStock(
                f"Only {current.stock} in stock; cannot remove {-delta}.",
                available=current.stock,
            )
        await conn.execute(
            insert(stock_adjustments).values(
                id=str(uuid.uuid4()),
                product_id=product_id,
                delta=delta,
                reason=reason,
                by=by,
                at=now,
            )
        )
        product = await _fetch(conn, product_id)
    assert product is not None
    return product


async def list_stock_adjustments(
    *, db: Database, product_id: str, limit: int, offset: int
) -> tuple[list[StockAdjustment], int]:
    """One page of a product's stock ledger, newest first, and its length.

    Ids are random UUIDs, so they only break ties deterministically, not chronologically;
    the ``initial`` row is by definition a product's first, so it sorts last among
    entries recorded in the same microsecond.
    """
    of_product = stock_adjustments.c.product_id == product_id
    page = (
        select(
            stock_adjustments.c.id,
            stock_adjustments.c.delta,
            stock_adjustments.c.reason,
            stock_adjustments.c.by,
            stock_adjustments.c.at,
        )
        .where(of_product)
        .order_by(
            stock_adjustments.c.at.desc(),
            case((stock_adjustments.c.reason == INITIAL_REASON, 1), else_=0),
            stock_adjustments.c.id.desc(),
        )
        .limit(limit)
        .offset(offset)
    )
    async with db.read() as conn:
        total = int(
            (
                await conn.execute(
                    select(func.count()).select_from(stock_adjustments).where(of_product)
                )
            ).scalar_one()
        )
        # Every product has its initial row, so an empty ledger means an unknown id.
        if total == 0 and await _fetch(conn, product_id) is None:
            raise ProductNotFound(f"No product has id {product_id!r}.")
        rows = (await conn.execute(page)).all() if total > offset else []
    return [StockAdjustment(**row._mapping) for row in rows], total
