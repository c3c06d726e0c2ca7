"""Admin: list users, change a user's role or activation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pasar_kit.pagination import Limit, Offset
from pasar_kit.problems import problems
from pasar_users import accounts
from pasar_users.deps import ActiveAdmin, ClockDep, DatabaseDep, UserId
from pasar_users.schemas import UserAdminUpdate, UserPage, UserPublic

router = APIRouter(prefix="/users", tags=["admin"])


@router.get("", operation_id="list_users", responses=problems(401, 403))
async def list_users(
    _admin: ActiveAdmin,
    db: DatabaseDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> UserPage:
    """Users, oldest first; ``?q=`` matches email or name."""
    items, total = await accounts.list_users(db=db, q=q, limit=limit, offset=offset)
    return UserPage(
        items=[UserPublic.model_validate(u, from_attributes=True) for u in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.patch("/{user_id}", operation_id="update_user", responses=problems(401, 403, 404, 409, 422))
async def update_user(
    _admin: ActiveAdmin, user_id: UserId, body: UserAdminUpdate, db: DatabaseDep, clock: ClockDep
) -> UserPublic:
    """Change a user's ``role`` and/or ``active``. Deactivating revokes their refresh
    tokens; deactivating or changing the role revokes their access tokens at once
    (``GET /internal/token-revocations``)."""
    user = await accounts.set_role_and_activation(
        db=db, user_id=user_id, role=body.role, active=body.active, clock=clock
    )
    return UserPublic.model_validate(user, from_attributes=True)
