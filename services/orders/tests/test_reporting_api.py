"""Creation-time windows on GET /orders and the admin's order figures, through the real
services. Orders are placed through the API, then moved in time in the database (the
Order-Service reads the real clock)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from orders_support import Account, Shop, ShopFactory
from sqlalchemy import insert, update

from pasar_orders.status import PLACING, RECOVERING
from pasar_orders.tables import orders

APPROVE = {"card_number": "4242424242424242", "expiry": "12/30", "cvc": "123"}

T0 = datetime(2026, 1, 10, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
T2 = datetime(2026, 1, 11, 0, 0, tzinfo=UTC)
PUBLIC_STATUSES = {"pending_payment", "processing", "shipped", "completed", "cancelled"}


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def _order(shop: Shop, buyer: Account, product: dict[str, Any], qty: int = 1) -> str:
    response = await shop.place(buyer, [(product["id"], qty)])
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    return order_id


async def _created_at(shop: Shop, order_id: str, moment: datetime) -> None:
    async with shop.db.write() as conn:
        await conn.execute(update(orders).where(orders.c.id == order_id).values(created_at=moment))


async def _internal(shop: Shop, buyer: Account, status: str, moment: datetime) -> None:
    """A placement in progress (or being recovered): never an order to anyone."""
    async with shop.db.write() as conn:
        await conn.execute(
            insert(orders).values(
                id=str(uuid.uuid4()),
                user_id=buyer.id,
                status=status,
                total=999_999,
                currency="IDR",
                shipping_address={},
                created_at=moment,
                updated_at=moment,
            )
        )


async def _ids(shop: Shop, who: Account, **params: Any) -> list[str]:
    response = await shop.get(who, "/orders", **params)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(page["items"])
    return [o["id"] for o in page["items"]]


async def test_orders_window_is_from_inclusive_to_exclusive(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer, other = await shop.customer(), await shop.customer()
    admin = await shop.make_admin()
    shirt = await shop.product(stock=20)
    early, noon, late = [await _order(shop, buyer, shirt) for _ in range(3)]
    theirs = await _order(shop, other, shirt)
    for order_id, moment in ((early, T0), (noon, T1), (late, T2), (theirs, T1)):
        await _created_at(shop, order_id, moment)
    await _internal(shop, buyer, PLACING, T1)

    assert await _ids(shop, buyer) == [late, noon, early]
    assert await _ids(shop, buyer, created_from=_iso(T1)) == [late, noon]
    assert await _ids(shop, buyer, created_to=_iso(T1)) == [early]
    assert await _ids(shop, buyer, created_from=_iso(T0), created_to=_iso(T2)) == [noon, early]
    assert await _ids(shop, buyer, created_from=_iso(T1), created_to=_iso(T1)) == []
    one_tick = timedelta(microseconds=1)
    assert await _ids(shop, buyer, created_from=_iso(T1 + one_tick)) == [late]
    assert await _ids(shop, buyer, created_to=_iso(T1 + one_tick)) == [noon, early]
    # A customer's window covers only their own orders; an admin's covers everyone's.
    assert set(await _ids(shop, admin, created_from=_iso(T1), created_to=_iso(T2))) == {
        noon,
        theirs,
    }
    assert await _ids(
        shop, admin, created_from=_iso(T1), created_to=_iso(T2), user_id=other.id
    ) == [theirs]
    page = (await shop.get(buyer, "/orders", created_from=_iso(T0), limit=1, offset=1)).json()
    assert page["total"] == 3 and [o["id"] for o in page["items"]] == [noon]


async def test_window_bounds_in_other_zones_mean_the_same_instant(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    early, noon = await _order(shop, buyer, shirt), await _order(shop, buyer, shirt)
    await _created_at(shop, early, T0)
    await _created_at(shop, noon, T1)

    jakarta = "2026-01-10T19:00:00+07:00"  # T1
    new_york = "2026-01-10T07:00:00-05:00"  # T1
    assert await _ids(shop, buyer, created_from=jakarta) == [noon]
    assert await _ids(shop, buyer, created_to=jakarta) == [early]
    assert await _ids(shop, buyer, created_from=new_york) == [noon]
    assert await _ids(shop, buyer, created_to="2026-01-10T12:00:00Z") == [early]
    assert await _ids(shop, buyer, created_to="2026-01-10T12:00:00.000001Z") == [noon, early]


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-10T12:00:00",  # naive: which zone?
        "2026-01-10",
        "2026-01-10 12:00:00Z",  # RFC 3339 wants the T
        "0.5",  # not a Unix timestamp either
        "1768046400",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    ],
)
@pytest.mark.parametrize("name", ["created_from", "created_to"])
async def test_window_bounds_must_be_aware_datetimes(
    orders_shop: Shop, name: str, value: str
) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    admin = await shop.make_admin()
    for who, path in ((buyer, "/orders"), (admin, "/admin/order-stats")):
        response = await shop.get(who, path, **{name: value})
        assert response.status_code == 422, (path, value, response.text)
        assert response.json()["code"] == "validation_error"


async def test_extreme_but_valid_bounds_are_answered(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    admin = await shop.make_admin()
    shirt = await shop.product(stock=5)
    order_id = await _order(shop, buyer, shirt)
    wide = {"created_from": "0001-01-01T00:00:00Z", "created_to": "9999-12-31T23:59:59Z"}
    assert await _ids(shop, buyer, **wide) == [order_id]
    stats = await shop.get(admin, "/admin/order-stats", **wide)
    assert stats.status_code == 200 and stats.json()["orders"] == 1


@pytest.fixture
async def paying_shop(orders_shop_factory: ShopFactory) -> AsyncIterator[Shop]:
    async with orders_shop_factory(payment_provider="test", payment_window_seconds=600) as shop:
        yield shop


async def _stats(shop: Shop, **params: Any) -> dict[str, Any]:
    admin = await shop.make_admin()
    response = await shop.get(admin, "/admin/order-stats", **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_order_stats_count_by_status_and_sum_revenue(paying_shop: Shop) -> None:
    shop = paying_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    shirt = await shop.product(stock=100, price=100_000)

    async def order(qty: int, *, paid: bool = False, then: tuple[str, ...] = ()) -> str:
        order_id = await _order(shop, buyer, shirt, qty)
        if paid:
            response = await shop.post(buyer, f"/orders/{order_id}/payments", APPROVE)
            assert response.status_code == 200, response.text
        for status in then:
            response = await shop.post(admin, f"/orders/{order_id}/status", {"status": status})
            assert response.status_code == 200, response.text
        return order_id

    pending = await order(1)  # 100,000
    processing = await order(2, paid=True)  # 200,000
    shipped = await order(3, paid=True, then=("shipped",))  # 300,000
    completed = await order(4, paid=True, then=("shipped", "completed"))  # 400,000
    cancelled = await order(5, then=("cancelled",))  # 500,000: not revenue
    cancelled_paid = await order(6, paid=True, then=("cancelled",))  # 600,000: not revenue
    old = await order(7, paid=True)  # 700,000, outside the window below
    for order_id in (pending, processing, shipped, completed, cancelled, cancelled_paid):
        await _created_at(shop, order_id, T1)
    await _created_at(shop, old, T0)
    await _internal(shop, buyer, PLACING, T1)
    await _internal(shop, buyer, RECOVERING, T1)

    everything = await _stats(shop)
    assert everything == {
        "by_status": {
            "pending_payment": 1,
            "processing": 2,
            "shipped": 1,
            "completed": 1,
            "cancelled": 2,
        },
        "orders": 7,
        "revenue": 1_700_000,
        "currency": shop.runtime.settings.currency,
    }
    assert everything["currency"] == "IDR"

    window = await _stats(shop, created_from=_iso(T1), created_to=_iso(T2))
    assert window["by_status"] == {
        "pending_payment": 1,
        "processing": 1,
        "shipped": 1,
        "completed": 1,
        "cancelled": 2,
    }
    assert window["orders"] == 6
    assert window["revenue"] == 1_000_000

    before = await _stats(shop, created_to=_iso(T1))  # exclusive: only the old one
    assert before["orders"] == 1 and before["revenue"] == 700_000
    assert before["by_status"]["processing"] == 1
    since = await _stats(shop, created_from=_iso(T1))  # inclusive
    assert since["orders"] == 6 and since["revenue"] == 1_000_000
    jakarta = await _stats(shop, created_from="2026-01-10T19:00:00+07:00")  # T1 too
    assert jakarta == since


async def test_order_stats_of_an_empty_window_name_every_status(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    await _order(shop, buyer, shirt)
    await _internal(shop, buyer, PLACING, T1)

    empty = await _stats(shop, created_from=_iso(T0), created_to=_iso(T2))

    assert empty == {
        "by_status": dict.fromkeys(PUBLIC_STATUSES, 0),
        "orders": 0,
        "revenue": 0,
        "currency": "IDR",
    }


async def test_order_stats_are_for_admins_only(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    url = f"{shop.orders_url}/admin/order-stats"
    anonymous = await shop.http.get(url)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
    customer = await shop.http.get(url, headers=buyer.headers)
    assert customer.status_code == 403 and customer.json()["code"] == "forbidden"
    service_token = await shop.runtime.users.client.credentials.token()  # type: ignore[union-attr]
    service = await shop.http.get(url, headers={"Authorization": f"Bearer {service_token}"})
    assert service.status_code == 403


async def test_openapi_declares_the_window_and_the_stats(orders_shop: Shop) -> None:
    spec = (await shop_get(orders_shop, "/openapi.json")).json()
    listing = spec["paths"]["/orders"]["get"]
    parameters = {p["name"]: p for p in listing["parameters"]}
    assert {"created_from", "created_to"} <= set(parameters)
    assert not parameters["created_from"].get("required", False)
    stats = spec["paths"]["/admin/order-stats"]["get"]
    assert stats["operationId"] == "order_stats"
    assert {"200", "401", "403", "422"} <= set(stats["responses"])


async def shop_get(shop: Shop, path: str) -> Any:
    return await shop.http.get(f"{shop.orders_url}{path}")
