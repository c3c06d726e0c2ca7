"""Stock reservations for the Order-Service (service tokens with scope ``stock:reserve``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from pasar_kit.auth import Principal, require_scope
from pasar_kit.problems import problems
from pasar_products import reservations
from pasar_products.deps import DatabaseDep, Now, ReservationId, SettingsDep
from pasar_products.reservations import Reservation
from pasar_products.schemas import (
    ReservationCreate,
    ReservationPublic,
)

router = APIRouter(prefix="/internal/reservations", tags=["internal"])

Service = Annotated[Principal, Depends(require_scope("stock:reserve"))]


def public(reservation: Reservation) -> ReservationPublic:
    return ReservationPublic(
        reservation_id=reservation.id,
        status=reservation.status,
        expires_at=reservation.expires_at,
        created_at=reservation.created_at,
        items=list(reservation.lines),
    )


@router.post(
    "",
    operation_id="create_reservation",
    status_code=status.HTTP_201_CREATED,
    response_model=ReservationPublic,
    responses={
        200: {"description": "A replay: this reservation id was already used for these items"},
        **problems(401, 403, 409, 422),
    },
)
async def create_reservation(
    body: ReservationCreate,
    service: Service,
    db: DatabaseDep,
    settings: SettingsDep,
    now: Now,
    response: Response,
) -> ReservationPublic:
    """Hold stock for every line or for none; 201 when new, 200 on a replay. With
    ``commit: true`` the hold is committed at once (status ``committed``, no expiry)."""
    reserved = await reservations.reserve(
        db=db,
        reservation_id=body.reservation_id,
        items=[(item.product_id, item.quantity) for item in body.items],
        ttl_seconds=body.ttl_seconds or settings.reservation_ttl_seconds,
        currency=settings.currency,
        client_id=service.subject,
        now=now,
        commit=body.commit,
    )
    if not reserved.created:
        response.status_code = status.HTTP_200_OK
    return public(reserved.reservation)


@router.get(
    "/{reservation_id}",
    operation_id="get_reservation",
    response_model=ReservationPublic,
    responses=problems(401, 403, 404),
)
async def get_reservation(
    _service: Service, reservation_id: ReservationId, db: DatabaseDep
) -> ReservationPublic:
    """The reservation and its status."""
    return public(await reservations.get_reservation(db=db, reservation_id=reservation_id))


@router.post(
    "/{reservation_id}/commit",
    operation_id="commit_reservation",
    response_model=ReservationPublic,
    responses=problems(401, 403, 404, 409),
)
async def commit_reservation(
    _service: Service, reservation_id: ReservationId, db: DatabaseDep, now: Now
) -> ReservationPublic:
    """Held -> committed: it no longer expires. Idempotent."""
    return public(await reservations.commit(db=db, reservation_id=reservation_id, now=now))


@router.post(
    "/{reservation_id}/release",
    operation_id="release_reservation",
    response_model=ReservationPublic,
    responses=problems(401, 403, 404),
)
async def release_reservation(
    _service: Service, reservation_id: ReservationId, db: DatabaseDep, now: Now
) -> ReservationPublic:
    """Held or committed -> released; the stock returns exactly once. Idempotent."""
    return public(await reservations.release(db=db, reservation_id=reservation_id, now=now))
