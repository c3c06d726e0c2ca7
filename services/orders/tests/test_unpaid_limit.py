"""A customer's unpaid orders are capped (each holds stock until paid or expired)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from orders_support import Shop, ShopFactory
from pydantic import ValidationError
from sqlalchemy import func, insert, select

from pasar_kit.db import Database, utcnow
from pasar_kit.migrations import upgrade
from pasar_kit.testing import fresh_database
from pasar_orders.app import MIGRATIONS
from pasar_orders.recovery import expire_unpaid_orders
from pasar_orders.settings import Settings
from pasar_orders.tables import orders

APPROVE = {"card_number": "4242424242424242", "expiry": "12/30", "cvc": "123"}


@pytest.fixture
async def capped_shop(orders_shop_factory: ShopFactory) -> AsyncIterator[Shop]:
    # Generous timeouts: the concurrent test sends a burst at two shared cores.
    async with orders_shop_factory(
        payment_provider="test",
        payment_window_seconds=600,
        max_unpaid_orders=3,
        http_timeout=20.0,
        http_connect_timeout=5.0,
    ) as shop:
        yield shop


async def _rows_by_status(shop: Shop) -> dict[str, int]:
    async with shop.db.read() as conn:
        rows = await conn.execute(select(orders.c.status, func.count()).group_by(orders.c.status))
        return {status: int(n) for status, n in rows.all()}


async def test_a_fourth_unpaid_order_is_409_until_one_is_paid_or_cancelled(
    capped_shop: Shop,
) -> None:
    shop = capped_shop
    buyer, other = await shop.customer(), await shop.customer()
    shirt = await shop.product(stock=100)
    placed = [await shop.place(buyer, [(shirt["id"], 10)]) for _ in range(3)]
    assert [r.status_code for r in placed] == [201] * 3

    fourth = await shop.place(buyer, [(shirt["id"], 10)], key="fourth")

    assert fourth.status_code == 409, fourth.text
    assert fourth.json()["code"] == "too_many_unpaid_orders"
    assert fourth.json()["limit"] == 3
    assert await shop.stock(shirt["id"]) == 70  # refused before anything was held
    assert await _rows_by_status(shop) == {"pending_payment": 3}
    # Another customer is not affected.
    assert (await shop.place(other, [(shirt["id"], 1)])).status_code == 201

    # Paying one frees its slot, and the refusal was not stored under its key: the
    # same request goes through now.
    first = placed[0].json()["id"]
    assert (await shop.post(buyer, f"/orders/{first}/payments", APPROVE)).status_code == 200
    retried = await shop.place(buyer, [(shirt["id"], 10)], key="fourth")
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers

    # Cancelling one frees its slot too.
    assert (await shop.place(buyer, [(shirt["id"], 1)])).status_code == 409
    second = placed[1].json()["id"]
    assert (await shop.post(buyer, f"/orders/{second}/cancel")).status_code == 200
    assert (await shop.place(buyer, [(shirt["id"], 1)])).status_code == 201
    assert (await shop.place(buyer, [(shirt["id"], 1)])).status_code == 409

    # And so does the end of the payment window.
    later = utcnow() + timedelta(seconds=601)
    assert await expire_unpaid_orders(db=shop.db, now=later, window_seconds=600) == 4
    assert (await shop.place(buyer, [(shirt["id"], 1)])).status_code == 201


async def test_a_replayed_placement_is_not_refused_by_the_cap(capped_shop: Shop) -> None:
    shop = capped_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=10)
    first = await shop.place(buyer, [(shirt["id"], 1)], key="one")
    for _ in range(2):
        assert (await shop.place(buyer, [(shirt["id"], 1)])).status_code == 201
    replay = await shop.place(buyer, [(shirt["id"], 1)], key="one")
    assert replay.status_code == 201 and replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"


async def test_concurrent_placements_by_one_customer_cannot_pass_the_cap(
    capped_shop: Shop,
) -> None:
    shop = capped_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=100)

    responses = await asyncio.gather(*(shop.place(buyer, [(shirt["id"], 5)]) for _ in range(12)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 3, 409: 9}, [r.text for r in responses if r.status_code != 201]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "too_many_unpaid_orders"
    }
    assert await shop.stock(shirt["id"]) == 85
    assert await _rows_by_status(shop) == {"pending_payment": 3}  # no placing leftovers
    admin = await shop.make_admin()
    audit = await shop.http.get(
        f"{shop.products_service.url}/admin/stock-audit", headers=admin.headers
    )
    assert audit.json()["violations"] == []


async def test_without_online_payment_there_is_no_cap(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=10)
    for _ in range(5):
        assert (await shop.place(buyer, [(shirt["id"], 1)])).status_code == 201


def test_the_payment_window_and_the_cap_are_settings_with_sane_defaults() -> None:
    settings = Settings(environment="test")
    assert settings.payment_window_seconds == 900
    assert settings.max_unpaid_orders == 3
    # The hold (window + 300 s) must fit the Product-Service's longest reservation.
    assert Settings(environment="test", payment_window_seconds=86_100).payment_window_seconds
    for bad in (
        {"payment_window_seconds": 86_101},
        {"payment_window_seconds": 0},
        {"max_unpaid_orders": 0},
    ):
        with pytest.raises(ValidationError):
            Settings(environment="test", **bad)  # type: ignore[arg-type]


def test_the_migration_gives_orders_awaiting_payment_their_slots(tmp_path: Path) -> None:
    now = utcnow()

    def row(order_id: str, user_id: str, status: str, minutes: int) -> dict[str, Any]:
        at = now + timedelta(minutes=minutes)
        return {
            "id": order_id,
            "user_id": user_id,
            "status": status,
            "total": 1,
            "currency": "IDR",
            "shipping_address": {},
            "created_at": at,
            "updated_at": at,
        }

    rows = [
        row("a-late", "alice", "pending_payment", 2),
        row("a-early", "alice", "pending_payment", 1),
        row("a-placing", "alice", "placing", 3),
        row("a-paid", "alice", "processing", 0),
        row("b-one", "bob", "pending_payment", 0),
    ]

    async def insert_rows(url: str) -> None:
        db = Database(url)
        try:
            async with db.write() as conn:
                await conn.execute(insert(orders), rows)
        finally:
            await db.dispose()

    async def slots(url: str) -> dict[str, int | None]:
        db = Database(url)
        try:
            async with db.read() as conn:
                found = await conn.execute(select(orders.c.id, orders.c.unpaid_slot))
                return {order_id: slot for order_id, slot in found.all()}
        finally:
            await db.dispose()

    with fresh_database("orders_migration", tmp_path) as url:
        upgrade(url, MIGRATIONS, "0002")
        asyncio.run(insert_rows(url))
        upgrade(url, MIGRATIONS)
        assert asyncio.run(slots(url)) == {
            "a-early": 1,
            "a-late": 2,
            "a-placing": 3,
            "a-paid": None,
            "b-one": 1,
        }
