"""Admin: the delivery ledger (did the customer get told?)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from pasar_kit.ids import ID_DESCRIPTION, ID_PATTERN, is_id
from pasar_kit.pagination import Limit, Offset
from pasar_kit.problems import problems
from pasar_users.accounts import normalize_email
from pasar_users.deps import ActiveAdmin, DatabaseDep
from pasar_users.mail import ledger
from pasar_users.mail.outbox import Template
from pasar_users.problems import DeliveryNotFound
from pasar_users.schemas import DeliveryPage, DeliveryPublic
from pasar_users.tables import EMAIL_LENGTH

router = APIRouter(prefix="/admin/deliveries", tags=["admin"])

State = Literal["pending", "sent", "failed", "dropped"]
IdFilter = Annotated[
    str | None, Query(min_length=1, max_length=36, pattern=ID_PATTERN, description=ID_DESCRIPTION)
]


async def _delivery_id(delivery_id: Annotated[str, Path(description=ID_DESCRIPTION)]) -> str:
    if not is_id(delivery_id):
        raise DeliveryNotFound()
    return delivery_id


DeliveryId = Annotated[str, Depends(_delivery_id)]


@router.get("", operation_id="list_deliveries", responses=problems(401, 403, 422))
async def list_deliveries(
    _admin: ActiveAdmin,
    db: DatabaseDep,
    state: State | None = None,
    template: Template | None = None,
    recipient: Annotated[str | None, Query(min_length=1, max_length=EMAIL_LENGTH)] = None,
    user_id: IdFilter = None,
    order_id: IdFilter = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> DeliveryPage:
    """Every message to a person (the mail outbox and its ledger), newest first, each
    with its state, attempts and last error; never its content. ``recipient`` matches
    the address in any spelling of it (normalised as stored)."""
    filters = ledger.Filters(
        state=state,
        template=template,
        recipient=normalize_email(recipient) if recipient is not None else None,
        user_id=user_id,
        order_id=order_id,
    )
    items, total = await ledger.list_deliveries(db=db, filters=filters, limit=limit, offset=offset)
    return DeliveryPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{delivery_id}", operation_id="get_delivery", responses=problems(401, 403, 404))
async def get_delivery(
    _admin: ActiveAdmin, delivery_id: DeliveryId, db: DatabaseDep
) -> DeliveryPublic:
    """One delivery of the ledger; 404 ``delivery_not_found``."""
    return await ledger.get_delivery(db=db, delivery_id=delivery_id)
