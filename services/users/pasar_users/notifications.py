"""The notification inbox: events from other services, stored exactly once per event id.

A newly stored order event also puts its mail in the outbox, in the same transaction:
``order_status`` to the customer (unless they turned order emails off) and, for a new
order, ``admin_new_order`` to every active admin (unless the shop turned that off).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, looking_again
from pasar_users.mail import outbox
from pasar_users.problems import NotificationNotFound, UnknownUser
from pasar_users.schemas import NotificationCreate, NotificationOutcome, NotificationPublic
from pasar_users.tables import AnyRow, notifications, users

_COLUMNS = (
    notifications.c.id,
    notifications.c.type,
    notifications.c.order_id,
    notifications.c.status,
    notifications.c.message,
    notifications.c.read_at,
    notifications.c.occurred_at,
    notifications.c.created_at,
)


def _notification(row: AnyRow) -> NotificationPublic:
    return NotificationPublic(
        id=row.id,
        type=row.type,
        order_id=row.order_id,
        status=row.status,
        message=row.message,
        read=row.read_at is not None,
        occurred_at=row.occurred_at,
        created_at=row.created_at,
    )


# The statements of every delivery, built once (see ``pasar_kit.db``).
_KNOWN_USERS = select(
    users.c.id, users.c.email, users.c.language, users.c.order_emails, users.c.active
).where(users.c.id.in_(bindparam("ids", expanding=True)))
_ADMINS = select(users.c.id, users.c.email, users.c.language).where(
    users.c.role == "admin", users.c.active.is_(True)
)
ORDER_CREATED = "order.created"
# The notification columns (``order`` only feeds the mail).
_STORED_FIELDS = {
    "event_id",
    "user_id",
    "type",
    "order_id",
    "status",
    "message",
    "occurred_at",
}
_STORED = select(notifications.c.event_id).where(
    notifications.c.event_id.in_(bindparam("ids", expanding=True))
)
_ADD = insert(notifications)


async def deliver(
    *, db: Database, event: NotificationCreate, now: datetime, admin_order_emails: bool = True
) -> bool:
    """Store one event (received at ``now``) unless it already was; True when it is new."""
    (outcome,) = await deliver_many(
        db=db, events=[event], now=now, admin_order_emails=admin_order_emails
    )
    if outcome.outcome == "unknown_user":
        raise UnknownUser(f"No user {event.user_id}.")
    return outcome.outcome == "stored"


async def deliver_many(
    *,
    db: Database,
    events: Sequence[NotificationCreate],
    now: datetime,
    admin_order_emails: bool = True,
) -> list[NotificationOutcome]:
    """Store each event once, all in one transaction, and say per event what became of it.

    The unique index on ``event_id`` decides: when another delivery of one of these
    events commits between our look and our insert, the insert fails whole and we look
    again, so a redelivery, or two replicas racing, store one row. An event of an unknown
    user is not stored (the sender may try it again later).
    """

    async def attempt() -> list[NotificationOutcome]:
        async with db.write() as conn:
            ids = [e.user_id for e in events]
            known = {u.id: u for u in await conn.execute(_KNOWN_USERS, {"ids": ids})}
            stored = set(await conn.scalars(_STORED, {"ids": [e.event_id for e in events]}))
            rows: list[dict[str, Any]] = []
            new: list[NotificationCreate] = []
            outcomes: list[NotificationOutcome] = []
            for event in events:
                if event.user_id not in known:
                    outcome = "unknown_user"
                elif event.event_id in stored:
                    outcome = "duplicate"
                else:
                    stored.add(event.event_id)
                    fields = event.model_dump(include=_STORED_FIELDS)
                    rows.append({"id": str(uuid.uuid4()), **fields, "created_at": now})
                    new.append(event)
                    outcome = "stored"
                outcomes.append(NotificationOutcome(event_id=event.event_id, outcome=outcome))
            if rows:
                await conn.execute(_ADD, rows)
                await _enqueue_mail(
                    conn, new, customers=known, admin_order_emails=admin_order_emails, now=now
                )
            return outcomes

    return await looking_again(attempt)


async def _enqueue_mail(
    conn: AsyncConnection,
    events: Sequence[NotificationCreate],
    *,
    customers: dict[str, AnyRow],
    admin_order_emails: bool,
    now: datetime,
) -> None:
    """The order mail of newly stored events, in their transaction."""
    messages: list[outbox.Message] = []
    admins: Sequence[AnyRow] | None = None
    for event in events:
        if event.order_id is None or not event.type.startswith("order."):
            continue
        customer = customers[event.user_id]
        context: dict[str, Any] = {
            "type": event.type,
            "order_id": event.order_id,
            "status": event.status,
            "order": event.order.model_dump() if event.order is not None else None,
        }
        if customer.order_emails and customer.active:
            messages.append(
                outbox.Message(
                    template="order_status",
                    recipient=customer.email,
                    language=customer.language,
                    context=context,
                    user_id=customer.id,
                    order_id=event.order_id,
                    dedupe_key=f"notification:{event.event_id}",
                )
            )
        if event.type == ORDER_CREATED and admin_order_emails:
            if admins is None:
                admins = (await conn.execute(_ADMINS)).all()
            for admin in admins:
                messages.append(
                    outbox.Message(
                        template="admin_new_order",
                        recipient=admin.email,
                        language=admin.language,
                        context={**context, "customer": customer.email},
                        user_id=admin.id,
                        order_id=event.order_id,
                        dedupe_key=f"notification:{event.event_id}:admin:{admin.id}",
                    )
                )
    if messages:
        await outbox.enqueue_many(conn, messages, now=now)


async def inbox(
    *, db: Database, user_id: str, unread_only: bool, limit: int, offset: int
) -> tuple[list[NotificationPublic], int]:
    """The user's notifications, newest first."""
    condition = notifications.c.user_id == user_id
    if unread_only:
        condition = condition & notifications.c.read_at.is_(None)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(*_COLUMNS)
                .where(condition)
                .order_by(notifications.c.occurred_at.desc(), notifications.c.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
        total = await conn.scalar(select(func.count()).select_from(notifications).where(condition))
    return [_notification(row) for row in rows], int(total or 0)


async def mark_read(*, db: Database, user_id: str, notification_id: str, now: datetime) -> None:
    """Read at ``now``, unless already read (idempotent); another user's notification is
    simply not found."""
    async with db.write() as conn:
        exists = await conn.scalar(
            select(notifications.c.id).where(
                notifications.c.id == notification_id, notifications.c.user_id == user_id
            )
        )
        if exists is None:
            raise NotificationNotFound()
        await conn.execute(
            update(notifications)
            .where(notifications.c.id == notification_id, notifications.c.read_at.is_(None))
            .values(read_at=now)
        )
