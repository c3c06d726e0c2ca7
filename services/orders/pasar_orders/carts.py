"""Saved carts: a customer's cart kept by the shop, so it follows them across devices.

A cart is product ids and quantities only; prices and stock are the catalogue's business
when the order is placed. Saving replaces the whole cart, and of concurrent saves by
the same customer the last to commit wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from pasar_kit.db import Database, retrying
from pasar_orders.tables import carts

# A first save that loses the insert race finds the row on its next try.
_SAVE_ATTEMPTS = 3


@dataclass(frozen=True)
class CartLine:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class Cart:
    items: list[CartLine]
    updated_at: datetime | None  # None: never saved


async def get_cart(*, db: Database, user_id: str) -> Cart:
    # ``carts.c.items`` would be the column collection's ``items()`` method.
    lines = carts.c["items"]
    async with db.read() as conn:
        row = (
            await conn.execute(select(lines, carts.c.updated_at).where(carts.c.user_id == user_id))
        ).first()
    if row is None:
        return Cart(items=[], updated_at=None)
    stored, updated_at = row
    return Cart(
        items=[CartLine(product_id=i["product_id"], quantity=i["quantity"]) for i in stored],
        updated_at=updated_at,
    )


async def save_cart(
    *, db: Database, user_id: str, items: Sequence[CartLine], now: datetime
) -> Cart:
    """Replace the customer's cart with ``items`` (none: an empty cart)."""
    stored = [{"product_id": line.product_id, "quantity": line.quantity} for line in items]

    async def upsert() -> None:
        # Update first: after a customer's first save the row exists, so this is the
        # common case. (Row counts are rows matched: SQLAlchemy asks MySQL for found rows.)
        async with db.write() as conn:
            updated = await conn.execute(
                update(carts).where(carts.c.user_id == user_id).values(items=stored, updated_at=now)
            )
            if updated.rowcount == 0:
                await conn.execute(
                    insert(carts).values(user_id=user_id, items=stored, updated_at=now)
                )

    for attempt in range(1, _SAVE_ATTEMPTS + 1):
        try:
            # Two first saves at once can deadlock on MariaDB's gap locks: retried.
            await retrying(upsert)
            break
        except IntegrityError:
            # Another first save inserted the row between our update and insert.
            if attempt == _SAVE_ATTEMPTS:
                raise
    return Cart(items=list(items), updated_at=now)
