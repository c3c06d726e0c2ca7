"""Idempotency-Key on POST /orders, per user, through the real services."""

from __future__ import annotations

from datetime import timedelta

from orders_support import Shop
from sqlalchemy import func, insert, select, update
from testdata import ADDRESS

from pasar_kit.db import utcnow
from pasar_orders.idempotency import purge_idempotency_keys
from pasar_orders.tables import idempotency_keys, orders


async def _orders(shop: Shop) -> int:
    async with shop.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(orders))).scalar_one())


async def test_same_key_same_body_replays_the_first_answer(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=10)
    first = await shop.place(buyer, [(shirt["id"], 2)], key="checkout-1")
    again = await shop.place(buyer, [(shirt["id"], 2)], key="checkout-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await _orders(shop) == 1
    assert await shop.stock(shirt["id"]) == 8


async def test_same_key_different_body_is_422(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=10)
    assert (await shop.place(buyer, [(shirt["id"], 1)], key="k")).status_code == 201
    reused = await shop.place(buyer, [(shirt["id"], 3)], key="k")
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert await _orders(shop) == 1


async def test_keys_belong_to_one_user(orders_shop: Shop) -> None:
    shop = orders_shop
    one, two = await shop.customer(), await shop.customer()
    shirt = await shop.product(stock=10)
    a = await shop.place(one, [(shirt["id"], 1)], key="same")
    b = await shop.place(two, [(shirt["id"], 1)], key="same")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_a_key_in_flight_is_409(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=10)
    first = await shop.place(buyer, [(shirt["id"], 1)], key="busy")
    assert first.status_code == 201
    # Make it look like the first request is still running.
    async with shop.db.write() as conn:
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == "busy")
            .values(state="in_flight", response_status=None, response_body=None)
        )
    busy = await shop.place(buyer, [(shirt["id"], 1)], key="busy")
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_key_in_flight"
    assert busy.headers["retry-after"] == "1"


async def test_a_claim_left_by_a_dead_request_is_taken_over(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=10)
    body = {"items": [{"product_id": shirt["id"], "quantity": 1}], "shipping_address": ADDRESS}
    from pasar_orders.idempotency import fingerprint
    from pasar_orders.schemas import OrderCreate

    long_ago = utcnow() - timedelta(hours=1)
    async with shop.db.write() as conn:
        await conn.execute(
            insert(idempotency_keys).values(
                user_id=buyer.id,
                key="orphan",
                fingerprint=fingerprint(OrderCreate.model_validate(body)),
                state="in_flight",
                created_at=long_ago,
                updated_at=long_ago,
            )
        )
    response = await shop.place(buyer, body=body, key="orphan")
    assert response.status_code == 201, response.text
    assert (await shop.place(buyer, body=body, key="orphan")).json() == response.json()


async def test_a_final_4xx_is_stored_and_replayed(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=1)
    short = await shop.place(buyer, [(shirt["id"], 2)], key="too-many")
    assert short.status_code == 409
    assert "idempotent-replayed" not in short.headers
    again = await shop.place(buyer, [(shirt["id"], 2)], key="too-many")
    assert again.status_code == 409
    assert again.json() == short.json()
    assert again.headers["content-type"] == "application/problem+json"
    # The stored answer, not the placement run again (which would answer alike).
    assert again.headers.get("idempotent-replayed") == "true", dict(again.headers)


async def test_a_503_frees_the_key(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=3)
    await shop.products_service.stop()
    down = await shop.place(buyer, [(shirt["id"], 1)], key="retry-me")
    assert down.status_code == 503
    await shop.products_service.start()
    retried = await shop.place(buyer, [(shirt["id"], 1)], key="retry-me")
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers


async def test_invalid_keys_are_422(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product()
    response = await shop.place(buyer, [(shirt["id"], 1)], key="x" * 256)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_idempotency_key"
    assert await _orders(shop) == 0


async def test_keys_are_kept_a_day_then_purged(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product()
    await shop.place(buyer, [(shirt["id"], 1)], key="old")
    assert await purge_idempotency_keys(db=shop.db, older_than=utcnow() - timedelta(hours=24)) == 0
    assert await purge_idempotency_keys(db=shop.db, older_than=utcnow() + timedelta(seconds=1)) == 1
