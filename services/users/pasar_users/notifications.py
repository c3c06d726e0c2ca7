"""The notification inbox: events from other services, stored exactly once per event id."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pasar_kit.db import Database, retrying
from pasar_users.problems import NotificationNotFound, UnknownUser
from pasar_users.schemas import NotificationPublic
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


async def deliver(
    *,
    db: Database,
    event_id: str,
    user_id: str,
    type: str,
    order_id: str | None,
    status: str | None,
    message: str,
    occurred_at: datetime,
    now: datetime,
) -> bool:
    """Store the event (received at ``now``) unless it already was; True when it is new.

    The unique index on ``event_id`` decides, so a redelivery, or two identical
    deliveries racing each other, store one row.
    """
    async with db.read() as conn:
        known = await conn.scalar(select(users.c.id).where(users.c.id == user_id))
    if known is None:
        raise UnknownUser(f"No user {user_id}.")
    row = {
        "id": str(uuid.uuid4()),
        "event_id": event_id,
        "user_id": user_id,
        "type": type,
        "order_id": order_id,
        "status": status,
        "message": message,
        "occurred_at": occurred_at,
        "created_at": now,
    }

    async def insert_row() -> None:
        async with db.write() as conn:
            await conn.execute(insert(notifications).values(row))

    try:
        await retrying(insert_row)
    except IntegrityError:
        async with db.read() as conn:
            stored = await conn.scalar(
                select(notifications.c.id).where(notifications.c.event_id == event_id)
            )
        if stored is None:
            raise  # not a duplicate: let it surface
        return False
    return True


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
