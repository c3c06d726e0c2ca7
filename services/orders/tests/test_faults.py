"""Faults: dependencies down, hanging or answering garbage; crashes mid-placement."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from orders_support import (
    HANGING_TIMEOUTS,
    Account,
    Databases,
    FaultyProxy,
    Served,
    Shop,
    ShopFactory,
    eventually,
    hanging_app,
    orders_settings,
)
from sqlalchemy import func, insert, select
from testdata import ADDRESS

from pasar_kit.db import utcnow
from pasar_orders.app import create_app as create_orders_app
from pasar_orders.recovery import recover_stuck_placements
from pasar_orders.tables import orders


async def _rows(shop: Shop) -> int:
    async with shop.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(orders))).scalar_one())


async def _visible(shop: Shop, who: Account) -> int:
    return int((await shop.get(who, "/orders")).json()["total"])


def _assert_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "dependency_unavailable"
    assert 1 <= int(response.headers["retry-after"]) <= 5


async def _recover(shop: Shop) -> int:
    later = utcnow() + timedelta(seconds=shop.runtime.settings.placing_deadline_seconds + 1)
    return await recover_stuck_placements(
        db=shop.db, products=shop.runtime.products, now=later, deadline_seconds=60
    )


async def test_products_down_is_503_and_leaves_nothing(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    await shop.products_service.stop()

    response = await shop.place(buyer, [(shirt["id"], 2)])

    _assert_503(response)
    assert await _visible(shop, buyer) == 0
    await shop.products_service.start()
    assert await shop.stock(shirt["id"]) == 5
    # The release could not be confirmed, so the internal row waited for recovery.
    await _recover(shop)
    assert await _rows(shop) == 0


@pytest.fixture
async def hanging_shop(
    orders_shop_factory: ShopFactory,
) -> AsyncIterator[tuple[Shop, asyncio.Event]]:
    gate = asyncio.Event()
    try:
        async with orders_shop_factory(
            products_factory=lambda: hanging_app(gate), **HANGING_TIMEOUTS
        ) as shop:
            yield shop, gate
            gate.set()
    finally:
        gate.set()


async def test_products_hanging_is_503_and_leaves_no_order(
    hanging_shop: tuple[Shop, asyncio.Event],
) -> None:
    shop, _gate = hanging_shop
    buyer = await shop.customer()
    body = {"items": [{"product_id": "p-1", "quantity": 1}], "shipping_address": ADDRESS}

    response = await shop.place(buyer, body=body)

    _assert_503(response)
    assert await _visible(shop, buyer) == 0
    admin = await shop.make_admin()
    assert await _visible(shop, admin) == 0


@pytest.fixture
async def proxied_shop(
    orders_shop_factory: ShopFactory, orders_databases: Any
) -> AsyncIterator[tuple[Shop, FaultyProxy]]:
    """Orders talks to the real Product-Service through a proxy that can break calls."""
    from pasar_products.app import create_app
    from pasar_products.settings import Settings

    real: dict[str, Served] = {}
    proxy = FaultyProxy(lambda: real["products"].url)
    try:
        async with orders_shop_factory(products_factory=proxy.app, **HANGING_TIMEOUTS) as shop:
            real["products"] = Served(
                lambda: create_app(
                    Settings(
                        environment="test",
                        database_url=orders_databases.products,
                        jwks_url=f"{shop.users_service.url}/.well-known/jwks.json",
                        workers_enabled=False,
                    )
                )
            )
            await real["products"].start()
            # Arrange the catalogue on the real service, not through the proxy.
            shop.extra["real_products"] = real["products"]
            yield shop, proxy
            proxy.gate.set()
            await real["products"].stop()
    finally:
        proxy.gate.set()


async def _product(shop: Shop, stock: int) -> dict[str, Any]:
    real: Served = shop.extra["real_products"]
    admin = await shop.make_admin()
    response = await shop.http.post(
        f"{real.url}/products",
        json={
            "sku": f"SKU-{stock}-x",
            "name": "Kebaya",
            "price": 250_000,
            "stock": stock,
            "category": "Clothing",
        },
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def _stock(shop: Shop, product_id: str) -> int:
    real: Served = shop.extra["real_products"]
    return int((await shop.http.get(f"{real.url}/products/{product_id}")).json()["stock"])


async def test_garbage_reservation_answer_is_503_and_the_stock_comes_back(
    proxied_shop: tuple[Shop, FaultyProxy],
) -> None:
    shop, proxy = proxied_shop
    buyer = await shop.customer()
    kebaya = await _product(shop, stock=4)
    proxy.faults["internal/reservations"] = "garbage"  # reserved for real, answer lost

    response = await shop.place(buyer, [(kebaya["id"], 3)])

    _assert_503(response)
    assert await _rows(shop) == 0  # released at once, so nothing left to recover
    assert await _stock(shop, kebaya["id"]) == 4


async def test_a_placement_without_payment_is_one_call_to_products(
    proxied_shop: tuple[Shop, FaultyProxy],
) -> None:
    shop, proxy = proxied_shop
    buyer = await shop.customer()
    kebaya = await _product(shop, stock=4)

    response = await shop.place(buyer, [(kebaya["id"], 2)])

    assert response.status_code == 201, response.text
    # Reserved and committed in the same call: no second round trip.
    assert proxy.seen == ["POST /internal/reservations"]
    assert await _stock(shop, kebaya["id"]) == 2


async def test_reserving_hanging_is_503_and_the_stock_comes_back(
    proxied_shop: tuple[Shop, FaultyProxy],
) -> None:
    shop, proxy = proxied_shop
    buyer = await shop.customer()
    kebaya = await _product(shop, stock=4)
    proxy.faults["internal/reservations"] = "hang"  # taken for real, the answer never comes

    response = await shop.place(buyer, [(kebaya["id"], 2)])

    _assert_503(response)
    assert await _visible(shop, buyer) == 0
    proxy.gate.set()  # the held call now completes; the release it raced must win
    assert any(call.endswith("/release") for call in proxy.seen)
    for _ in range(50):
        if await _stock(shop, kebaya["id"]) == 4:
            break
        await asyncio.sleep(0.1)
    assert await _stock(shop, kebaya["id"]) == 4


async def test_users_down_during_placement_is_503(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    await shop.users_service.stop()

    response = await shop.place(buyer, [(shirt["id"], 1)])
    keyed = await shop.place(buyer, [(shirt["id"], 1)], key="users-down-1")

    _assert_503(response)
    _assert_503(keyed)
    await shop.users_service.start()
    assert await _rows(shop) == 0
    assert await shop.stock(shirt["id"]) == 5
    # The 503 freed the key: the retry really tries again.
    assert (await shop.place(buyer, [(shirt["id"], 1)], key="users-down-1")).status_code == 201


async def test_crash_between_reservation_and_order_write_is_recovered(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    # What a process leaves behind if it dies right after step 5 of the saga.
    order_id = "6f1c2b1e-0000-4000-8000-00000000c0de"
    now = utcnow()
    async with shop.db.write() as conn:
        await conn.execute(
            insert(orders).values(
                id=order_id,
                user_id=buyer.id,
                status="placing",
                total=0,
                currency="",
                shipping_address=ADDRESS,
                created_at=now,
                updated_at=now,
            )
        )
    await shop.runtime.products.reserve(
        reservation_id=order_id,
        items={shirt["id"]: 3},
        ttl_seconds=None,
    )
    assert await shop.stock(shirt["id"]) == 2

    # Not yet past the deadline: a slow placement is left alone.
    assert (
        await recover_stuck_placements(
            db=shop.db, products=shop.runtime.products, now=utcnow(), deadline_seconds=60
        )
        == 0
    )
    assert await _recover(shop) == 1
    assert await shop.stock(shirt["id"]) == 5
    assert (await shop.reservation(order_id)).json()["status"] == "released"
    assert await _rows(shop) == 0
    assert await _recover(shop) == 0  # idempotent


async def test_cancel_while_products_down_stands_and_releases_later(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    order = (await shop.place(buyer, [(shirt["id"], 4)])).json()
    await shop.products_service.stop()

    cancelled = await shop.post(buyer, f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert await shop.release() == 0  # products is down: retried later

    await shop.products_service.start()
    assert await shop.release(utcnow() + timedelta(minutes=1)) == 1
    assert await shop.stock(shirt["id"]) == 5


@pytest.fixture
async def live_shop(orders_shop_factory: ShopFactory) -> AsyncIterator[Shop]:
    """Background jobs running, as in production."""
    async with orders_shop_factory(workers_enabled=True, outbox_interval_seconds=0.2) as shop:
        yield shop


async def test_users_down_during_status_change_then_notification_arrives(live_shop: Shop) -> None:
    shop = live_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    order = (await shop.place(buyer, [(shirt["id"], 1)])).json()

    async def notified(status: str) -> bool:
        return any(n["status"] == status for n in await shop.notifications(buyer))

    await eventually(lambda: notified("processing"))
    await shop.users_service.stop()

    shipped = await shop.post(admin, f"/orders/{order['id']}/status", {"status": "shipped"})
    assert shipped.status_code == 200, shipped.text

    await shop.users_service.start()
    await eventually(lambda: notified("shipped"), within=15)
    statuses = [n["status"] for n in await shop.notifications(buyer)]
    assert statuses == ["shipped", "processing"]


async def test_the_service_starts_while_users_is_down(orders_databases: Databases) -> None:
    """A replica that starts before users (or while it is down) serves, and fetches the
    signing keys with the first token instead of failing its start-up (crash-looping)."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    orders = Served(lambda: create_orders_app(orders_settings(orders_databases, dead, dead)))
    await orders.start()
    try:
        async with httpx.AsyncClient(base_url=orders.url, timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 200
            # A well-formed token whose key must be fetched: 503, the token may be good.
            key = Ed25519PrivateKey.generate()
            token = jwt.encode({"sub": "someone"}, key, algorithm="EdDSA", headers={"kid": "k1"})
            answer = await http.get("/orders", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "dependency_unavailable"
    finally:
        await orders.stop()
