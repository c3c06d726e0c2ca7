"""Concurrency rules, proven by really concurrent requests through the served services."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from orders_support import Shop, ShopFactory
from sqlalchemy import func, select

from pasar_kit.db import utcnow
from pasar_orders.outbox import relay_outbox
from pasar_orders.tables import orders, outbox


@pytest.fixture
async def busy_shop(orders_shop_factory: ShopFactory) -> AsyncIterator[Shop]:
    # A hundred requests at once on two shared cores: a slow answer here is load, not
    # a dead dependency, so the timeouts are generous.
    async with orders_shop_factory(http_timeout=20.0, http_connect_timeout=5.0) as shop:
        yield shop


async def _audit_clean(shop: Shop) -> None:
    admin = await shop.make_admin()
    response = await shop.http.get(
        f"{shop.products_service.url}/admin/stock-audit", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["violations"] == []


async def test_100_concurrent_orders_against_stock_20(busy_shop: Shop) -> None:
    shop = busy_shop
    buyers = [await shop.customer() for _ in range(5)]
    shirt = await shop.product(stock=20)

    responses = await asyncio.gather(
        *(shop.place(buyers[i % 5], [(shirt["id"], 1)]) for i in range(100))
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 20, 409: 80}, [
        r.text for r in responses if r.status_code not in (201, 409)
    ]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"out_of_stock"}
    assert await shop.stock(shirt["id"]) == 0
    async with shop.db.read() as conn:
        rows = (
            await conn.execute(select(orders.c.status, func.count()).group_by(orders.c.status))
        ).all()
    assert dict(rows) == {"processing": 20}  # and no placing leftovers
    await _audit_clean(shop)


async def test_20_concurrent_requests_with_one_key_place_one_order(busy_shop: Shop) -> None:
    shop = busy_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=50)

    responses = await asyncio.gather(
        *(shop.place(buyer, [(shirt["id"], 2)], key="double-click") for _ in range(20))
    )

    created = [r for r in responses if r.status_code == 201]
    assert created, [r.text for r in responses]
    assert len({r.json()["id"] for r in created}) == 1
    others = [r for r in responses if r.status_code != 201]
    assert all(
        r.status_code == 409 and r.json()["code"] == "idempotency_key_in_flight" for r in others
    )
    async with shop.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(orders))).scalar_one() == 1
    assert await shop.stock(shirt["id"]) == 48


async def test_cancel_racing_ship_has_exactly_one_winner(busy_shop: Shop) -> None:
    shop = busy_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    shirt = await shop.product(stock=10)
    placed = [await shop.place(buyer, [(shirt["id"], 1)]) for _ in range(10)]
    ids = [p.json()["id"] for p in placed]
    assert await shop.stock(shirt["id"]) == 0

    async def race(order_id: str) -> tuple[int, int]:
        cancel, ship = await asyncio.gather(
            shop.post(buyer, f"/orders/{order_id}/cancel"),
            shop.post(admin, f"/orders/{order_id}/status", {"status": "shipped"}),
        )
        return cancel.status_code, ship.status_code

    outcomes = await asyncio.gather(*(race(i) for i in ids))

    assert all(sorted(pair) == [200, 409] for pair in outcomes), outcomes
    cancelled = sum(1 for cancel, _ in outcomes if cancel == 200)
    while await shop.release():
        pass
    assert await shop.stock(shirt["id"]) == cancelled
    for order_id, (cancel, _) in zip(ids, outcomes, strict=True):
        order = (await shop.get(admin, f"/orders/{order_id}")).json()
        assert order["status"] == ("cancelled" if cancel == 200 else "shipped")
        assert len(order["status_history"]) == 2
    await _audit_clean(shop)


async def test_ten_cancels_at_once_release_the_stock_once(busy_shop: Shop) -> None:
    shop = busy_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    shirt = await shop.product(stock=7)
    order = (await shop.place(buyer, [(shirt["id"], 3)])).json()

    responses = await asyncio.gather(
        *(shop.post(buyer if i % 2 else admin, f"/orders/{order['id']}/cancel") for i in range(10))
    )

    assert Counter(r.status_code for r in responses) == {200: 1, 409: 9}
    # Two release workers at once (two replicas): the stock comes back exactly once.
    released = await asyncio.gather(shop.release(), shop.release())
    assert sum(released) == 1
    assert await shop.stock(shirt["id"]) == 7
    history = (await shop.get(buyer, f"/orders/{order['id']}")).json()["status_history"]
    assert [h["status"] for h in history] == ["processing", "cancelled"]
    await _audit_clean(shop)


async def test_concurrent_relays_deliver_each_event_once(busy_shop: Shop) -> None:
    shop = busy_shop
    buyers = [await shop.customer() for _ in range(3)]
    shirt = await shop.product(stock=30)
    await asyncio.gather(*(shop.place(buyers[i % 3], [(shirt["id"], 1)]) for i in range(24)))

    async def relay_until_empty() -> int:
        total = 0
        while True:
            done = await relay_outbox(
                db=shop.db, users=shop.runtime.users, now=utcnow(), batch_size=5
            )
            if not done:
                return total
            total += done

    delivered = await asyncio.gather(*(relay_until_empty() for _ in range(4)))

    assert sum(delivered) == 24
    async with shop.db.read() as conn:
        attempts = (await conn.execute(select(outbox.c.attempts, outbox.c.delivered_at))).all()
    assert len(attempts) == 24
    assert all(a.attempts == 1 and a.delivered_at is not None for a in attempts)
    counts: list[Any] = [len(await shop.notifications(b)) for b in buyers]
    assert counts == [8, 8, 8]
