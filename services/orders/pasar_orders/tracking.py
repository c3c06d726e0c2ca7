"""Status changes after placement: admin moves, cancellations, and the stock they free.

A change is one conditional ``UPDATE ... WHERE id = :id AND status = :from`` so that of
two conflicting changes exactly one wins; the winner's transaction also writes the
history entry and the outbox event.

Cancelling hands the stock back *after* the commit: the cancellation marks the order
``release_due_at`` and ``settlement.settle_cancelled_orders`` (nudged at once, retried
until the Product-Service answers) calls the idempotent release. So a cancellation
stands even while the Product-Service is down, and the stock can never stay held for a
cancelled order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, retrying
from pasar_orders import outbox
from pasar_orders.problems import InvalidTransition, OrderNotFound, PaymentWindowClosed
from pasar_orders.queries import get_order
from pasar_orders.remote import ProductsApi, ReservationGone
from pasar_orders.schemas import OrderPublic
from pasar_orders.status import INTERNAL_STATUSES, OrderStatus, check_transition
from pasar_orders.tables import orders, status_history

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: a user id (customer or admin), or the system."""

    id: str
    is_admin: bool = False


# Built once (see ``pasar_kit.db``): every status change, placement included, runs it.
_ADD_HISTORY = insert(status_history)


async def record_change(
    conn: AsyncConnection,
    *,
    order_id: str,
    user_id: str,
    status: str,
    by: str,
    note: str | None,
    at: datetime,
    created: bool = False,
) -> None:
    """The history entry and the notification of one change, in the caller's transaction."""
    await conn.execute(
        _ADD_HISTORY, {"order_id": order_id, "status": status, "at": at, "by": by, "note": note}
    )
    await outbox.enqueue(
        conn, order_id=order_id, user_id=user_id, status=status, created=created, at=at
    )


async def apply_transition(
    conn: AsyncConnection,
    *,
    order_id: str,
    user_id: str,
    current: str,
    target: OrderStatus,
    by: str,
    note: str | None,
    now: datetime,
    extra_condition: Any = None,
) -> bool:
    """Move one order ``current -> target`` if nobody moved it first. True if this won."""
    effects = check_transition(current, target)
    values: dict[str, Any] = {"status": target.value, "updated_at": now}
    if effects.release_stock:
        values["release_due_at"] = now
    if current == OrderStatus.PENDING_PAYMENT:
        # Paid, moved on by an admin, or cancelled: no longer an unpaid order, so its
        # slot (placement.py) is free, in the same update that moves it.
        values["unpaid_slot"] = None
    query = update(orders).where(orders.c.id == order_id, orders.c.status == current)
    if extra_condition is not None:
        query = query.where(extra_condition)
    result = await conn.execute(query.values(**values))
    if result.rowcount != 1:
        return False
    await record_change(
        conn, order_id=order_id, user_id=user_id, status=target.value, by=by, note=note, at=now
    )
    return True


async def change_status(
    *,
    db: Database,
    products: ProductsApi,
    order_id: str,
    target: OrderStatus,
    actor: Actor,
    note: str | None,
    now: datetime,
) -> OrderPublic:
    """Change an order's status as ``actor``; returns the order as now stored.

    Customers may only touch their own orders (anyone else's is 404).
    """
    async with db.read() as conn:
        query = select(orders.c.user_id, orders.c.status).where(
            orders.c.id == order_id, orders.c.status.not_in(INTERNAL_STATUSES)
        )
        if not actor.is_admin:
            query = query.where(orders.c.user_id == actor.id)
        row = (await conn.execute(query)).first()
    if row is None:
        raise OrderNotFound(f"There is no order {order_id!r}.")
    effects = check_transition(row.status, target)
    if effects.commit_reservation:
        # The hold must stop expiring before the order counts as sold.
        try:
            await products.commit(order_id)
        except ReservationGone as exc:
            raise PaymentWindowClosed(
                "The stock held for this order is no longer reserved."
            ) from exc

    async def attempt() -> bool:
        async with db.write() as conn:
            return await apply_transition(
                conn,
                order_id=order_id,
                user_id=row.user_id,
                current=row.status,
                target=target,
                by=actor.id,
                note=note,
                now=now,
            )

    # The outbox insert can deadlock with a relay's claim (MariaDB gap locks): the
    # transaction rolled back whole, so running it again is safe.
    won = await retrying(attempt)
    if not won:
        raise InvalidTransition(
            "The order changed status meanwhile; reload it and try again.",
            requested_status=target.value,
        )
    return await get_order(db=db, order_id=order_id, viewer_id=actor.id, viewer_is_admin=True)


async def cancel_order(
    *, db: Database, products: ProductsApi, order_id: str, actor: Actor, now: datetime
) -> OrderPublic:
    return await change_status(
        db=db,
        products=products,
        order_id=order_id,
        target=OrderStatus.CANCELLED,
        actor=actor,
        note="Cancelled by the customer" if not actor.is_admin else "Cancelled by an admin",
        now=now,
    )
