"""The service as it runs in production: background jobs on, nudged after each commit."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from orders_support import Shop, ShopFactory, eventually
from sqlalchemy import func, select

from pasar_orders.tables import outbox


@pytest.fixture
async def live(orders_shop_factory: ShopFactory) -> AsyncIterator[Shop]:
    # Long intervals: anything that happens soon happened because of a nudge.
    async with orders_shop_factory(
        workers_enabled=True, outbox_interval_seconds=30, recovery_interval_seconds=30
    ) as shop:
        yield shop


async def test_notifications_and_releases_follow_commits_without_waiting_a_tick(live: Shop) -> None:
    shop = live
    buyer = await shop.customer()
    shirt = await shop.product(stock=3)
    order = (await shop.place(buyer, [(shirt["id"], 2)])).json()

    async def has(status: str) -> bool:
        return any(n["status"] == status for n in await shop.notifications(buyer))

    await eventually(lambda: has("processing"), within=10)
    assert (await shop.post(buyer, f"/orders/{order['id']}/cancel")).status_code == 200

    async def restocked() -> bool:
        return await shop.stock(shirt["id"]) == 3

    await eventually(restocked, within=10)
    await eventually(lambda: has("cancelled"), within=10)

    async def outbox_drained() -> bool:
        async with shop.db.read() as conn:
            pending = await conn.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.delivered_at.is_(None))
            )
        return pending == 0

    # Nothing left to send, so nothing more can arrive: each change is in the inbox once.
    await eventually(outbox_drained, within=10)
    inbox = Counter((n["order_id"], n["status"]) for n in await shop.notifications(buyer))
    assert inbox == {(order["id"], "processing"): 1, (order["id"], "cancelled"): 1}, inbox


async def test_health_and_readiness(live: Shop) -> None:
    shop = live
    assert (await shop.http.get(f"{shop.orders_url}/healthz")).json()["status"] == "ok"
    ready = await shop.http.get(f"{shop.orders_url}/readyz")
    assert ready.status_code == 200
    assert "x-request-id" in ready.headers
    metrics = await shop.http.get(f"{shop.orders_url}/metrics")
    assert "http_requests_total" in metrics.text


async def test_not_ready_without_client_credentials(orders_shop_factory: ShopFactory) -> None:
    async with orders_shop_factory(client_secret=None) as shop:
        ready = await shop.http.get(f"{shop.orders_url}/readyz")
        assert ready.status_code == 503
