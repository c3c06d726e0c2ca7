"""Status changes after placement: admin moves, cancellations, and the stock they free.

A change is one conditional ``UPDATE ... WHERE id = :id AND status = :from`` so that of
two conflicting changes exactly one wins; the winner's transaction also writes the
history entry and the outbox event.

Cancelling hands the stock back *after* the commit: the cancellation marks the order
``release_due_at`` and the release job (nudged at once, retried until the Product-Service
answers) calls the idempotent release. So a cancellation stands even while the
Product-Service is down, and the stock can never stay held for a cancelled order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, retrying, skip_locked
from pasar_kit.problems import DependencyUnavailable
from pasar_orders import outbox
from pasar_orders.problems import InvalidTransition, OrderNotFound, PaymentWindowClosed
from pasar_orders.queries import get_order
from pasar_orders.remote import ProductsApi, ReservationGone
from pasar_orders.status import INTERNAL_STATUSES, OrderStatus, check_transition
from pasar_orders.tables import orders, status_history

log = logging.getLogger("pasar.orders.tracking")

SYSTEM = "system"
# How long a release job may take before another replica retries the same order.
RELEASE_LEASE = timedelta(seconds=30)
RELEASE_RETRY = timedelta(seconds=5)


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: a user id (customer or admin), or the system."""

    id: str
    is_admin: bool = False


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
        insert(status_history).values(order_id=order_id, status=status, at=at, by=by, note=note)
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
) -> dict[str, Any]:
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
) -> dict[str, Any]:
    return await change_status(
        db=db,
        products=products,
        order_id=order_id,
        target=OrderStatus.CANCELLED,
        actor=actor,
        note="Cancelled by the customer" if not actor.is_admin else "Cancelled by an admin",
        now=now,
    )


async def release_cancelled_stock(
    *, db: Database, products: ProductsApi, now: datetime, batch_size: int = 50
) -> int:
    """Hand back the stock of cancelled orders; returns how many were released.

    Rows are claimed by pushing ``release_due_at`` into the future (a lease), so
    replicas never work on the same order and a crashed one's claim lapses.
    """
    async with db.write() as conn:
        ids = list(
            (
                await conn.execute(
                    select(orders.c.id)
                    .where(orders.c.release_due_at <= now)
                    .order_by(orders.c.release_due_at)
                    .limit(batch_size)
                    .with_for_update(**skip_locked(db.dialect))
                )
            ).scalars()
        )
        if not ids:
            return 0
        await conn.execute(
            update(orders).where(orders.c.id.in_(ids)).values(release_due_at=now + RELEASE_LEASE)
        )
    done: list[str] = []
    failed: list[str] = []
    for order_id in ids:
        try:
            await products.release(order_id)  # False (404) means nothing was held
        except DependencyUnavailable as exc:
            log.warning(
                "stock release for %s failed: %s", order_id, exc, extra={"order_id": order_id}
            )
            failed.append(order_id)
        else:
            done.append(order_id)
    async with db.write() as conn:
        if done:
            await conn.execute(
                update(orders).where(orders.c.id.in_(done)).values(release_due_at=None)
            )
        if failed:
            await conn.execute(
                update(orders)
                .where(orders.c.id.in_(failed))
                .values(release_due_at=now + RELEASE_RETRY)
            )
    return len(done)
