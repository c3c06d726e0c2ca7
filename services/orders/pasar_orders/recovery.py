"""Background clean-up that keeps crashes and abandoned orders from leaking stock.

* ``recover_stuck_placements``: an order still ``placing`` past the deadline belongs to
  a placement that died; its reservation is released, then the row dropped.
* ``expire_unpaid_orders``: ``pending_payment`` orders past the payment window are
  cancelled (their stock released by the release job).
* ``purge_old_records``: idempotency keys past their lifetime, delivered events.

Each is safe with several replicas: rows are claimed with ``SKIP LOCKED`` inside a
short transaction and changed with conditional updates.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from pasar_kit.db import Database, retrying, skip_locked
from pasar_kit.problems import DependencyUnavailable
from pasar_orders.idempotency import purge_idempotency_keys
from pasar_orders.outbox import purge_delivered
from pasar_orders.remote import ProductsApi
from pasar_orders.status import PLACING, RECOVERING, OrderStatus
from pasar_orders.tables import orders
from pasar_orders.tracking import SYSTEM, apply_transition

log = logging.getLogger("pasar.orders.recovery")


async def recover_stuck_placements(
    *,
    db: Database,
    products: ProductsApi,
    now: datetime,
    deadline_seconds: float = 60,
    batch_size: int = 50,
) -> int:
    """Release and drop placements that died; returns how many were dropped.

    Claiming flips the row to ``recovering``: a placement that is merely slow then
    fails its own final ``WHERE status = 'placing'`` update, so an order can never be
    completed on stock that recovery gave back. A claim whose worker died is taken
    again after another deadline.
    """
    cutoff = now - timedelta(seconds=deadline_seconds)
    async with db.write() as conn:
        ids = list(
            (
                await conn.execute(
                    select(orders.c.id)
                    .where(orders.c.status.in_((PLACING, RECOVERING)), orders.c.updated_at < cutoff)
                    .order_by(orders.c.updated_at)
                    .limit(batch_size)
                    .with_for_update(**skip_locked(db.dialect))
                )
            ).scalars()
        )
        if not ids:
            return 0
        await conn.execute(
            update(orders).where(orders.c.id.in_(ids)).values(status=RECOVERING, updated_at=now)
        )
    dropped = 0
    for order_id in ids:
        try:
            await products.release(order_id)  # False (404): nothing was ever held
        except DependencyUnavailable as exc:
            log.warning("recovery of %s must wait: %s", order_id, exc, extra={"order_id": order_id})
            continue
        async with db.write() as conn:
            result = await conn.execute(
                delete(orders).where(orders.c.id == order_id, orders.c.status == RECOVERING)
            )
        dropped += result.rowcount
        log.info("recovered stuck placement %s", order_id, extra={"order_id": order_id})
    return dropped


async def expire_unpaid_orders(
    *, db: Database, now: datetime, window_seconds: float, batch_size: int = 100
) -> int:
    """Cancel orders left unpaid past the window; returns how many were cancelled."""
    cutoff = now - timedelta(seconds=window_seconds)

    async def expire() -> int:
        async with db.write() as conn:
            rows = (
                await conn.execute(
                    select(orders.c.id, orders.c.user_id)
                    .where(
                        orders.c.status == OrderStatus.PENDING_PAYMENT.value,
                        orders.c.created_at < cutoff,
                        orders.c.paid_at.is_(None),
                    )
                    .order_by(orders.c.created_at)
                    .limit(batch_size)
                    .with_for_update(**skip_locked(db.dialect))
                )
            ).all()
            cancelled = 0
            for row in rows:
                # paid_at IS NULL again in the update: a payment that just landed wins.
                cancelled += await apply_transition(
                    conn,
                    order_id=row.id,
                    user_id=row.user_id,
                    current=OrderStatus.PENDING_PAYMENT.value,
                    target=OrderStatus.CANCELLED,
                    by=SYSTEM,
                    note="Not paid in time",
                    now=now,
                    extra_condition=orders.c.paid_at.is_(None),
                )
        return cancelled

    # The outbox inserts can deadlock with a relay's claim: run the batch again.
    return await retrying(expire)


async def purge_old_records(
    *, db: Database, now: datetime, idempotency_ttl_seconds: float, keep_events_seconds: float
) -> int:
    keys = await purge_idempotency_keys(
        db=db, older_than=now - timedelta(seconds=idempotency_ttl_seconds)
    )
    events = await purge_delivered(db=db, older_than=now - timedelta(seconds=keep_events_seconds))
    return keys + events
