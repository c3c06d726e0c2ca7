"""Notifications through a transactional outbox.

Every status change writes an outbox row in the transaction that makes the change, so
a committed change always has its event and a rolled-back one never does. The relay
hands events to the User-Service at least once (it dedupes on ``event_id``):

* in order per order: an event is not sent while an earlier one of its order is
  undelivered;
* in batches: one request hands over up to 100 events (one by one only when the
  User-Service refuses a batch as a whole);
* safe with several replicas: rows are claimed with ``FOR UPDATE SKIP LOCKED`` (SQLite
  serialises writers instead) and leased by pushing ``next_attempt_at`` forward, so the
  HTTP calls happen outside any transaction and a crashed relay's claim simply lapses;
* with exponential backoff while the User-Service is down;
* traced: each row keeps the ``traceparent`` of the request that wrote it, and the call
  that delivers it continues that trace (a batch of events from several traces gets a
  trace of its own, linked both ways with each of theirs).

Each event carries what the order's mail shows (``order``: the lines, the total and the
note of that status change, e.g. a tracking note), read for the whole batch in two
queries when it is handed over, not stored in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, retrying
from pasar_kit.tracing import current_traceparent, span_for_batch, span_from_traceparent
from pasar_kit.workers import claim_with_lease, retry_delay
from pasar_orders.remote import NOTIFY_BATCH_LIMIT, BatchRefused, UsersApi
from pasar_orders.tables import order_lines, orders, outbox, status_history

log = logging.getLogger("pasar.orders.outbox")

CREATED = "order.created"
STATUS_CHANGED = "order.status_changed"

_PHRASES = {
    "pending_payment": "is waiting for payment",
    "processing": "is being processed",
    "shipped": "has been shipped",
    "completed": "has been completed",
    "cancelled": "has been cancelled",
}

# How long a relay may take to deliver what it claimed before another may retry it.
LEASE = timedelta(seconds=30)


def short_id(order_id: str) -> str:
    return order_id.replace("-", "")[:8].upper()


def message_for(order_id: str, status: str, *, created: bool) -> str:
    """What the customer reads, e.g. "Order #1A2B3C4D is being processed."."""
    phrase = _PHRASES.get(status, f"is now {status}")
    if created:
        return f"Order #{short_id(order_id)} has been placed and {phrase}."
    return f"Order #{short_id(order_id)} {phrase}."


# Built once (see ``pasar_kit.db``): every status change, placement included, runs it.
_ADD_EVENT = insert(outbox)


async def enqueue(
    conn: AsyncConnection,
    *,
    order_id: str,
    user_id: str,
    status: str,
    created: bool,
    at: datetime,
) -> None:
    """Add the event of one status change, inside the caller's transaction."""
    await conn.execute(
        _ADD_EVENT,
        {
            "event_id": str(uuid.uuid4()),
            "order_id": order_id,
            "user_id": user_id,
            "type": CREATED if created else STATUS_CHANGED,
            "status": status,
            "message": message_for(order_id, status, created=created),
            "occurred_at": at,
            "attempts": 0,
            "next_attempt_at": at,
            "traceparent": current_traceparent(),
        },
    )


# The User-Service takes at most this many lines in a notification's ``order``.
MAIL_LINES_LIMIT = 200


def _event(
    row: Any, summaries: dict[tuple[str, str], dict[str, Any]] | None = None
) -> dict[str, Any]:
    event = {
        "event_id": row.event_id,
        "user_id": row.user_id,
        "type": row.type,
        "order_id": row.order_id,
        "status": row.status,
        "message": row.message,
        "occurred_at": row.occurred_at.isoformat().replace("+00:00", "Z"),
    }
    summary = (summaries or {}).get((row.order_id, row.status))
    if summary is not None:
        event["order"] = summary
    return event


async def order_summaries(
    db: Database, rows: Sequence[Any]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (order id, status) of ``rows``: the order's lines and total and the note of
    that status change (the latest, were there several), for the mail."""
    order_ids = sorted({row.order_id for row in rows})
    if not order_ids:
        return {}
    async with db.read() as conn:
        lines = (
            await conn.execute(
                select(
                    orders.c.id,
                    orders.c.total,
                    order_lines.c.product_id,
                    order_lines.c.name,
                    order_lines.c.quantity,
                    order_lines.c.unit_price,
                    order_lines.c.line_total,
                )
                .select_from(orders.outerjoin(order_lines, order_lines.c.order_id == orders.c.id))
                .where(orders.c.id.in_(order_ids))
                .order_by(orders.c.id, order_lines.c.line_no)
            )
        ).all()
        notes = (
            await conn.execute(
                select(status_history.c.order_id, status_history.c.status, status_history.c.note)
                .where(status_history.c.order_id.in_(order_ids))
                .order_by(status_history.c.id)
            )
        ).all()
    totals: dict[str, int] = {}
    listed: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        totals[line.id] = int(line.total)
        shown = listed.setdefault(line.id, [])
        if line.product_id is not None and len(shown) < MAIL_LINES_LIMIT:
            shown.append(
                {
                    "product_id": line.product_id,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price": int(line.unit_price),
                    "line_total": int(line.line_total),
                }
            )
    noted = {(note.order_id, note.status): note.note for note in notes}
    return {
        (row.order_id, row.status): {
            "lines": listed[row.order_id],
            "total": totals[row.order_id],
            "note": noted.get((row.order_id, row.status)),
        }
        for row in rows
        if row.order_id in totals
    }


async def relay_outbox(
    *,
    db: Database,
    users: UsersApi,
    now: datetime,
    batch_size: int = 100,
    backoff_base: float = 0.5,
    backoff_max: float = 60.0,
) -> int:
    """Deliver what is due; returns how many events were delivered."""
    rows = await claim_with_lease(
        db,
        _due(now, batch_size),
        table=outbox,
        lease={"next_attempt_at": now + LEASE, "attempts": outbox.c.attempts + 1},
    )
    if not rows:
        return 0
    try:
        summaries = await order_summaries(db, rows)
    except Exception:  # the mail goes without lines rather than the notification waiting
        log.exception("could not read the orders of %d events", len(rows))
        summaries = {}
    results = await _hand_over(users, rows, summaries)
    delivered: list[int] = []
    retries: dict[int, datetime] = {}
    for row, result in zip(rows, results, strict=True):
        if not isinstance(result, BaseException):
            delivered.append(row.id)
            continue
        log.warning(
            "notification %s not delivered (attempt %d): %s",
            row.event_id,
            row.attempts + 1,
            result,
            extra={"order_id": row.order_id},
        )
        retries[row.id] = now + retry_delay(row.attempts + 1, base=backoff_base, cap=backoff_max)
    await retrying(lambda: _record(db, delivered=delivered, retries=retries, now=now))
    return len(delivered)


class Undelivered(Exception):
    """The User-Service did not store an event (it named a user it does not know)."""


async def _hand_over(
    users: UsersApi, rows: Sequence[Any], summaries: dict[tuple[str, str], dict[str, Any]]
) -> list[BaseException | None]:
    """Hand the events to the User-Service, one request per ``NOTIFY_BATCH_LIMIT``; per
    row, None when users has it (stored now or before), else why not.

    When users refuses a batch as a whole, its events go one by one, so that one event
    it finds invalid never holds back the others.
    """
    outcomes: list[BaseException | None] = []
    for start in range(0, len(rows), NOTIFY_BATCH_LIMIT):
        chunk = rows[start : start + NOTIFY_BATCH_LIMIT]
        try:
            with span_for_batch("outbox deliver", [row.traceparent for row in chunk]):
                answered = await users.notify_many([_event(row, summaries) for row in chunk])
        except BatchRefused:
            outcomes += await asyncio.gather(
                *(_notify_one(users, row, summaries) for row in chunk), return_exceptions=True
            )
            continue
        except Exception as exc:  # users down or confused: every event of it waits
            outcomes += [exc] * len(chunk)
            continue
        for row in chunk:
            outcome = answered.get(row.event_id, "missing from the answer")
            outcomes.append(None if outcome in ("stored", "duplicate") else Undelivered(outcome))
    return outcomes


async def _notify_one(
    users: UsersApi, row: Any, summaries: dict[tuple[str, str], dict[str, Any]]
) -> None:
    with span_from_traceparent("outbox deliver", row.traceparent):
        await users.notify(_event(row, summaries))


def _due(now: datetime, batch_size: int) -> Select[Any]:
    """Events due for delivery, oldest first; per order, in order: an event waits for
    the undelivered ones before it."""
    earlier = outbox.alias("earlier")
    return (
        select(
            outbox.c.id,
            outbox.c.event_id,
            outbox.c.user_id,
            outbox.c.type,
            outbox.c.order_id,
            outbox.c.status,
            outbox.c.message,
            outbox.c.occurred_at,
            outbox.c.attempts,
            outbox.c.traceparent,
        )
        .where(
            outbox.c.delivered_at.is_(None),
            outbox.c.next_attempt_at <= now,
            ~exists().where(
                and_(
                    earlier.c.order_id == outbox.c.order_id,
                    earlier.c.delivered_at.is_(None),
                    earlier.c.id < outbox.c.id,
                )
            ),
        )
        .order_by(outbox.c.id)
        .limit(batch_size)
    )


async def _record(
    db: Database, *, delivered: list[int], retries: dict[int, datetime], now: datetime
) -> None:
    async with db.write() as conn:
        if delivered:
            await conn.execute(
                update(outbox).where(outbox.c.id.in_(delivered)).values(delivered_at=now)
            )
        for event_id, retry_at in retries.items():
            await conn.execute(
                update(outbox).where(outbox.c.id == event_id).values(next_attempt_at=retry_at)
            )


async def purge_delivered(*, db: Database, older_than: datetime) -> int:
    async with db.write() as conn:
        result = await conn.execute(
            delete(outbox).where(
                outbox.c.delivered_at.is_not(None), outbox.c.delivered_at < older_than
            )
        )
    return result.rowcount
