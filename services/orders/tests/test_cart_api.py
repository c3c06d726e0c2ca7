"""The saved cart (GET/PUT /cart) through the real services, and the migrations that
hold it."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from orders_support import Account, Shop
from sqlalchemy import select
from sqlalchemy.engine import Connection

from pasar_orders.tables import carts, metadata

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _lines(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"items": [{"product_id": pid, "quantity": qty} for pid, qty in pairs]}


async def _put(shop: Shop, who: Account, body: object) -> httpx.Response:
    return await shop.http.put(f"{shop.orders_url}/cart", json=body, headers=who.headers)


async def _cart(shop: Shop, who: Account) -> dict[str, Any]:
    response = await shop.get(who, "/cart")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _stored(shop: Shop, user_id: str) -> list[Any]:
    async with shop.db.read() as conn:
        return list(
            (await conn.execute(select(carts.c["items"]).where(carts.c.user_id == user_id)))
            .scalars()
            .all()
        )


async def test_a_cart_never_saved_is_empty(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    assert await _cart(shop, buyer) == {"items": [], "updated_at": None}
    assert await _stored(shop, buyer.id) == []


async def test_put_replaces_the_whole_cart_and_get_returns_it(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer, other = await shop.customer(), await shop.customer()
    shirt, sarong = await shop.product(), await shop.product()

    first = await _put(shop, buyer, _lines((shirt["id"], 2), (sarong["id"], 1)))

    assert first.status_code == 200, first.text
    saved = first.json()
    assert saved["items"] == _lines((shirt["id"], 2), (sarong["id"], 1))["items"]
    assert RFC3339_UTC.match(saved["updated_at"])
    assert await _cart(shop, buyer) == saved  # from another device: the same cart

    second = await _put(shop, buyer, _lines(("not-in-the-catalogue-yet", 7)))
    assert second.status_code == 200, second.text
    assert second.json()["items"] == [{"product_id": "not-in-the-catalogue-yet", "quantity": 7}]
    assert second.json()["updated_at"] >= saved["updated_at"]
    assert await _cart(shop, buyer) == second.json()  # replaced, not merged

    # Carts are per customer.
    assert await _cart(shop, other) == {"items": [], "updated_at": None}
    # Only ids and quantities are kept: never a price.
    stored = await _stored(shop, buyer.id)
    assert stored == [[{"product_id": "not-in-the-catalogue-yet", "quantity": 7}]]


async def test_an_empty_put_empties_the_cart(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    assert (await _put(shop, buyer, _lines(("p-1", 1)))).status_code == 200

    emptied = await _put(shop, buyer, {"items": []})

    assert emptied.status_code == 200, emptied.text
    assert emptied.json()["items"] == [] and emptied.json()["updated_at"] is not None
    assert await _cart(shop, buyer) == emptied.json()
    # Emptying a cart that was never saved is fine too.
    newcomer = await shop.customer()
    assert (await _put(shop, newcomer, {"items": []})).json()["items"] == []


async def test_fifty_lines_fit_and_quantities_go_to_a_thousand(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    body = _lines(*((f"product-{n:02d}", 1000 if n % 2 else 1) for n in range(50)))
    body["items"][0]["product_id"] = "p" * 36
    body["items"][1]["product_id"] = "00000000-0000-4000-8000-000000000001"

    response = await _put(shop, buyer, body)

    assert response.status_code == 200, response.text
    assert response.json()["items"] == body["items"]
    assert (await _cart(shop, buyer))["items"] == body["items"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": None},
        {"items": {"product_id": "p", "quantity": 1}},
        _lines(("p", 0)),
        _lines(("p", 1001)),
        _lines(("p", -1)),
        {"items": [{"product_id": "p", "quantity": "2"}]},
        {"items": [{"product_id": "p", "quantity": 2.5}]},
        {"items": [{"product_id": "p", "quantity": True}]},
        {"items": [{"product_id": "p"}]},
        {"items": [{"quantity": 1}]},
        _lines(("", 1)),
        _lines(("   ", 1)),
        _lines(("  padded ", 1)),  # ids are taken exactly as sent
        # The id rule of every service: 1..36 of A-Z a-z 0-9 and "-".
        _lines(("p" * 37, 1)),
        _lines((" " + "p" * 37, 1)),
        _lines(("a b", 1)),
        _lines(("a.b", 1)),
        _lines(("\u0661", 1)),
        _lines(("<script>", 1)),
        {"items": [{"product_id": 5, "quantity": 1}]},
        {"items": [{"product_id": "p", "quantity": 1, "unit_price": 1}]},
        {"items": [], "user_id": "someone-else"},
        _lines(*((f"product-{n}", 1) for n in range(51))),
    ],
)
async def test_invalid_carts_are_422_and_change_nothing(orders_shop: Shop, body: object) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    before = (await _put(shop, buyer, _lines(("kept", 3)))).json()

    response = await _put(shop, buyer, body)

    assert response.status_code == 422, (body, response.text)
    assert response.json()["code"] == "validation_error"
    assert await _cart(shop, buyer) == before


async def test_a_product_on_two_lines_is_422_saying_so(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()

    response = await _put(shop, buyer, _lines(("p-1", 1), ("p-2", 1), ("p-1", 2)))

    assert response.status_code == 422, response.text
    assert "'p-1' is on more than one line" in response.json()["detail"]
    assert await _cart(shop, buyer) == {"items": [], "updated_at": None}


async def test_the_cart_is_for_users_only(orders_shop: Shop) -> None:
    shop = orders_shop
    url = f"{shop.orders_url}/cart"
    body = _lines(("p", 1))
    for response in (await shop.http.get(url), await shop.http.put(url, json=body)):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    service_token = await shop.runtime.users.client.credentials.token()  # type: ignore[union-attr]
    as_service = {"Authorization": f"Bearer {service_token}"}
    for response in (
        await shop.http.get(url, headers=as_service),
        await shop.http.put(url, json=body, headers=as_service),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"
    # Admins are users: they may keep a cart too.
    admin = await shop.make_admin()
    assert (await _put(shop, admin, body)).status_code == 200
    assert (await _cart(shop, admin))["items"] == body["items"]


@pytest.mark.parametrize("saved_before", [False, True])
async def test_concurrent_puts_by_one_customer_leave_one_of_them(
    orders_shop: Shop, saved_before: bool
) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    if saved_before:
        assert (await _put(shop, buyer, _lines(("old", 1)))).status_code == 200
    bodies = [_lines((f"product-{n}", n + 1), ("shared", 1)) for n in range(20)]

    responses = await asyncio.gather(*(_put(shop, buyer, body) for body in bodies))

    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    final = await _cart(shop, buyer)
    assert {"items": final["items"]} in bodies  # one whole cart, never a mix
    assert len(await _stored(shop, buyer.id)) == 1
    # Its time is the one its own PUT answered with.
    assert final["updated_at"] in {r.json()["updated_at"] for r in responses}


async def test_openapi_declares_the_cart_operations(orders_shop: Shop) -> None:
    spec = (await orders_shop.http.get(f"{orders_shop.orders_url}/openapi.json")).json()
    cart = spec["paths"]["/cart"]
    assert cart["get"]["operationId"] == "get_cart"
    assert cart["put"]["operationId"] == "save_cart"
    assert {"200", "401", "403"} <= set(cart["get"]["responses"])
    assert {"200", "401", "403", "422"} <= set(cart["put"]["responses"])


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_the_migrations_build_exactly_the_tables_the_code_uses(orders_shop: Shop) -> None:
    async with orders_shop.db.read() as conn:
        assert await conn.run_sync(_differences) == []
