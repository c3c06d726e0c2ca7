"""Settling cancelled orders after the fact: the stock goes back to the Product-Service
and a payment already taken is refunded.

A cancellation (by a customer, an admin or the payment expiry) commits first and sets
``release_due_at``; this job then does the outside calls, each idempotent, and clears
the mark only when all succeeded. Rows are claimed by pushing ``release_due_at`` into
the future (a lease) under ``SKIP LOCKED``, so replicas never work on the same order and
a crashed worker's claim simply lapses.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update

from pasar_kit.db import Database, retrying
from pasar_kit.problems import DependencyUnavailable
from pasar_kit.workers import claim_with_lease
from pasar_orders.remote import ProductsApi
from pasar_orders.tables import orders

log = logging.getLogger("pasar.orders.settlement")


class Refunds(Protocol):
    """What gives a payment back: the test card provider or a gateway."""

    async def refund(self, *, order_id: str, reference: str) -> None: ...


# How long a worker may take before another replica retries the same order.
LEASE = timedelta(seconds=30)
RETRY = timedelta(seconds=5)


async def settle_cancelled_orders(
    *,
    db: Database,
    products: ProductsApi,
    payments: Refunds | None,
    now: datetime,
    batch_size: int = 50,
) -> int:
    """Release (and refund) what cancelled orders still hold; returns how many were settled."""

    due = (
        select(orders.c.id, orders.c.payment_reference)
        .where(orders.c.release_due_at <= now)
        .order_by(orders.c.release_due_at)
        .limit(batch_size)
    )
    rows = await claim_with_lease(db, due, table=orders, lease={"release_due_at": now + LEASE})
    if not rows:
        return 0
    done: list[str] = []
    failed: list[str] = []
    for row in rows:
        try:
            await products.release(row.id)  # False (404) means nothing was held
            if row.payment_reference is not None and payments is not None:
                await payments.refund(order_id=row.id, reference=row.payment_reference)
        except DependencyUnavailable as exc:
            log.warning(
                "settling %s failed, will retry: %s", row.id, exc, extra={"order_id": row.id}
            )
            failed.append(row.id)
        else:
            done.append(row.id)

    async def record() -> None:
        # Only rows still under our lease: one marked again meanwhile (a payment that
        # landed on the cancelled order) must be settled once more, with its refund.
        ours = orders.c.release_due_at == now + LEASE
        async with db.write() as conn:
            if done:
                await conn.execute(
                    update(orders).where(orders.c.id.in_(done), ours).values(release_due_at=None)
                )
            if failed:
                await conn.execute(
                    update(orders)
                    .where(orders.c.id.in_(failed), ours)
                    .values(release_due_at=now + RETRY)
                )

    await retrying(record)
    return len(done)
