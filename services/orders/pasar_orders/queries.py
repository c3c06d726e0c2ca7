"""Reading orders back, shaped as the API shows them. A page of orders costs four
queries whatever its size: the page, the count, its lines, its history."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database
from pasar_orders.problems import OrderNotFound
from pasar_orders.schemas import OrderLinePublic, OrderPublic, ShippingAddress, StatusEntryPublic
from pasar_orders.status import INTERNAL_STATUSES
from pasar_orders.tables import order_lines, orders, status_history

_ORDER_COLUMNS = (
    orders.c.id,
    orders.c.user_id,
    orders.c.status,
    orders.c.total,
    orders.c.currency,
    orders.c.shipping_address,
    orders.c.note,
    orders.c.created_at,
    orders.c.updated_at,
)
_LINE_COLUMNS = (
    order_lines.c.order_id,
    order_lines.c.product_id,
    order_lines.c.sku,
    order_lines.c.name,
    order_lines.c.quantity,
    order_lines.c.unit_price,
    order_lines.c.line_total,
)
_HISTORY_COLUMNS = (
    status_history.c.order_id,
    status_history.c.status,
    status_history.c.at,
    status_history.c.by,
    status_history.c.note,
)

# Placements in progress (and their clean-up) are nobody's business.
_visible = orders.c.status.not_in(INTERNAL_STATUSES)


def visible_created_between(
    created_from: datetime | None, created_to: datetime | None
) -> list[ColumnElement[bool]]:
    """Visible orders created in ``[created_from, created_to)``; an open end is unbounded.

    The bounds are aware datetimes in any zone: the column's type stores and compares
    them as naive UTC, like every timestamp here.
    """
    conditions: list[ColumnElement[bool]] = [_visible]
    if created_from is not None:
        conditions.append(orders.c.created_at >= created_from)
    if created_to is not None:
        conditions.append(orders.c.created_at < created_to)
    return conditions


async def get_order(
    *, db: Database, order_id: str, viewer_id: str, viewer_is_admin: bool
) -> OrderPublic:
    """One order as its owner or an admin sees it; anyone else gets 404."""
    async with db.read() as conn:
        return await load_order(
            conn, order_id=order_id, viewer_id=viewer_id, viewer_is_admin=viewer_is_admin
        )


async def load_order(
    conn: AsyncConnection, *, order_id: str, viewer_id: str, viewer_is_admin: bool
) -> OrderPublic:
    query = select(*_ORDER_COLUMNS).where(orders.c.id == order_id, _visible)
    if not viewer_is_admin:
        query = query.where(orders.c.user_id == viewer_id)
    row = (await conn.execute(query)).first()
    if row is None:
        raise OrderNotFound(f"There is no order {order_id!r}.")
    return (await _hydrate(conn, [row]))[0]


async def list_orders(
    *,
    db: Database,
    viewer_id: str,
    viewer_is_admin: bool,
    user_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> tuple[list[OrderPublic], int]:
    """Newest first. A customer sees only their own orders, whatever ``user_id`` says."""
    conditions = visible_created_between(created_from, created_to)
    if not viewer_is_admin:
        conditions.append(orders.c.user_id == viewer_id)
    elif user_id is not None:
        conditions.append(orders.c.user_id == user_id)
    if status is not None:
        conditions.append(orders.c.status == status)
    async with db.read() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(orders).where(*conditions))
        ).scalar_one()
        rows = (
            await conn.execute(
                select(*_ORDER_COLUMNS)
                .where(*conditions)
                .order_by(orders.c.created_at.desc(), orders.c.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
        items = await _hydrate(conn, rows) if rows else []
    return items, int(total)


async def _hydrate(conn: AsyncConnection, rows: Sequence[Any]) -> list[OrderPublic]:
    ids = [row.id for row in rows]
    lines: dict[str, list[OrderLinePublic]] = defaultdict(list)
    for line in await conn.execute(
        select(*_LINE_COLUMNS)
        .where(order_lines.c.order_id.in_(ids))
        .order_by(order_lines.c.order_id, order_lines.c.line_no)
    ):
        lines[line.order_id].append(OrderLinePublic.model_validate(line, from_attributes=True))
    history: dict[str, list[StatusEntryPublic]] = defaultdict(list)
    for entry in await conn.execute(
        select(*_HISTORY_COLUMNS)
        .where(status_history.c.order_id.in_(ids))
        .order_by(status_history.c.order_id, status_history.c.id)
    ):
        history[entry.order_id].append(
            StatusEntryPublic(status=entry.status, at=entry.at, by=entry.by, note=entry.note)
        )
    return [
        OrderPublic(
            id=row.id,
            user_id=row.user_id,
            status=row.status,
            items=lines[row.id],
            total=row.total,
            currency=row.currency,
            shipping_address=ShippingAddress.model_validate(row.shipping_address),
            note=row.note,
            created_at=row.created_at,
            updated_at=row.updated_at,
            status_history=history[row.id],
        )
        for row in rows
    ]
