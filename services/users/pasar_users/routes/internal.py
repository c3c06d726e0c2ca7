"""Endpoints for other pasar services (client-credentials tokens with a scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from pasar_kit.auth import Principal, require_scope
from pasar_kit.problems import problems
from pasar_users import accounts, notifications
from pasar_users.routes.deps import DatabaseDep
from pasar_users.schemas import InternalUser, NotificationCreate

router = APIRouter(prefix="/internal", tags=["internal"])

UsersReader = Annotated[Principal, Depends(require_scope("users:read"))]
NotificationWriter = Annotated[Principal, Depends(require_scope("notifications:write"))]


@router.get("/users/{user_id}", operation_id="internal_get_user", responses=problems(401, 403, 404))
async def get_user(user_id: str, _service: UsersReader, db: DatabaseDep) -> InternalUser:
    """A user as order validation needs it; 404 if unknown."""
    user = await accounts.get_user(db=db, user_id=user_id)
    return InternalUser.model_validate(user, from_attributes=True)


@router.post(
    "/notifications",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="internal_post_notification",
    responses=problems(401, 403, 422),
)
async def post_notification(
    body: NotificationCreate, _service: NotificationWriter, db: DatabaseDep
) -> Response:
    """Store a notification for a user; a repeated ``event_id`` stores nothing new."""
    await notifications.deliver(db=db, **body.model_dump())
    return Response(status_code=status.HTTP_202_ACCEPTED)
