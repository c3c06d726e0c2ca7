"""Stock reservations through the ASGI app: all or nothing, idempotency, commit, release."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from products_support import Catalogue, Clock, Tokens


async def test_reserve_holds_every_line_with_catalogue_prices(
    products_catalogue: Catalogue, products_clock: Clock
) -> None:
    a = await products_catalogue.product(sku="A-1", name="Apel", price=10_000_00, stock=5)
    b = await products_catalogue.product(sku="B-1", name="Beras", price=70_000_00, stock=3)
    response = await products_catalogue.reserve([(a["id"], 2), (b["id"], 3)], "order-1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["reservation_id"] == "order-1"
    assert body["status"] == "held"
    expires = datetime.fromisoformat(body["expires_at"])
    assert (expires - products_clock.now).total_seconds() == 900
    assert re.match(r".*Z$", body["expires_at"])
    items = sorted(body["items"], key=lambda item: item["sku"])
    assert items == [
        {"product_id": a["id"], "sku": "A-1", "name": "Apel", "quantity": 2,
         "unit_price": 10_000_00, "currency": "IDR"},
        {"product_id": b["id"], "sku": "B-1", "name": "Beras", "quantity": 3,
         "unit_price": 70_000_00, "currency": "IDR"},
    ]  # fmt: skip
    assert await products_catalogue.stock(a["id"]) == 3
    assert await products_catalogue.stock(b["id"]) == 0
    assert (await products_catalogue.audit())["ok"] is True


async def test_ttl_seconds_overrides_the_default(
    products_catalogue: Catalogue, products_clock: Clock
) -> None:
    product = await products_catalogue.product()
    response = await products_catalogue.reserve([(product["id"], 1)], ttl_seconds=3600)
    assert response.status_code == 201
    expires = datetime.fromisoformat(response.json()["expires_at"])
    assert (expires - products_clock.now).total_seconds() == 3600


async def test_a_shortage_reserves_nothing_and_names_every_short_line(
    products_catalogue: Catalogue,
) -> None:
    a = await products_catalogue.product(stock=5)
    b = await products_catalogue.product(stock=1)
    c = await products_catalogue.product(stock=0)
    response = await products_catalogue.reserve([(a["id"], 2), (b["id"], 2), (c["id"], 1)])
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "out_of_stock"
    assert sorted(problem["shortages"], key=lambda s: s["available"]) == [
        {"product_id": c["id"], "requested": 1, "available": 0},
        {"product_id": b["id"], "requested": 2, "available": 1},
    ]
    assert [await products_catalogue.stock(p["id"]) for p in (a, b, c)] == [5, 1, 0]


async def test_duplicate_lines_are_summed_before_checking(products_catalogue: Catalogue) -> None:
    product = await products_catalogue.product(stock=5)
    short = await products_catalogue.reserve([(product["id"], 3), (product["id"], 3)])
    assert short.status_code == 409
    assert short.json()["shortages"] == [
        {"product_id": product["id"], "requested": 6, "available": 5}
    ]
    held = await products_catalogue.reserve([(product["id"], 2), (product["id"], 3)])
    assert held.status_code == 201
    assert [(i["product_id"], i["quantity"]) for i in held.json()["items"]] == [(product["id"], 5)]
    assert await products_catalogue.stock(product["id"]) == 0


async def test_unknown_or_archived_products_are_422_unknown_product(
    products_catalogue: Catalogue,
) -> None:
    good = await products_catalogue.product(stock=5)
    archived = await products_catalogue.product(stock=5)
    await products_catalogue.client.delete(
        f"/products/{archived['id']}", headers=products_catalogue.tokens.admin()
    )
    missing = str(uuid.uuid4())
    response = await products_catalogue.reserve([(good["id"], 1), (missing, 1)])
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_product"
    assert response.json()["product_ids"] == [missing]
    response = await products_catalogue.reserve([(good["id"], 1), (archived["id"], 1)])
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_product"
    assert await products_catalogue.stock(good["id"]) == 5


async def test_same_id_same_items_replays_with_200(products_catalogue: Catalogue) -> None:
    a = await products_catalogue.product(stock=5)
    b = await products_catalogue.product(stock=5)
    first = await products_catalogue.reserve([(a["id"], 1), (b["id"], 2)], "r-1")
    # Same items in another order, one split in two: the same request.
    again = await products_catalogue.reserve([(b["id"], 1), (a["id"], 1), (b["id"], 1)], "r-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert await products_catalogue.stock(a["id"]) == 4
    assert await products_catalogue.stock(b["id"]) == 3


async def test_commit_in_the_same_call_holds_for_good(products_catalogue: Catalogue) -> None:
    a = await products_catalogue.product(stock=5)
    response = await products_catalogue.reserve([(a["id"], 2)], "r-now", commit=True)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "committed" and body["expires_at"] is None
    assert await products_catalogue.stock(a["id"]) == 3
    # A replay answers the committed reservation and takes nothing more.
    again = await products_catalogue.reserve([(a["id"], 2)], "r-now", commit=True)
    assert again.status_code == 200 and again.json() == body
    assert await products_catalogue.stock(a["id"]) == 3
    # Committing it again is the idempotent no-op it always was; release returns the stock.
    client, service = products_catalogue.client, products_catalogue.tokens.service()
    assert (await client.post("/internal/reservations/r-now/commit", headers=service)).is_success
    assert (await client.post("/internal/reservations/r-now/release", headers=service)).is_success
    assert await products_catalogue.stock(a["id"]) == 5
    assert (await products_catalogue.audit())["ok"] is True


async def test_a_reservation_released_before_it_arrives_holds_nothing(
    products_catalogue: Catalogue,
) -> None:
    """The caller gave up (its request stalled somewhere) and released the id first; when
    the late request lands it must hold nothing, committed at once or not."""
    a = await products_catalogue.product(stock=5)
    client, service = products_catalogue.client, products_catalogue.tokens.service()
    early = await client.post("/internal/reservations/late-1/release", headers=service)
    assert early.status_code == 404 and early.json()["code"] == "reservation_not_found"

    late = await products_catalogue.reserve([(a["id"], 2)], "late-1", commit=True)

    assert late.status_code == 409 and late.json()["code"] == "reservation_conflict"
    assert await products_catalogue.stock(a["id"]) == 5
    # To every caller the id still names nothing.
    for path in ("", "/commit", "/release"):
        method = client.get if path == "" else client.post
        answer = await method(f"/internal/reservations/late-1{path}", headers=service)
        assert answer.status_code == 404, (path, answer.text)
    assert (await products_catalogue.audit())["ok"] is True


async def test_same_id_other_items_is_409_reservation_conflict(
    products_catalogue: Catalogue,
) -> None:
    a = await products_catalogue.product(stock=5)
    assert (await products_catalogue.reserve([(a["id"], 1)], "r-2")).status_code == 201
    response = await products_catalogue.reserve([(a["id"], 2)], "r-2")
    assert response.status_code == 409
    assert response.json()["code"] == "reservation_conflict"
    assert await products_catalogue.stock(a["id"]) == 4


async def test_replay_after_release_returns_it_released_without_holding_again(
    products_catalogue: Catalogue,
) -> None:
    a = await products_catalogue.product(stock=5)
    await products_catalogue.reserve([(a["id"], 2)], "r-3")
    client, service = products_catalogue.client, products_catalogue.tokens.service()
    await client.post("/internal/reservations/r-3/release", headers=service)
    replay = await products_catalogue.reserve([(a["id"], 2)], "r-3")
    assert replay.status_code == 200
    assert replay.json()["status"] == "released"
    assert await products_catalogue.stock(a["id"]) == 5


async def test_prices_are_snapshotted_at_reservation_time(products_catalogue: Catalogue) -> None:
    a = await products_catalogue.product(price=1000, stock=5)
    await products_catalogue.reserve([(a["id"], 1)], "r-4")
    await products_catalogue.client.patch(
        f"/products/{a['id']}", json={"price": 2000}, headers=products_catalogue.tokens.admin()
    )
    read = await products_catalogue.client.get(
        "/internal/reservations/r-4", headers=products_catalogue.tokens.service()
    )
    assert read.json()["items"][0]["unit_price"] == 1000


async def test_commit_then_release_returns_the_stock_once(products_catalogue: Catalogue) -> None:
    a = await products_catalogue.product(stock=5)
    await products_catalogue.reserve([(a["id"], 3)], "r-5")
    client, service = products_catalogue.client, products_catalogue.tokens.service()

    committed = await client.post("/internal/reservations/r-5/commit", headers=service)
    assert committed.status_code == 200
    assert committed.json()["status"] == "committed"
    assert committed.json()["expires_at"] is None
    again = await client.post("/internal/reservations/r-5/commit", headers=service)
    assert again.status_code == 200 and again.json()["status"] == "committed"
    assert await products_catalogue.stock(a["id"]) == 2
    assert (await products_catalogue.audit())["ok"] is True

    released = await client.post("/internal/reservations/r-5/release", headers=service)
    assert released.status_code == 200 and released.json()["status"] == "released"
    twice = await client.post("/internal/reservations/r-5/release", headers=service)
    assert twice.status_code == 200 and twice.json()["status"] == "released"
    assert await products_catalogue.stock(a["id"]) == 5
    assert (await products_catalogue.audit())["ok"] is True

    late_commit = await client.post("/internal/reservations/r-5/commit", headers=service)
    assert late_commit.status_code == 409
    assert late_commit.json()["code"] == "reservation_released"


async def test_release_from_held(products_catalogue: Catalogue) -> None:
    a = await products_catalogue.product(stock=5)
    await products_catalogue.reserve([(a["id"], 4)], "r-6")
    response = await products_catalogue.client.post(
        "/internal/reservations/r-6/release", headers=products_catalogue.tokens.service()
    )
    assert response.status_code == 200 and response.json()["status"] == "released"
    assert await products_catalogue.stock(a["id"]) == 5


@pytest.mark.parametrize("action", ["commit", "release"])
async def test_unknown_reservation_is_404(
    products_client: httpx.AsyncClient, products_tokens: Tokens, action: str
) -> None:
    response = await products_client.post(
        f"/internal/reservations/nope/{action}", headers=products_tokens.service()
    )
    assert response.status_code == 404
    assert response.json()["code"] == "reservation_not_found"


async def test_get_reservation(products_catalogue: Catalogue) -> None:
    a = await products_catalogue.product(stock=5)
    created = (await products_catalogue.reserve([(a["id"], 1)], "r-7")).json()
    client, service = products_catalogue.client, products_catalogue.tokens.service()
    read = await client.get("/internal/reservations/r-7", headers=service)
    assert read.status_code == 200 and read.json() == created
    missing = await client.get("/internal/reservations/r-404", headers=service)
    assert missing.status_code == 404 and missing.json()["code"] == "reservation_not_found"


async def test_reservation_after_restock_succeeds(products_catalogue: Catalogue) -> None:
    a = await products_catalogue.product(stock=1)
    assert (await products_catalogue.reserve([(a["id"], 2)])).status_code == 409
    await products_catalogue.client.post(
        f"/products/{a['id']}/stock-adjustments",
        json={"delta": 1, "reason": "delivery"},
        headers=products_catalogue.tokens.admin(),
    )
    assert (await products_catalogue.reserve([(a["id"], 2)])).status_code == 201
    assert (await products_catalogue.audit())["ok"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"reservation_id": "r", "items": []},
        {"reservation_id": "r", "items": [{"product_id": "p", "quantity": 0}]},
        {"reservation_id": "r", "items": [{"product_id": "p", "quantity": 1001}]},
        {"reservation_id": "r", "items": [{"product_id": "p", "quantity": 1.5}]},
        {"reservation_id": "r", "items": [{"product_id": "p", "quantity": "2"}]},
        {"reservation_id": "r", "items": [{"product_id": "p"}]},
        {"reservation_id": "", "items": [{"product_id": "p", "quantity": 1}]},
        {"reservation_id": "has space", "items": [{"product_id": "p", "quantity": 1}]},
        {"reservation_id": "r" * 65, "items": [{"product_id": "p", "quantity": 1}]},
        {"items": [{"product_id": "p", "quantity": 1}]},
        {"reservation_id": "r", "items": [{"product_id": "p", "quantity": 1}], "ttl_seconds": 0},
        {
            "reservation_id": "r",
            "items": [{"product_id": "p", "quantity": 1}],
            "ttl_seconds": 86_401,
        },
        {"reservation_id": "r", "items": [{"product_id": "p", "quantity": 1, "price": 1}]},
        # A committed reservation never expires: a TTL with it is a contradiction.
        {
            "reservation_id": "r",
            "items": [{"product_id": "p", "quantity": 1}],
            "commit": True,
            "ttl_seconds": 60,
        },
        {"reservation_id": "r", "items": [{"product_id": "p", "quantity": 1}], "commit": "yes"},
        {
            "reservation_id": "r",
            "items": [{"product_id": f"p{i}", "quantity": 1} for i in range(101)],
        },
    ],
)
async def test_invalid_reservation_bodies_are_422(
    products_client: httpx.AsyncClient, products_tokens: Tokens, body: dict[str, Any]
) -> None:
    response = await products_client.post(
        "/internal/reservations", json=body, headers=products_tokens.service()
    )
    assert response.status_code == 422, body
    assert response.json()["code"] == "validation_error"


async def test_malformed_json_is_400(
    products_client: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    response = await products_client.post(
        "/internal/reservations",
        content=b"{not json",
        headers={**products_tokens.service(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


MAX_MONEY = 10**15


async def test_a_reservation_worth_more_than_any_amount_holds_nothing(
    products_catalogue: Catalogue,
) -> None:
    # Ten products at the highest price, 1000 of each: 10^19, past a signed 64-bit total.
    dear = [await products_catalogue.product(price=MAX_MONEY, stock=1000) for _ in range(10)]
    response = await products_catalogue.reserve([(p["id"], 1000) for p in dear], "too-dear")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "reservation_total_too_large"
    assert problem["limit"] == MAX_MONEY
    assert [await products_catalogue.stock(p["id"]) for p in dear] == [1000] * 10
    found = await products_catalogue.client.get(
        "/internal/reservations/too-dear", headers=products_catalogue.tokens.service()
    )
    assert found.status_code == 404
    assert (await products_catalogue.audit())["ok"] is True

    # One unit over the limit is refused; the limit itself is held.
    two = await products_catalogue.reserve([(dear[0]["id"], 2)])
    assert two.status_code == 422 and two.json()["code"] == "reservation_total_too_large"
    one = await products_catalogue.reserve([(dear[0]["id"], 1)])
    assert one.status_code == 201, one.text
