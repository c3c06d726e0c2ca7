"""The dashboard: orders per status, today's orders and revenue, what is running low."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

from fastapi import APIRouter
from starlette.responses import Response

from pasar_web.models import ORDER_STATUSES, OrderPage, OrderStats, ProductPage
from pasar_web.shell import PageDep
from pasar_web.timeline import short_id, status_label

router = APIRouter()


def today_window(now: datetime, zone: object) -> tuple[datetime, datetime]:
    """Midnight to midnight of the shop's today, as aware datetimes."""
    local = now.astimezone(zone)  # type: ignore[arg-type]
    start = datetime.combine(local.date(), time(), tzinfo=local.tzinfo)
    return start, start + timedelta(days=1)


@router.get("", name="admin")
async def dashboard(page: PageDep) -> Response:
    auth = page.require_admin()
    settings = page.web.settings
    start, end = today_window(datetime.now(page.web.zone), page.web.zone)
    orders, products = page.services.orders, page.services.products
    no_stats = OrderStats(by_status={}, orders=0, revenue=0, currency="IDR")
    overall, today, low, recent = await asyncio.gather(
        page.optional("orders", orders.stats(auth), no_stats),
        page.optional("orders", orders.stats(auth, created_from=start, created_to=end), no_stats),
        page.optional(
            "products",
            products.low_stock(auth, threshold=settings.low_stock_threshold, limit=10),
            ProductPage(items=[], total=0, limit=10, offset=0),
        ),
        page.optional(
            "orders", orders.list(auth, limit=8), OrderPage(items=[], total=0, limit=8, offset=0)
        ),
    )
    return await page.render(
        "admin/dashboard.html",
        overall=overall,
        today=today,
        statuses=ORDER_STATUSES,
        low=low,
        recent=recent,
        short_id=short_id,
        status_label=status_label,
        threshold=settings.low_stock_threshold,
    )
