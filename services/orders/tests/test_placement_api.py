"""Placing orders through the real services: the happy path, prices, validation."""

from __future__ import annotations

from typing import Any

from orders_support import ADDRESS, Shop
from sqlalchemy import func, select

from pasar_orders.tables import orders


async def test_place_order_snapshots_prices_and_holds_stock(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=5, price=150_000)
    sarong = await shop.product(stock=3, price=99_000)

    response = await shop.place(buyer, [(shirt["id"], 2), (sarong["id"], 1)])

    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/orders/{response.json()['id']}"
    order = response.json()
    assert order["user_id"] == buyer.id
    assert order["status"] == "processing"
    assert order["total"] == 2 * 150_000 + 99_000
    assert order["currency"] == "IDR"
    assert order["shipping_address"] == ADDRESS
    assert [
        (i["product_id"], i["quantity"], i["unit_price"], i["line_total"]) for i in order["items"]
    ] == [
        (shirt["id"], 2, 150_000, 300_000),
        (sarong["id"], 1, 99_000, 99_000),
    ]
    assert order["items"][0]["sku"] == shirt["sku"]
    assert order["created_at"].endswith("Z")
    assert [(h["status"], h["by"]) for h in order["status_history"]] == [("processing", buyer.id)]
    assert await shop.stock(shirt["id"]) == 3
    assert await shop.stock(sarong["id"]) == 2
    # Without a payment provider the reservation is committed: it never expires.
    reservation = await shop.reservation(order["id"])
    assert reservation.json()["status"] == "committed"

    fetched = await shop.get(buyer, f"/orders/{order['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == order
