"""Writing a message into the outbox, in the transaction of what caused it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database
from pasar_users.tables import deliveries

# Every template a message may name; each is rendered in both languages.
Template = Literal[
    "verify_email",  # a link to verify the address (minted when sent)
    "password_reset",  # a reset link (minted when sent; dropped when no such account)
    "password_changed",  # security notice
    "email_changed",  # security notice, to the old address
    "order_status",  # an order notification to its customer
    "admin_new_order",  # a new order, to each admin
]


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
            context=json.dumps(context or {}, ensure_ascii=False, separators=(",", ":")),
            state="pending",
            attempts=0,
            next_attempt_at=now,
            traceparent=traceparent,
            created_at=now,
            updated_at=now,
        )
    )
    return True


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
