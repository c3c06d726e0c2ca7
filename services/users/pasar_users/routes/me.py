"""The signed-in user's own account and notification inbox."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from pasar_kit.pagination import Limit, Offset
from pasar_kit.problems import problems
from pasar_users import accounts, notifications
from pasar_users.bootstrap import SEND_MAIL
from pasar_users.deps import (
    ClientAddress,
    ClockDep,
    DatabaseDep,
    JobsDep,
    Me,
    NotificationId,
    Now,
    PasswordsDep,
    ThrottleDep,
)
from pasar_users.schemas import (
    Accepted,
    NotificationPage,
    PasswordChange,
    UserPublic,
    UserUpdate,
)

router = APIRouter(prefix="/users/me", tags=["me"])


@router.get("", operation_id="get_me", responses=problems(401, 403))
async def get_me(me: Me) -> UserPublic:
    """Your profile."""
    return UserPublic.model_validate(me, from_attributes=True)


@router.patch("", operation_id="update_me", responses=problems(400, 401, 403, 409, 422, 429, 503))
async def update_me(
    body: UserUpdate,
    me: Me,
    db: DatabaseDep,
    passwords: PasswordsDep,
    throttle: ThrottleDep,
    address: ClientAddress,
    now: Now,
    jobs: JobsDep,
) -> UserPublic:
    """Edit your name, phone, address, email, ``order_emails`` (order mail on or off)
    or ``language`` (``id`` or ``en``, for your mail). A new email needs
    ``current_password`` (403 ``wrong_password``, 429 ``too_many_attempts`` after
    repeated wrong ones); it is unverified until its link is clicked, and the old
    address is told of the change."""
    changes = body.model_dump(exclude_unset=True, exclude={"current_password"})
    user = await accounts.update_profile(
        db=db,
        passwords=passwords,
        throttle=throttle,
        user_id=me.id,
        address=address,
        changes=changes,
        now=now,
        current_password=body.current_password,
    )
    if "email" in changes:
        jobs.nudge(SEND_MAIL)
    return UserPublic.model_validate(user, from_attributes=True)


@router.post(
    "/email-verification",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="request_email_verification",
    responses=problems(400, 401, 403, 409, 429),
)
async def request_email_verification(
    me: Me,
    db: DatabaseDep,
    throttle: ThrottleDep,
    address: ClientAddress,
    now: Now,
    jobs: JobsDep,
) -> Accepted:
    """Send the verification email again (the newest link replaces earlier ones). 409
    ``email_already_verified``; 429 ``too_many_verification_emails`` with
    ``Retry-After`` more than once a minute or five times a day (settings)."""
    await accounts.request_verification(
        db=db, throttle=throttle, user_id=me.id, address=address, now=now
    )
    jobs.nudge(SEND_MAIL)
    return Accepted(detail="A verification link is on its way to your email address.")


@router.put(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="change_password",
    responses=problems(400, 401, 403, 422, 429, 503),
)
async def change_password(
    body: PasswordChange,
    me: Me,
    db: DatabaseDep,
    passwords: PasswordsDep,
    throttle: ThrottleDep,
    address: ClientAddress,
    clock: ClockDep,
    jobs: JobsDep,
) -> Response:
    """Set a new password; every refresh token you hold stops working, and so does every
    access token issued before, and your address is told. Wrong current passwords are
    throttled per account."""
    await accounts.change_password(
        db=db,
        passwords=passwords,
        throttle=throttle,
        user_id=me.id,
        address=address,
        current_password=body.current_password,
        new_password=body.new_password,
        clock=clock,
    )
    jobs.nudge(SEND_MAIL)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notifications", operation_id="list_notifications", responses=problems(401, 403))
async def list_notifications(
    me: Me,
    db: DatabaseDep,
    unread: bool = False,
    limit: Limit = 20,
    offset: Offset = 0,
) -> NotificationPage:
    """Your notifications, newest first; ``?unread=true`` for the unread ones only."""
    items, total = await notifications.inbox(
        db=db, user_id=me.id, unread_only=unread, limit=limit, offset=offset
    )
    return NotificationPage(
        items=list(items),
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
async def mark_read(me: Me, notification_id: NotificationId, db: DatabaseDep, now: Now) -> Response:
    """Mark one notification read (idempotent)."""
    await notifications.mark_read(db=db, user_id=me.id, notification_id=notification_id, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
