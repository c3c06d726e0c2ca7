"""Tracking: listing, status changes, cancellation and notifications, through the real services."""

from __future__ import annotations

from typing import Any

import pytest
from orders_support import Account, Shop
from sqlalchemy import select, update

from pasar_orders.tables import outbox


async def _order(
    shop: Shop, buyer: Account, product: dict[str, Any], qty: int = 1
) -> dict[str, Any]:
    response = await shop.place(buyer, [(product["id"], qty)])
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def test_customers_see_their_own_orders_newest_first(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer, other = await shop.customer(), await shop.customer()
    shirt = await shop.product(stock=20)
    mine = [await _order(shop, buyer, shirt) for _ in range(3)]
    theirs = await _order(shop, other, shirt)

    listed = await shop.get(buyer, "/orders")
    assert listed.status_code == 200
    page = listed.json()
    assert page["total"] == 3 and page["limit"] == 20 and page["offset"] == 0
    assert [o["id"] for o in page["items"]] == [o["id"] for o in reversed(mine)]
    assert page["items"][0]["items"] and page["items"][0]["status_history"]

    second = (await shop.get(buyer, "/orders", limit=2, offset=2)).json()
    assert [o["id"] for o in second["items"]] == [mine[0]["id"]]
    # A customer's user_id filter cannot widen the view.
    assert (await shop.get(buyer, "/orders", user_id=other.id)).json()["total"] == 3
    # Someone else's order is 404 everywhere.
    assert (await shop.get(buyer, f"/orders/{theirs['id']}")).status_code == 404
    assert (await shop.post(buyer, f"/orders/{theirs['id']}/cancel")).status_code == 404
    assert (await shop.get(buyer, "/orders/not-an-order")).status_code == 404


async def test_list_parameters_are_validated(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    for params in (
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"offset": 10**25},
        {"status": "placing"},
    ):
        response = await shop.get(buyer, "/orders", **params)
        assert response.status_code == 422, params


async def test_admins_see_all_and_filter(orders_shop: Shop) -> None:
    shop = orders_shop
    admin = await shop.make_admin()
    one, two = await shop.customer(), await shop.customer()
    shirt = await shop.product(stock=20)
    a = await _order(shop, one, shirt)
    b = await _order(shop, two, shirt)
    await shop.post(admin, f"/orders/{b['id']}/status", {"status": "shipped"})

    everything = (await shop.get(admin, "/orders")).json()
    assert {o["id"] for o in everything["items"]} == {a["id"], b["id"]}
    assert [
        o["id"] for o in (await shop.get(admin, "/orders", user_id=one.id)).json()["items"]
    ] == [a["id"]]
    assert [
        o["id"] for o in (await shop.get(admin, "/orders", status="shipped")).json()["items"]
    ] == [b["id"]]
    assert (await shop.get(admin, f"/orders/{a['id']}")).status_code == 200


async def test_status_moves_along_and_history_records_who(orders_shop: Shop) -> None:
    shop = orders_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    order = await _order(shop, buyer, shirt)

    shipped = await shop.post(
        admin, f"/orders/{order['id']}/status", {"status": "shipped", "note": "JNE 123"}
    )
    assert shipped.status_code == 200, shipped.text
    completed = await shop.post(admin, f"/orders/{order['id']}/status", {"status": "completed"})
    assert completed.status_code == 200
    history = completed.json()["status_history"]
    assert [(h["status"], h["by"], h["note"]) for h in history] == [
        ("processing", buyer.id, None),
        ("shipped", admin.id, "JNE 123"),
        ("completed", admin.id, None),
    ]
    assert completed.json()["updated_at"] >= completed.json()["created_at"]

    backwards = await shop.post(admin, f"/orders/{order['id']}/status", {"status": "processing"})
    assert backwards.status_code == 409
    assert backwards.json()["code"] == "invalid_transition"
    cancel_late = await shop.post(buyer, f"/orders/{order['id']}/cancel")
    assert cancel_late.status_code == 409


async def test_status_changes_are_admin_only_and_validated(orders_shop: Shop) -> None:
    shop = orders_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    shirt = await shop.product()
    order = await _order(shop, buyer, shirt)
    assert (
        await shop.post(buyer, f"/orders/{order['id']}/status", {"status": "shipped"})
    ).status_code == 403
    assert (
        await shop.post(admin, f"/orders/{order['id']}/status", {"status": "lost"})
    ).status_code == 422
    assert (
        await shop.post(admin, f"/orders/{order['id']}/status", {"status": "placing"})
    ).status_code == 422
    assert (
        await shop.post(admin, f"/orders/{order['id']}/status", {"status": "shipped", "x": 1})
    ).status_code == 422
    assert (await shop.post(admin, "/orders/nope/status", {"status": "shipped"})).status_code == 404


async def test_cancel_by_owner_releases_the_stock(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    order = await _order(shop, buyer, shirt, qty=3)
    assert await shop.stock(shirt["id"]) == 2

    cancelled = await shop.post(buyer, f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["status_history"][-1]["by"] == buyer.id
    assert await shop.release() == 1
    assert await shop.stock(shirt["id"]) == 5
    assert await shop.release() == 0  # nothing left to release

    again = await shop.post(buyer, f"/orders/{order['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    assert await shop.stock(shirt["id"]) == 5


async def test_admin_can_cancel_and_admin_cancel_releases(orders_shop: Shop) -> None:
    shop = orders_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    one = await _order(shop, buyer, shirt, qty=2)
    two = await _order(shop, buyer, shirt, qty=2)
    assert (await shop.post(admin, f"/orders/{one['id']}/cancel")).status_code == 200
    assert (
        await shop.post(admin, f"/orders/{two['id']}/status", {"status": "cancelled"})
    ).status_code == 200
    assert await shop.release() == 2
    assert await shop.stock(shirt["id"]) == 5


async def test_every_change_reaches_the_owner_once_in_order(orders_shop: Shop) -> None:
    shop = orders_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    order = await _order(shop, buyer, shirt)
    await shop.post(admin, f"/orders/{order['id']}/status", {"status": "shipped"})
    await shop.post(admin, f"/orders/{order['id']}/status", {"status": "completed"})

    # One event per order per relay pass: the next waits for the earlier to be delivered.
    assert await shop.relay() == 1
    assert await shop.relay() == 1
    assert await shop.relay() == 1
    assert await shop.relay() == 0

    notes = await shop.notifications(buyer)
    short = order["id"].replace("-", "")[:8].upper()
    assert [(n["type"], n["status"], n["message"]) for n in reversed(notes)] == [
        ("order.created", "processing", f"Order #{short} has been placed and is being processed."),
        ("order.status_changed", "shipped", f"Order #{short} has been shipped."),
        ("order.status_changed", "completed", f"Order #{short} has been completed."),
    ]
    assert all(n["order_id"] == order["id"] for n in notes)
    assert await shop.notifications(admin) == []


async def _spoil_event(shop: Shop, order_id: str, **values: str) -> None:
    """Change an undelivered event in the outbox, as a bug or an old row might have it."""
    async with shop.db.write() as conn:
        await conn.execute(update(outbox).where(outbox.c.order_id == order_id).values(**values))


async def _undelivered(shop: Shop) -> list[tuple[str, int]]:
    async with shop.db.read() as conn:
        rows = await conn.execute(
            select(outbox.c.order_id, outbox.c.attempts).where(outbox.c.delivered_at.is_(None))
        )
        return [(row.order_id, row.attempts) for row in rows]


@pytest.mark.parametrize(
    ("spoiled", "why"),
    [
        ({"message": ""}, "users refuses the batch (422): the events go one by one"),
        ({"user_id": "no-such-user"}, "users takes the batch but stores not this one"),
    ],
)
async def test_one_event_users_will_not_store_never_holds_back_the_others(
    orders_shop: Shop, spoiled: dict[str, str], why: str
) -> None:
    shop = orders_shop
    buyers = [await shop.customer() for _ in range(3)]
    shirt = await shop.product(stock=5)
    orders = [await _order(shop, buyer, shirt) for buyer in buyers]
    await _spoil_event(shop, orders[1]["id"], **spoiled)

    assert await shop.relay() == 2, why
    for buyer, order in zip(buyers, orders, strict=True):
        inbox = [n["order_id"] for n in await shop.notifications(buyer)]
        assert inbox == ([] if order is orders[1] else [order["id"]]), why
    # The spoiled one waits for its next attempt, counted.
    assert await _undelivered(shop) == [(orders[1]["id"], 1)], why
