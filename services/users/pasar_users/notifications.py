"""The notification inbox: events from other services, stored exactly once per event id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from pasar_kit.db import Database, looking_again
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
_KNOWN_USERS = select(users.c.id).where(users.c.id.in_(bindparam("ids", expanding=True)))
_STORED = select(notifications.c.event_id).where(
    notifications.c.event_id.in_(bindparam("ids", expanding=True))
)
_ADD = insert(notifications)


async def deliver(*, db: Database, event: NotificationCreate, now: datetime) -> bool:
    """Store one event (received at ``now``) unless it already was; True when it is new."""
    (outcome,) = await deliver_many(db=db, events=[event], now=now)
    if outcome.outcome == "unknown_user":
        raise UnknownUser(f"No user {event.user_id}.")
    return outcome.outcome == "stored"


async def deliver_many(
    *, db: Database, events: Sequence[NotificationCreate], now: datetime
) -> list[NotificationOutcome]:
    """Store each event once, all in one transaction, and say per event what became of it.

    The unique index on ``event_id`` decides: when another delivery of one of these
    events commits between our look and our insert, the insert fails whole and we look
    again, so a redelivery, or two replicas racing, store one row. An event of an unknown
    user is not stored (the sender may try it again later).
    """

    async def attempt() -> list[NotificationOutcome]:
        async with db.write() as conn:
            known = set(await conn.scalars(_KNOWN_USERS, {"ids": [e.user_id for e in events]}))
            stored = set(await conn.scalars(_STORED, {"ids": [e.event_id for e in events]}))
            rows: list[dict[str, Any]] = []
            outcomes: list[NotificationOutcome] = []
            for event in events:
                if event.user_id not in known:
                    outcome = "unknown_user"
                elif event.event_id in stored:
                    outcome = "duplicate"
                else:
                    stored.add(event.event_id)
                    rows.append({"id": str(uuid.uuid4()), **event.model_dump(), "created_at": now})
                    outcome = "stored"
                outcomes.append(NotificationOutcome(event_id=event.event_id, outcome=outcome))
            if rows:
                await conn.execute(_ADD, rows)
            return outcomes

    return await looking_again(attempt)


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
