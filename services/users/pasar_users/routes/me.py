"""The signed-in user's own account and notification inbox."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from pasar_kit.auth import CurrentUser
from pasar_kit.pagination import Limit, Offset
from pasar_kit.problems import problems
from pasar_users import accounts, notifications
from pasar_users.routes.deps import DatabaseDep, PasswordsDep
from pasar_users.schemas import (
    NotificationPage,
    NotificationPublic,
    PasswordChange,
    UserPublic,
    UserUpdate,
)

router = APIRouter(prefix="/users/me", tags=["me"])


@router.get("", operation_id="get_me", responses=problems(401, 403))
async def get_me(principal: CurrentUser, db: DatabaseDep) -> UserPublic:
    """Your profile."""
    user = await accounts.get_active_user(db=db, user_id=principal.subject)
    return UserPublic.model_validate(user, from_attributes=True)


@router.patch("", operation_id="update_me", responses=problems(401, 403, 409, 422))
async def update_me(body: UserUpdate, principal: CurrentUser, db: DatabaseDep) -> UserPublic:
    """Edit your name, phone, address or email."""
    changes = body.model_dump(exclude_unset=True)
    user = await accounts.update_profile(db=db, user_id=principal.subject, changes=changes)
    return UserPublic.model_validate(user, from_attributes=True)


@router.put(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="change_password",
    responses=problems(401, 403, 422),
)
async def change_password(
    body: PasswordChange, principal: CurrentUser, db: DatabaseDep, passwords: PasswordsDep
) -> Response:
    """Set a new password; every refresh token you hold stops working."""
    await accounts.change_password(
        db=db,
        passwords=passwords,
        user_id=principal.subject,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notifications", operation_id="list_notifications", responses=problems(401, 403))
async def list_notifications(
    principal: CurrentUser,
    db: DatabaseDep,
    unread: bool = False,
    limit: Limit = 20,
    offset: Offset = 0,
) -> NotificationPage:
    """Your notifications, newest first; ``?unread=true`` for the unread ones only."""
    items, total = await notifications.inbox(
        db=db, user_id=principal.subject, unread_only=unread, limit=limit, offset=offset
    )
    return NotificationPage(
        items=[NotificationPublic.model_validate(n, from_attributes=True) for n in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/notifications/{notification_id}/read",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="mark_notification_read",
    responses=problems(401, 403, 404),
)
async def mark_read(notification_id: str, principal: CurrentUser, db: DatabaseDep) -> Response:
    """Mark one notification read (idempotent)."""
    await notifications.mark_read(db=db, user_id=principal.subject, notification_id=notification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
