"""The stock invariant, checked: for every product at every moment,

    initial stock + adjustments == available stock + held + committed

(released reservations count for nothing). The tests end every concurrency run with it,
and admins can run it through ``GET /admin/stock-audit``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Subquery, func, select

from pasar_kit.db import Database
from pasar_products.reservations import COMMITTED, HELD
from pasar_products.tables import products, reservation_lines, reservations, stock_adjustments


@dataclass(frozen=True)
class Violation:
    product_id: str
    sku: str
    ledger: int  # initial stock plus every adjustment
    stock: int
    held: int
    committed: int


def _reserved(status: str) -> Subquery:
    return (
        select(
            reservation_lines.c.product_id.label("product_id"),
            func.sum(reservation_lines.c.quantity).label("quantity"),
        )
        .join(reservations, reservations.c.id == reservation_lines.c.reservation_id)
        .where(reservations.c.status == status)
        .group_by(reservation_lines.c.product_id)
        .subquery(status)
    )


async def audit_stock(*, db: Database) -> list[Violation]:
    """Every product whose stock does not add up. One statement, so one consistent view."""
    ledger = (
        select(
            stock_adjustments.c.product_id.label("product_id"),
            func.sum(stock_adjustments.c.delta).label("quantity"),
        )
        .group_by(stock_adjustments.c.product_id)
        .subquery("ledger")
    )
    held = _reserved(HELD)
    committed = _reserved(COMMITTED)
    statement = (
        select(
            products.c.id,
            products.c.sku,
            products.c.stock,
            func.coalesce(ledger.c.quantity, 0).label("ledger"),
            func.coalesce(held.c.quantity, 0).label("held"),
            func.coalesce(committed.c.quantity, 0).label("committed"),
        )
        .outerjoin(ledger, ledger.c.product_id == products.c.id)
        .outerjoin(held, held.c.product_id == products.c.id)
        .outerjoin(committed, committed.c.product_id == products.c.id)
        .order_by(products.c.id)
    )
    async with db.read() as conn:
        rows = (await conn.execute(statement)).all()
    return [
        Violation(
            product_id=row.id,
            sku=row.sku,
            ledger=int(row.ledger),
            stock=int(row.stock),
            held=int(row.held),
            committed=int(row.committed),
        )
        for row in rows
        if int(row.ledger) != int(row.stock) + int(row.held) + int(row.committed)
    ]
