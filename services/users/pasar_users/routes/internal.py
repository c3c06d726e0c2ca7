"""Endpoints for other pasar services (client-credentials tokens with a scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from pasar_kit.auth import Principal, require_scope
from pasar_kit.problems import problems
from pasar_users import accounts, notifications
from pasar_users.deps import AuthorityDep, DatabaseDep, Now, NudgeMail, SettingsDep, UserId
from pasar_users.schemas import (
    InternalUser,
    NotificationBatch,
    NotificationBatchResult,
    NotificationCreate,
    TokenRevocation,
    TokenRevocations,
)

router = APIRouter(prefix="/internal", tags=["internal"])

UsersReader = Annotated[Principal, Depends(require_scope("users:read"))]
NotificationWriter = Annotated[Principal, Depends(require_scope("notifications:write"))]


@router.get("/users/{user_id}", operation_id="internal_get_user", responses=problems(401, 403, 404))
async def get_user(_service: UsersReader, user_id: UserId, db: DatabaseDep) -> InternalUser:
    """A user as order validation needs it; 404 if unknown."""
    user = await accounts.get_user(db=db, user_id=user_id)
    return InternalUser.model_validate(user, from_attributes=True)


@router.get(
    "/token-revocations", operation_id="internal_token_revocations", responses=problems(401, 403)
)
async def token_revocations(
    _service: UsersReader, authority: AuthorityDep, now: Now, response: Response
) -> TokenRevocations:
    """Users whose access tokens were revoked (deactivation, role or password change)
    within the last ``horizon_seconds`` (the access-token lifetime plus a minute). A
    verifier refuses a token whose ``sub`` is listed and whose ``iat`` is earlier than
    ``not_before``. Polled every few seconds by every replica of products and orders."""
    horizon = authority.policy.revocation_horizon_seconds
    revoked = await accounts.token_revocations(db=authority.db, horizon_seconds=horizon, now=now)
    response.headers["Cache-Control"] = "no-store"
    return TokenRevocations(
        revocations=[
            TokenRevocation(user_id=user_id, not_before=not_before.timestamp())
            for user_id, not_before in revoked
        ],
        horizon_seconds=horizon,
    )


@router.post(
    "/notifications",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="internal_post_notification",
    response_class=Response,
    responses=problems(401, 403, 422),
)
async def post_notification(
    body: NotificationCreate,
    _service: NotificationWriter,
    db: DatabaseDep,
    now: Now,
    settings: SettingsDep,
    nudge_mail: NudgeMail,
) -> Response:
    """Store a notification for a user; a repeated ``event_id`` stores nothing new. A new
    order notification is also mailed (see ``order``)."""
    stored = await notifications.deliver(
        db=db, event=body, now=now, admin_order_emails=settings.admin_order_emails
    )
    if stored:
        nudge_mail()
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/notifications/batch",
    operation_id="internal_post_notifications_batch",
    responses=problems(401, 403, 422),
)
async def post_notifications_batch(
    body: NotificationBatch,
    _service: NotificationWriter,
    db: DatabaseDep,
    now: Now,
    settings: SettingsDep,
    nudge_mail: NudgeMail,
) -> NotificationBatchResult:
    """Store up to 100 notifications in one transaction, each event at most once, and
    say per event whether it was ``stored`` now, was a ``duplicate`` of one stored
    before, or names an ``unknown_user`` (not stored; it may be sent again)."""
    results = await notifications.deliver_many(
        db=db, events=body.events, now=now, admin_order_emails=settings.admin_order_emails
    )
    if any(result.outcome == "stored" for result in results):
        nudge_mail()
    return NotificationBatchResult(results=results)
