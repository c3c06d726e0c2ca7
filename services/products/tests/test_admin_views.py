"""Admin reads beyond the contract: a product's stock ledger and the low-stock list."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from products_support import Catalogue, Clock, Tokens

from pasar_kit.db import Database
from pasar_products.seed import seed_demo_catalogue
from pasar_products.storage import LocalImageStore

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def _ledger(catalogue: Catalogue, product_id: str, **params: Any) -> dict[str, Any]:
    response = await catalogue.client.get(
        f"/products/{product_id}/stock-adjustments",
        params=params,
        headers=catalogue.tokens.admin(),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _adjust(
    catalogue: Catalogue, product_id: str, delta: int, reason: str, admin: str
) -> None:
    response = await catalogue.client.post(
        f"/products/{product_id}/stock-adjustments",
        json={"delta": delta, "reason": reason},
        headers=catalogue.tokens.admin(admin),
    )
    assert response.status_code == 200, response.text


async def test_the_ledger_lists_every_entry_newest_first(
    products_catalogue: Catalogue, products_clock: Clock
) -> None:
    creator, stocker = str(uuid.uuid4()), str(uuid.uuid4())
    created_at = products_clock.now
    response = await products_catalogue.client.post(
        "/products",
        json={"sku": "LEDGER-1", "name": "Ledger", "price": 100, "stock": 3, "category": "C"},
        headers=products_catalogue.tokens.admin(creator),
    )
    assert response.status_code == 201, response.text
    product_id = response.json()["id"]
    products_clock.advance(60)
    delivered_at = products_clock.now
    await _adjust(products_catalogue, product_id, 4, "delivery", stocker)
    products_clock.advance(0.25)
    damaged_at = products_clock.now
    await _adjust(products_catalogue, product_id, -2, "damaged", stocker)
    other = await products_catalogue.product(stock=8)
    await _adjust(products_catalogue, other["id"], 1, "elsewhere", stocker)

    ledger = await _ledger(products_catalogue, product_id)

    assert (ledger["total"], ledger["limit"], ledger["offset"]) == (3, 20, 0)
    items = ledger["items"]
    assert [(e["delta"], e["reason"], e["by"]) for e in items] == [
        (-2, "damaged", stocker),
        (4, "delivery", stocker),
        (3, "initial", creator),
    ]
    assert all(set(e) == {"id", "delta", "reason", "by", "at"} for e in items)
    assert all(RFC3339_UTC.match(e["at"]) for e in items)
    assert [datetime.fromisoformat(e["at"]) for e in items] == [
        damaged_at,
        delivered_at,
        created_at,
    ]
    assert len({e["id"] for e in items}) == 3
    assert sum(e["delta"] for e in items) == await products_catalogue.stock(product_id)

    page = await _ledger(products_catalogue, product_id, limit=2, offset=1)
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [e["reason"] for e in page["items"]] == ["delivery", "initial"]
    beyond = await _ledger(products_catalogue, product_id, offset=3)
    assert beyond["items"] == [] and beyond["total"] == 3


async def test_entries_of_the_same_instant_keep_one_order_initial_last(
    products_catalogue: Catalogue,
) -> None:
    # The clock does not move: every entry has the same timestamp.
    product = await products_catalogue.product(stock=1)
    admin = str(uuid.uuid4())
    for n in range(5):
        await _adjust(products_catalogue, product["id"], 1, f"restock {n}", admin)

    full = (await _ledger(products_catalogue, product["id"]))["items"]
    assert len(full) == 6
    assert full[-1]["reason"] == "initial"
    later = [e["id"] for e in full[:-1]]
    assert later == sorted(later, reverse=True)  # ties broken by id, descending
    paged = [
        e
        for offset in range(0, 6, 2)
        for e in (await _ledger(products_catalogue, product["id"], limit=2, offset=offset))["items"]
    ]
    assert paged == full  # pages neither overlap nor skip


async def test_the_seeded_initial_entries_are_in_the_ledger(
    products_catalogue: Catalogue, products_db: Database, products_store: LocalImageStore
) -> None:
    await seed_demo_catalogue(db=products_db, store=products_store)
    listed = await products_catalogue.client.get("/products", params={"limit": 1})
    product = listed.json()["items"][0]

    ledger = await _ledger(products_catalogue, product["id"])

    assert ledger["total"] == 1
    [entry] = ledger["items"]
    assert entry["reason"] == "initial" and entry["by"] is None
    assert entry["delta"] == product["stock"]


async def test_the_ledger_of_an_archived_product_is_still_readable(
    products_catalogue: Catalogue,
) -> None:
    product = await products_catalogue.product(stock=2)
    archived = await products_catalogue.client.delete(
        f"/products/{product['id']}", headers=products_catalogue.tokens.admin()
    )
    assert archived.status_code == 204
    assert (await _ledger(products_catalogue, product["id"]))["total"] == 1


async def test_the_ledger_of_an_unknown_product_is_404(
    products_client: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    response = await products_client.get(
        f"/products/{uuid.uuid4()}/stock-adjustments", headers=products_tokens.admin()
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "product_not_found"


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}])
async def test_ledger_paging_is_validated(
    products_catalogue: Catalogue, params: dict[str, Any]
) -> None:
    product = await products_catalogue.product()
    response = await products_catalogue.client.get(
        f"/products/{product['id']}/stock-adjustments",
        params=params,
        headers=products_catalogue.tokens.admin(),
    )
    assert response.status_code == 422, params
    assert response.json()["code"] == "validation_error"


async def _low(client: httpx.AsyncClient, tokens: Tokens, **params: Any) -> dict[str, Any]:
    response = await client.get("/admin/low-stock", params=params, headers=tokens.admin())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _names(page: dict[str, Any]) -> list[str]:
    return [p["name"] for p in page["items"]]


@pytest.fixture
async def stocked(products_catalogue: Catalogue) -> Any:
    make = products_catalogue.product
    shop = {
        name: await make(name=name, stock=stock)
        for name, stock in [
            ("Beta", 5),
            ("Zeta", 0),
            ("Gamma", 6),
            ("Alpha", 5),
            ("Delta", 2),
            ("Omega", 500),
        ]
    }
    gone = await make(name="Archived", stock=0)
    response = await products_catalogue.client.delete(
        f"/products/{gone['id']}", headers=products_catalogue.tokens.admin()
    )
    assert response.status_code == 204
    return shop


async def test_low_stock_lists_active_products_emptiest_first(
    stocked: dict[str, Any], products_client: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    page = await _low(products_client, products_tokens)

    assert (page["total"], page["limit"], page["offset"]) == (4, 20, 0)
    assert _names(page) == ["Zeta", "Delta", "Alpha", "Beta"]
    assert [p["stock"] for p in page["items"]] == [0, 2, 5, 5]
    assert page["items"][0] == stocked["Zeta"]  # the public product, as GET /products shows it


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0, ["Zeta"]),
        (1, ["Zeta"]),
        (4, ["Zeta", "Delta"]),
        (6, ["Zeta", "Delta", "Alpha", "Beta", "Gamma"]),
        (10**9, ["Zeta", "Delta", "Alpha", "Beta", "Gamma", "Omega"]),
    ],
)
async def test_low_stock_threshold_is_inclusive(
    stocked: Any,
    products_client: httpx.AsyncClient,
    products_tokens: Tokens,
    threshold: int,
    expected: list[str],
) -> None:
    page = await _low(products_client, products_tokens, threshold=threshold)
    assert _names(page) == expected
    assert page["total"] == len(expected)


async def test_low_stock_pages_and_breaks_ties_by_id(
    stocked: Any, products_catalogue: Catalogue, products_tokens: Tokens
) -> None:
    twins = [await products_catalogue.product(name="Delta", stock=2) for _ in range(2)]
    client = products_catalogue.client

    page = await _low(client, products_tokens, limit=3, offset=1)

    assert page["total"] == 6 and (page["limit"], page["offset"]) == (3, 1)
    deltas = sorted([stocked["Delta"]["id"], *(t["id"] for t in twins)])
    assert [p["id"] for p in page["items"]] == deltas
    rest = await _low(client, products_tokens, limit=3, offset=4)
    assert _names(rest) == ["Alpha", "Beta"]


async def test_low_stock_follows_stock_moved_by_reservations(
    stocked: dict[str, Any], products_catalogue: Catalogue, products_tokens: Tokens
) -> None:
    reserved = await products_catalogue.reserve([(stocked["Gamma"]["id"], 4)])
    assert reserved.status_code == 201, reserved.text

    page = await _low(products_catalogue.client, products_tokens, threshold=2)

    assert _names(page) == ["Zeta", "Delta", "Gamma"]
    assert page["items"][2]["stock"] == 2


@pytest.mark.parametrize(
    "params",
    [
        {"threshold": -1},
        {"threshold": 10**9 + 1},
        {"threshold": "few"},
        {"threshold": 1.5},
        {"limit": 0},
        {"offset": -1},
    ],
)
async def test_low_stock_parameters_are_validated(
    products_client: httpx.AsyncClient, products_tokens: Tokens, params: dict[str, Any]
) -> None:
    response = await products_client.get(
        "/admin/low-stock", params=params, headers=products_tokens.admin()
    )
    assert response.status_code == 422, params
    assert response.json()["code"] == "validation_error"
