"""The shopper's notifications: what happened to their orders, newest first."""

from __future__ import annotations

import asyncio
import math
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from pasar_web.i18n import gettext as _
from pasar_web.i18n import lazy
from pasar_web.models import Notification
from pasar_web.shell import PageDep
from pasar_web.timeline import short_id

router = APIRouter()

PAGE_SIZE = 20

_TEXTS = {
    "pending_payment": lazy("Order %(number)s is waiting for your payment."),
    "processing": lazy("Order %(number)s is being processed."),
    "shipped": lazy("Order %(number)s has been shipped."),
    "completed": lazy("Order %(number)s is completed. Thank you for shopping!"),
    "cancelled": lazy("Order %(number)s has been cancelled."),
}


def text_of(notification: Notification) -> str:
    """The notification in the shopper's language (the stored message is English)."""
    template = _TEXTS.get(notification.status or "")
    if notification.order_id and template:
        return _(template, number=short_id(notification.order_id))
    return notification.message


@router.get("/notifications", name="notifications")
async def inbox(
    page: PageDep, page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1
) -> Response:
    auth = page.auth
    found = await page.services.users.notifications(
        auth, limit=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE
    )
    return await page.render(
        "notifications.html",
        notifications=found,
        text_of=text_of,
        page_number=page_number,
        pages=max(1, math.ceil(found.total / PAGE_SIZE)),
    )


@router.post("/notifications/{notification_id}/read", name="read_notification")
async def mark_read(
    page: PageDep, notification_id: Annotated[str, Path(max_length=64)]
) -> Response:
    await page.form()
    auth = page.auth
    await page.services.users.mark_read(auth, notification_id)
    return page.redirect("/notifications")


@router.post("/notifications/read-all", name="read_all_notifications")
async def mark_all_read(page: PageDep) -> Response:
    await page.form()
    auth = page.auth
    unread = await page.services.users.notifications(auth, unread=True, limit=100)
    await asyncio.gather(*(page.services.users.mark_read(auth, n.id) for n in unread.items))
    return page.redirect("/notifications", _("All notifications are marked as read."))
