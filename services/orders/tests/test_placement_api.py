"""Placing orders through the real services: the happy path, prices, validation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from orders_support import Shop, ShopFactory
from sqlalchemy import func, insert, select
from testdata import ADDRESS

from pasar_kit.db import Database, utcnow
from pasar_orders.status import PLACING
from pasar_orders.tables import orders
from pasar_products.tables import reservations
from pasar_users import email_tokens


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


async def _order_rows(shop: Shop) -> int:
    async with shop.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(orders))).scalar_one())


async def test_client_prices_and_owner_are_never_taken(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(price=150_000)
    for extra in (
        {"items": [{"product_id": shirt["id"], "quantity": 1, "unit_price": 1}]},
        {"total": 1},
        {"user_id": "someone-else"},
        {"status": "shipped"},
    ):
        body: dict[str, object] = {
            "items": [{"product_id": shirt["id"], "quantity": 1}],
            "shipping_address": ADDRESS,
        }
        body.update(extra)
        response = await shop.place(buyer, body=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert await _order_rows(shop) == 0
    assert await shop.stock(shirt["id"]) == 10


async def test_duplicate_lines_are_merged(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=10)
    response = await shop.place(buyer, [(shirt["id"], 2), (shirt["id"], 3)])
    assert response.status_code == 201, response.text
    assert [(i["product_id"], i["quantity"]) for i in response.json()["items"]] == [
        (shirt["id"], 5)
    ]
    assert await shop.stock(shirt["id"]) == 5


async def test_invalid_carts_are_422(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product()
    assert (await shop.place(buyer, [])).status_code == 422
    assert (await shop.place(buyer, [(shirt["id"], 0)])).status_code == 422
    merged_too_many = await shop.place(buyer, [(shirt["id"], 600), (shirt["id"], 600)])
    assert merged_too_many.status_code == 422
    assert merged_too_many.json()["code"] == "quantity_too_large"
    no_address = await shop.place(
        buyer, body={"items": [{"product_id": shirt["id"], "quantity": 1}]}
    )
    assert no_address.status_code == 422
    assert no_address.json()["errors"]
    assert await _order_rows(shop) == 0


async def test_unknown_product_is_422_and_leaves_nothing(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=4)
    response = await shop.place(buyer, [(shirt["id"], 1), ("no-such-product", 1)])
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "unknown_product"
    assert await _order_rows(shop) == 0
    assert await shop.stock(shirt["id"]) == 4


async def test_shortage_is_409_with_shortages_and_leaves_nothing(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=4)
    sarong = await shop.product(stock=1)
    response = await shop.place(buyer, [(shirt["id"], 2), (sarong["id"], 3)])
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["code"] == "out_of_stock"
    assert problem["shortages"] == [{"product_id": sarong["id"], "requested": 3, "available": 1}]
    assert await _order_rows(shop) == 0
    assert await shop.stock(shirt["id"]) == 4
    assert await shop.stock(sarong["id"]) == 1


async def test_inactive_user_cannot_order(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=4)
    await shop.deactivate(buyer)
    # The access token is still valid: only the User-Service knows the account is off.
    for key in (None, "inactive-1", "inactive-1"):  # the keyed retry replays the answer
        response = await shop.place(buyer, [(shirt["id"], 1)], key=key)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "user_inactive"
        # No internal placing row is left behind, whether it had a transaction of its
        # own or was written with the key's claim.
        assert await _order_rows(shop) == 0
    assert await shop.stock(shirt["id"]) == 4


async def _verify_email(shop: Shop, user_id: str, email: str) -> None:
    """Click the verification link, minted as the User-Service's mail sender mints it."""
    assert shop.users_service.app is not None
    users_db: Database = shop.users_service.app.state.db
    async with users_db.write() as conn:
        token = await email_tokens.issue(
            conn,
            user_id=user_id,
            purpose="verify_email",
            email=email,
            now=utcnow(),
            ttl=timedelta(hours=1),
        )
    response = await shop.http.post(
        f"{shop.users_service.url}/auth/verify-email", json={"token": token}
    )
    assert response.status_code == 204, response.text


async def test_an_unverified_account_cannot_order_when_the_shop_requires_it(
    orders_shop_factory: ShopFactory,
) -> None:
    async with orders_shop_factory(require_verified_email=True) as shop:
        buyer = await shop.customer()
        shirt = await shop.product(stock=4)
        for key in (None, "unverified-1"):
            response = await shop.place(buyer, [(shirt["id"], 1)], key=key)
            assert response.status_code == 403, response.text
            assert response.json()["code"] == "email_not_verified"
            assert await _order_rows(shop) == 0
        assert await shop.stock(shirt["id"]) == 4  # refused before anything was held
        await _verify_email(shop, buyer.id, buyer.email)
        response = await shop.place(buyer, [(shirt["id"], 1)])
        assert response.status_code == 201, response.text
        assert await shop.stock(shirt["id"]) == 3


async def test_an_unverified_account_orders_when_the_shop_does_not_require_it(
    orders_shop: Shop,
) -> None:
    shop = orders_shop
    buyer = await shop.customer()  # registered just now: not verified
    shirt = await shop.product(stock=4)
    response = await shop.place(buyer, [(shirt["id"], 1)])
    assert response.status_code == 201, response.text
    assert await shop.stock(shirt["id"]) == 3


async def test_tokens_are_required_and_services_cannot_order(orders_shop: Shop) -> None:
    shop = orders_shop
    shirt = await shop.product()
    body = {"items": [{"product_id": shirt["id"], "quantity": 1}], "shipping_address": ADDRESS}
    anonymous = await shop.http.post(f"{shop.orders_url}/orders", json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    garbage = await shop.http.post(
        f"{shop.orders_url}/orders", json=body, headers={"Authorization": "Bearer nope"}
    )
    assert garbage.status_code == 401
    service_token = await shop.runtime.users.client.credentials.token()  # type: ignore[union-attr]
    as_service = await shop.http.post(
        f"{shop.orders_url}/orders", json=body, headers={"Authorization": f"Bearer {service_token}"}
    )
    assert as_service.status_code == 403


async def test_placing_rows_are_never_shown(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    admin = await shop.make_admin()
    now = utcnow()
    async with shop.db.write() as conn:
        await conn.execute(
            insert(orders).values(
                id="00000000-0000-4000-8000-00000000dead",
                user_id=buyer.id,
                status=PLACING,
                total=0,
                currency="",
                shipping_address=ADDRESS,
                created_at=now,
                updated_at=now,
            )
        )
    for who in (buyer, admin):
        listed = await shop.get(who, "/orders")
        assert listed.json()["items"] == [] and listed.json()["total"] == 0
        one = await shop.get(who, "/orders/00000000-0000-4000-8000-00000000dead")
        assert one.status_code == 404
        cancel = await shop.post(who, "/orders/00000000-0000-4000-8000-00000000dead/cancel")
        assert cancel.status_code == 404


async def test_openapi_declares_the_problems(orders_shop: Shop) -> None:
    spec = (await shop_get(orders_shop, "/openapi.json")).json()
    place = spec["paths"]["/orders"]["post"]
    assert place["operationId"] == "place_order"
    assert {"401", "403", "409", "422", "503"} <= set(place["responses"])
    assert "402" in spec["paths"]["/orders/{order_id}/payments"]["post"]["responses"]


async def shop_get(shop: Shop, path: str) -> Any:
    return await shop.http.get(f"{shop.orders_url}{path}")


MAX_MONEY = 10**15


async def _held_reservations(shop: Shop) -> int:
    db = Database(shop.dbs.products)
    try:
        async with db.read() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(reservations)
                        .where(reservations.c.status == "held")
                    )
                ).scalar_one()
            )
    finally:
        await db.dispose()


async def test_an_order_worth_more_than_any_amount_is_422_and_holds_nothing(
    orders_shop: Shop,
) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    # Ten products at the highest price, 1000 of each: 10^19, past a signed 64-bit total.
    dear = [await shop.product(price=MAX_MONEY, stock=1000) for _ in range(10)]

    response = await shop.place(buyer, [(p["id"], 1000) for p in dear], key="dear")

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "order_total_too_large"
    assert problem["limit"] == MAX_MONEY
    assert [await shop.stock(p["id"]) for p in dear] == [1000] * 10
    assert await _held_reservations(shop) == 0
    assert await _order_rows(shop) == 0
    # A final refusal: replayed as it was.
    again = await shop.place(buyer, [(p["id"], 1000) for p in dear], key="dear")
    assert again.status_code == 422 and again.headers["idempotent-replayed"] == "true"
    # Just over the limit is refused too; the limit itself is an order.
    over = await shop.place(buyer, [(dear[0]["id"], 1), (dear[1]["id"], 1)])
    assert over.status_code == 422 and over.json()["code"] == "order_total_too_large"
    at_limit = await shop.place(buyer, [(dear[0]["id"], 1)])
    assert at_limit.status_code == 201, at_limit.text
    assert at_limit.json()["total"] == MAX_MONEY


async def test_a_product_id_outside_the_id_rule_is_our_own_field_error(
    orders_shop: Shop,
) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=4)
    for bad in ("a" * 37, "a" * 40, "a b", " a", "é", "a.b", "a_b", "<b>", "\u0661"):
        response = await shop.place(buyer, [(shirt["id"], 1), (bad, 1)])

        assert response.status_code == 422, (bad, response.text)
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert [e["loc"] for e in problem["errors"]] == [["body", "items", 1, "product_id"]]
    assert await _order_rows(shop) == 0
    assert await shop.stock(shirt["id"]) == 4
    assert await _held_reservations(shop) == 0


async def test_an_unknown_product_is_told_in_our_own_words(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product(stock=4)
    response = await shop.place(buyer, [(shirt["id"], 1), ("no-such-product", 1)])
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "unknown_product"
    assert problem["product_ids"] == ["no-such-product"]
    assert problem["detail"] == "Some items are not products on sale."


async def test_an_order_id_outside_the_id_rule_is_404_without_echoing_it(
    orders_shop: Shop,
) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    for bad in ("x" * 10_000, "a.b", "é"):
        for response in (
            await shop.get(buyer, f"/orders/{bad}"),
            await shop.post(buyer, f"/orders/{bad}/cancel"),
            await shop.post(
                buyer,
                f"/orders/{bad}/payments",
                {"card_number": "4242424242424242", "expiry": "12/30", "cvc": "123"},
            ),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "order_not_found"
            assert bad not in response.json()["detail"]


async def test_a_total_too_large_from_an_older_products_service_is_released_at_once(
    orders_shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Product-Service from before the limit holds such a reservation; the order is
    # still refused, and what was held goes back at once rather than at recovery.
    monkeypatch.setattr("pasar_products.reservations.MAX_MONEY", 10**19)
    shop = orders_shop
    buyer = await shop.customer()
    dear = [await shop.product(price=MAX_MONEY, stock=5) for _ in range(2)]

    response = await shop.place(buyer, [(dear[0]["id"], 1), (dear[1]["id"], 1)])

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "order_total_too_large"
    assert [await shop.stock(p["id"]) for p in dear] == [5, 5]
    assert await _held_reservations(shop) == 0
    assert await _order_rows(shop) == 0
