"""Writing a message into the outbox, in the transaction of what caused it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database
from pasar_kit.tracing import current_traceparent
from pasar_users.tables import deliveries

_SEEN = select(deliveries.c.dedupe_key).where(
    deliveries.c.dedupe_key.in_(bindparam("keys", expanding=True))
)
_ADD = insert(deliveries)

# Every template a message may name; each is rendered in both languages.
Template = Literal[
    "verify_email",  # a link to verify the address (minted when sent)
    "password_reset",  # a reset link (minted when sent; dropped when no such account)
    "password_changed",  # security notice
    "email_changed",  # security notice, to the old address
    "order_status",  # an order notification to its customer
    "admin_new_order",  # a new order, to each admin
]


@dataclass(frozen=True)
class Message:
    """One email to put in the outbox (see ``enqueue`` for the fields)."""

    template: Template
    recipient: str
    language: str
    context: dict[str, Any] | None = None
    user_id: str | None = None
    order_id: str | None = None
    dedupe_key: str | None = None
    traceparent: str | None = None


def _json(context: dict[str, Any] | None) -> str:
    return json.dumps(context or {}, ensure_ascii=False, separators=(",", ":"))


async def enqueue(
    conn: AsyncConnection,
    *,
    template: Template,
    recipient: str,
    language: str,
    now: datetime,
    context: dict[str, Any] | None = None,
    user_id: str | None = None,
    order_id: str | None = None,
    dedupe_key: str | None = None,
    traceparent: str | None = None,
) -> bool:
    """Add one email to the outbox; False when ``dedupe_key`` is already there (the same
    cause replayed). The sender job picks it up after the caller commits."""
    if dedupe_key is not None:
        seen = await conn.scalar(
            select(deliveries.c.id).where(deliveries.c.dedupe_key == dedupe_key)
        )
        if seen is not None:
            return False
    await conn.execute(
        insert(deliveries).values(
            id=str(uuid.uuid4()),
            dedupe_key=dedupe_key,
            channel="email",
            recipient=recipient,
            user_id=user_id,
            order_id=order_id,
            template=template,
            language=language,
            context=_json(context),
            state="pending",
            attempts=0,
            next_attempt_at=now,
            # The trace of what caused the message, continued by the sender.
            traceparent=traceparent if traceparent is not None else current_traceparent(),
            created_at=now,
            updated_at=now,
        )
    )
    return True


async def enqueue_many(conn: AsyncConnection, messages: Sequence[Message], *, now: datetime) -> int:
    """Add several emails at once (one look for their dedupe keys, one insert); returns
    how many were new."""
    keys = [m.dedupe_key for m in messages if m.dedupe_key is not None]
    seen = set(await conn.scalars(_SEEN, {"keys": keys})) if keys else set()
    # The trace of what caused them (one request), continued by the sender.
    current = current_traceparent()
    rows = []
    for message in messages:
        if message.dedupe_key is not None:
            if message.dedupe_key in seen:
                continue
            seen.add(message.dedupe_key)
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "dedupe_key": message.dedupe_key,
                "channel": "email",
                "recipient": message.recipient,
                "user_id": message.user_id,
                "order_id": message.order_id,
                "template": message.template,
                "language": message.language,
                "context": _json(message.context),
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "traceparent": message.traceparent or current,
                "created_at": now,
                "updated_at": now,
            }
        )
    if rows:
        await conn.execute(_ADD, rows)
    return len(rows)


async def purge_settled(*, db: Database, older_than: datetime) -> int:
    """Forget sent, dropped and failed messages last touched before ``older_than`` (the
    ledger's retention); pending ones stay whatever their age."""
    async with db.write() as conn:
        result = await conn.execute(
            delete(deliveries).where(
                deliveries.c.state.in_(("sent", "dropped", "failed")),
                deliveries.c.updated_at < older_than,
            )
        )
    return result.rowcount
