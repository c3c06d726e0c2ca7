"""Order figures for the admin pages: how many orders, in which status, for how much."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from pasar_kit.db import Database
from pasar_orders.queries import visible_created_between
from pasar_orders.status import OrderStatus
from pasar_orders.tables import orders


@dataclass(frozen=True)
class OrderStats:
    by_status: dict[OrderStatus, int]  # every public status, 0 when it has no order
    orders: int
    revenue: int  # the totals of the orders not cancelled


async def order_stats(
    *, db: Database, created_from: datetime | None, created_to: datetime | None
) -> OrderStats:
    """Figures over the visible orders created in ``[created_from, created_to)``.

    One grouped query; placements in progress are not orders yet and are not counted.
    """
    statement = (
        select(orders.c.status, func.count(), func.coalesce(func.sum(orders.c.total), 0))
        .where(*visible_created_between(created_from, created_to))
        .group_by(orders.c.status)
    )
    async with db.read() as conn:
        rows = (await conn.execute(statement)).all()
    by_status = dict.fromkeys(OrderStatus, 0)
    count = revenue = 0
    for status, n, total in rows:
        count += int(n)
        if status in by_status:
            by_status[OrderStatus(status)] = int(n)
        if status != OrderStatus.CANCELLED:
            revenue += int(total)
    return OrderStats(by_status=by_status, orders=count, revenue=revenue)
