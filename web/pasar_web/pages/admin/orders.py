"""Orders: the list filtered by status, customer and date; one order and its next step."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from pasar_web.api import ApiProblem
from pasar_web.errors import friendly
from pasar_web.i18n import gettext as _
from pasar_web.i18n import lazy
from pasar_web.models import ORDER_STATUSES, User
from pasar_web.shell import PageDep
from pasar_web.timeline import short_id, status_label, timeline

router = APIRouter()

OrderId = Annotated[str, Path(max_length=64)]
PAGE_SIZE = 25

# What the button moving an order to each status says.
ACTIONS: dict[str, str] = {
    "processing": lazy("Mark as paid"),
    "shipped": lazy("Mark as shipped"),
    "completed": lazy("Mark as completed"),
    "cancelled": lazy("Cancel order"),
}


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/orders", name="admin_orders")
async def order_list(
    page: PageDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    customer: Annotated[str | None, Query(max_length=200)] = None,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    auth = page.require_admin()
    status = status if status in ORDER_STATUSES else None
    customer = (customer or "").strip() or None
    matches: list[User] = []
    if customer and not user_id:
        found = await page.services.users.list_users(auth, q=customer, limit=20, offset=0)
        matches = found.items
        exact = [user for user in matches if user.email == customer.lower()]
        if len(exact) == 1 or len(matches) == 1:
            user_id = (exact or matches)[0].id
    first, last = _day(date_from), _day(date_to)
    zone = page.web.zone
    created_from = datetime.combine(first, time(), tzinfo=zone) if first else None
    created_to = datetime.combine(last, time(), tzinfo=zone) + timedelta(days=1) if last else None
    params = {
        "status": status,
        "customer": customer,
        "user_id": user_id,
        "from": first.isoformat() if first else None,
        "to": last.isoformat() if last else None,
    }
    if customer and not user_id:
        # No single customer matches: offer the ones that do instead of all orders.
        return await page.render(
            "admin/orders.html",
            orders=None,
            matches=matches,
            params=params,
            statuses=ORDER_STATUSES,
            status_label=status_label,
            short_id=short_id,
            page_number=1,
            pages=1,
        )
    orders = await page.services.orders.list(
        auth,
        status=status,
        user_id=user_id,
        created_from=created_from,
        created_to=created_to,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    return await page.render(
        "admin/orders.html",
        orders=orders,
        matches=[],
        params=params,
        statuses=ORDER_STATUSES,
        status_label=status_label,
        short_id=short_id,
        page_number=page_number,
        pages=max(1, math.ceil(orders.total / PAGE_SIZE)),
    )


@router.get("/orders/{order_id}", name="admin_order")
async def order_page(page: PageDep, order_id: OrderId) -> Response:
    auth = page.require_admin()
    order = await page.services.orders.get(auth, order_id)
    if order is None:
        return await page.render("not_found.html", status=404)
    return await page.render(
        "admin/order.html",
        order=order,
        steps=timeline(order),
        actions={status: _(ACTIONS[status]) for status in order.next_statuses},
        short_id=short_id,
        status_label=status_label,
    )


@router.post("/orders/{order_id}/status", name="admin_order_status")
async def change_status(page: PageDep, order_id: OrderId) -> Response:
    auth = page.require_admin()
    form = await page.form()
    target = str(form.get("status", ""))
    note = str(form.get("note", "")).strip()[:500] or None
    if target not in ACTIONS:
        return page.redirect(f"/admin/orders/{order_id}", _("Choose a status."), "error")
    try:
        order = await page.services.orders.set_status(auth, order_id, status=target, note=note)
    except ApiProblem as problem:
        return page.redirect(f"/admin/orders/{order_id}", friendly(problem), "error")
    return page.redirect(
        f"/admin/orders/{order.id}",
        _(
            "Order %(number)s is now: %(status)s.",
            number=short_id(order.id),
            status=status_label(order.status),
        ),
    )
