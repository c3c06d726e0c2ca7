"""The delivery ledger: what became of each message (read by admins)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select, true

from pasar_kit.db import Database
from pasar_users.problems import DeliveryNotFound
from pasar_users.schemas import DeliveryPublic
from pasar_users.tables import AnyRow, deliveries

_COLUMNS = (
    deliveries.c.id,
    deliveries.c.channel,
    deliveries.c.recipient,
    deliveries.c.user_id,
    deliveries.c.order_id,
    deliveries.c.template,
    deliveries.c.language,
    deliveries.c.state,
    deliveries.c.attempts,
    deliveries.c.last_error,
    deliveries.c.created_at,
    deliveries.c.updated_at,
    deliveries.c.sent_at,
    deliveries.c.next_attempt_at,
)


@dataclass(frozen=True)
class Filters:
    """Each given value must match exactly (``recipient`` normalised by the caller)."""

    state: str | None = None
    template: str | None = None
    recipient: str | None = None
    user_id: str | None = None
    order_id: str | None = None

    def condition(self) -> ColumnElement[bool]:
        parts = [
            getattr(deliveries.c, name) == value
            for name, value in vars(self).items()
            if value is not None
        ]
        return and_(true(), *parts)


def _delivery(row: AnyRow) -> DeliveryPublic:
    return DeliveryPublic.model_validate(row, from_attributes=True)


async def list_deliveries(
    *, db: Database, filters: Filters, limit: int, offset: int
) -> tuple[list[DeliveryPublic], int]:
    """Deliveries matching ``filters``, newest first."""
    condition = filters.condition()
    page = (
        select(*_COLUMNS)
        .where(condition)
        .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    async with db.read() as conn:
        rows = (await conn.execute(page)).all()
        total = await conn.scalar(select(func.count()).select_from(deliveries).where(condition))
    return [_delivery(row) for row in rows], int(total or 0)


async def get_delivery(*, db: Database, delivery_id: str) -> DeliveryPublic:
    async with db.read() as conn:
        row = (
            await conn.execute(select(*_COLUMNS).where(deliveries.c.id == delivery_id))
        ).one_or_none()
    if row is None:
        raise DeliveryNotFound()
    return _delivery(row)
