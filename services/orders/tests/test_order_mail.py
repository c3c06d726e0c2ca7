"""The relay hands each event over with what its mail shows (lines, total, the note of the
status change), and the User-Service puts the customer's and the admins' mail in its
outbox."""

from __future__ import annotations

import json
from typing import Any

from orders_support import Shop
from sqlalchemy import select

from pasar_kit.db import Database
from pasar_users.tables import deliveries


async def _deliveries(shop: Shop) -> list[Any]:
    db = Database(shop.dbs.users)
    try:
        async with db.read() as conn:
            rows = await conn.execute(select(deliveries).order_by(deliveries.c.created_at))
            return list(rows.all())
    finally:
        await db.dispose()


async def test_each_change_puts_its_mail_with_lines_total_and_note_in_the_outbox(
    orders_shop: Shop,
) -> None:
    shop = orders_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    shirt = await shop.product(stock=5)
    placed = await shop.place(buyer, [(shirt["id"], 2)])
    assert placed.status_code == 201, placed.text
    order = placed.json()
    shipped = await shop.post(
        admin, f"/orders/{order['id']}/status", {"status": "shipped", "note": "JNE 0123456789"}
    )
    assert shipped.status_code == 200, shipped.text
    while await shop.relay():
        pass

    rows = await _deliveries(shop)
    # The buyer's verification mail from registering is not the order's.
    to_buyer = [r for r in rows if r.user_id == buyer.id and r.template != "verify_email"]
    assert [(r.template, r.recipient) for r in to_buyer] == [("order_status", buyer.email)] * 2
    created, shipping = (json.loads(r.context) for r in to_buyer)
    assert (created["type"], created["status"]) == ("order.created", "processing")
    (line,) = created["order"]["lines"]
    assert line == {
        "product_id": shirt["id"],
        "name": shirt["name"],
        "quantity": 2,
        "unit_price": shirt["price"],
        "line_total": 2 * shirt["price"],
    }
    assert created["order"]["total"] == order["total"] == 2 * shirt["price"]
    assert created["order"]["note"] is None
    assert shipping["status"] == "shipped"
    assert shipping["order"]["note"] == "JNE 0123456789"
    to_admin = [r for r in rows if r.template == "admin_new_order"]
    assert [(r.user_id, r.order_id) for r in to_admin] == [(admin.id, order["id"])]
    assert json.loads(to_admin[0].context)["customer"] == buyer.email
