"""Users: search, activate or deactivate, make admin or customer."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from pasar_web.api import ApiProblem
from pasar_web.errors import friendly
from pasar_web.i18n import gettext as _
from pasar_web.shell import PageDep, safe_next

router = APIRouter()

PAGE_SIZE = 25
CHANGES: dict[str, dict[str, str | bool]] = {
    "activate": {"active": True},
    "deactivate": {"active": False},
    "make_admin": {"role": "admin"},
    "make_customer": {"role": "customer"},
}


@router.get("/users", name="admin_users")
async def user_list(
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    auth = page.require_admin()
    q = (q or "").strip() or None
    found = await page.services.users.list_users(
        auth, q=q, limit=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE
    )
    return await page.render(
        "admin/users.html",
        users=found,
        params={"q": q},
        page_number=page_number,
        pages=max(1, math.ceil(found.total / PAGE_SIZE)),
    )


@router.post("/users/{user_id}", name="admin_user")
async def change_user(page: PageDep, user_id: Annotated[str, Path(max_length=64)]) -> Response:
    auth = page.require_admin()
    form = await page.form()
    back = safe_next(str(form.get("next", "")), "/admin/users")
    change = CHANGES.get(str(form.get("action", "")))
    if change is None:
        return page.redirect(back)
    try:
        user = await page.services.users.update_user(
            auth,
            user_id,
            role=change.get("role"),  # type: ignore[arg-type]
            active=change.get("active"),  # type: ignore[arg-type]
        )
    except ApiProblem as problem:
        return page.redirect(back, friendly(problem), "error")
    messages = {
        "activate": _("%(name)s can log in and order again.", name=user.full_name),
        "deactivate": _(
            "%(name)s is deactivated: they can no longer log in or order.", name=user.full_name
        ),
        "make_admin": _("%(name)s is now an admin.", name=user.full_name),
        "make_customer": _("%(name)s is now a customer.", name=user.full_name),
    }
    return page.redirect(back, messages[str(form.get("action"))])
