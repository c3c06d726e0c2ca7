"""Product CRUD, ETags, archiving and stock adjustments through the ASGI app."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from products_support import Catalogue, Clock, Tokens

from pasar_kit.db import Database
from pasar_products.catalogue import versions_matching

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_create_returns_the_product_with_location_and_etag(
    products_client: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    body = {
        "sku": "kopi-gayo-250",
        "name": "  Kopi Gayo 250 g ",
        "description": "Arabika",
        "price": 8_500_000,
        "stock": 12,
        "category": "Makanan & Minuman",
        "image_url": "https://img.example/kopi.jpg",
    }
    response = await products_client.post("/products", json=body, headers=products_tokens.admin())
    assert response.status_code == 201, response.text
    product = response.json()
    assert response.headers["Location"] == f"/products/{product['id']}"
    assert response.headers["ETag"]
    assert product["sku"] == "KOPI-GAYO-250"  # one spelling per SKU
    assert product["name"] == "Kopi Gayo 250 g"
    assert product["currency"] == "IDR"
    assert product["active"] is True
    assert {k: product[k] for k in ("price", "stock", "category", "image_url", "description")} == {
        "price": 8_500_000,
        "stock": 12,
        "category": "Makanan & Minuman",
        "image_url": "https://img.example/kopi.jpg",
        "description": "Arabika",
    }
    assert set(product) == {
        "id", "sku", "name", "description", "price", "currency", "stock", "category",
        "image_url", "images", "active", "created_at", "updated_at",
    }  # fmt: skip
    assert product["images"] == []
    assert RFC3339_UTC.match(product["created_at"]) and RFC3339_UTC.match(product["updated_at"])

    read = await products_client.get(f"/products/{product['id']}")
    assert read.status_code == 200
    assert read.json() == product
    assert read.headers["ETag"] == response.headers["ETag"]


async def test_duplicate_sku_is_409_sku_taken_whatever_its_case(
    products_catalogue: Catalogue,
) -> None:
    await products_catalogue.product(sku="TEH-01")
    response = await products_catalogue.client.post(
        "/products",
        json={"sku": "teh-01", "name": "Teh", "price": 1, "category": "X"},
        headers=products_catalogue.tokens.admin(),
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "sku_taken"


@pytest.mark.parametrize(
    "change",
    [
        {"price": -1},
        {"stock": -1},
        {"price": 1.5},
        {"price": "100"},
        {"name": ""},
        {"name": "x" * 201},
        {"sku": ""},
        {"sku": "has space"},
        {"category": ""},
        {"image_url": "javascript:alert(1)"},
        {"unexpected": True},
    ],
)
async def test_invalid_product_bodies_are_422(
    products_client: httpx.AsyncClient, products_tokens: Tokens, change: dict[str, Any]
) -> None:
    body = {"sku": "OK-1", "name": "Ok", "price": 100, "stock": 1, "category": "C", **change}
    response = await products_client.post("/products", json=body, headers=products_tokens.admin())
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error" and problem["errors"]


async def test_missing_name_is_422(
    products_client: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    body = {"sku": "OK-2", "price": 100, "category": "C"}
    response = await products_client.post("/products", json=body, headers=products_tokens.admin())
    assert response.status_code == 422


async def test_unknown_product_is_404(products_client: httpx.AsyncClient) -> None:
    response = await products_client.get(f"/products/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["code"] == "product_not_found"


async def test_patch_changes_only_the_given_fields_and_moves_the_etag(
    products_catalogue: Catalogue,
) -> None:
    product = await products_catalogue.product(description="old", image_url="https://a.example/1")
    client, admin = products_catalogue.client, products_catalogue.tokens.admin()
    before = await client.get(f"/products/{product['id']}")

    response = await client.patch(
        f"/products/{product['id']}",
        json={"price": 2_000_000, "image_url": None},
        headers={**admin, "If-Match": before.headers["ETag"]},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["price"] == 2_000_000
    assert updated["image_url"] is None
    assert updated["description"] == "old" and updated["name"] == product["name"]
    assert response.headers["ETag"] != before.headers["ETag"]
    assert updated["updated_at"] >= product["updated_at"]

    again = await client.get(f"/products/{product['id']}")
    assert again.headers["ETag"] == response.headers["ETag"]


async def test_patch_with_a_stale_etag_is_412_and_changes_nothing(
    products_catalogue: Catalogue,
) -> None:
    product = await products_catalogue.product()
    client, admin = products_catalogue.client, products_catalogue.tokens.admin()
    stale = (await client.get(f"/products/{product['id']}")).headers["ETag"]
    first = await client.patch(
        f"/products/{product['id']}", json={"name": "First"}, headers={**admin, "If-Match": stale}
    )
    assert first.status_code == 200

    second = await client.patch(
        f"/products/{product['id']}", json={"name": "Second"}, headers={**admin, "If-Match": stale}
    )
    assert second.status_code == 412
    assert second.json()["code"] == "precondition_failed"
    assert (await client.get(f"/products/{product['id']}")).json()["name"] == "First"

    weak = await client.patch(
        f"/products/{product['id']}",
        json={"name": "Third"},
        headers={**admin, "If-Match": "W/" + first.headers["ETag"]},
    )
    assert weak.status_code == 412  # If-Match compares strongly

    listed = await client.patch(
        f"/products/{product['id']}",
        json={"name": "Fourth"},
        headers={**admin, "If-Match": f'"nope", {first.headers["ETag"]}'},
    )
    assert listed.status_code == 200
    star = await client.patch(
        f"/products/{product['id']}", json={"name": "Fifth"}, headers={**admin, "If-Match": "*"}
    )
    assert star.status_code == 200


async def test_patch_cannot_set_stock_or_null_a_required_field(
    products_catalogue: Catalogue,
) -> None:
    product = await products_catalogue.product()
    client, admin = products_catalogue.client, products_catalogue.tokens.admin()
    for body in ({"stock": 5}, {"name": None}, {"price": None}, {"price": -5}, {"active": 0}):
        response = await client.patch(f"/products/{product['id']}", json=body, headers=admin)
        assert response.status_code == 422, body


async def test_patch_to_a_taken_sku_is_409(products_catalogue: Catalogue) -> None:
    await products_catalogue.product(sku="TAKEN-1")
    product = await products_catalogue.product()
    response = await products_catalogue.client.patch(
        f"/products/{product['id']}",
        json={"sku": "taken-1"},
        headers=products_catalogue.tokens.admin(),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "sku_taken"


async def test_patch_unknown_product_is_404(
    products_client: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    response = await products_client.patch(
        f"/products/{uuid.uuid4()}", json={"name": "x"}, headers=products_tokens.admin()
    )
    assert response.status_code == 404


async def test_empty_patch_is_a_no_op_that_still_checks_the_etag(
    products_catalogue: Catalogue,
) -> None:
    product = await products_catalogue.product()
    client, admin = products_catalogue.client, products_catalogue.tokens.admin()
    response = await client.patch(f"/products/{product['id']}", json={}, headers=admin)
    assert response.status_code == 200
    assert response.json() == product
    stale = await client.patch(
        f"/products/{product['id']}", json={}, headers={**admin, "If-Match": '"v999"'}
    )
    assert stale.status_code == 412


async def test_delete_archives_hides_from_list_and_keeps_it_readable(
    products_catalogue: Catalogue,
) -> None:
    product = await products_catalogue.product(category="Archived soon")
    client, admin = products_catalogue.client, products_catalogue.tokens.admin()
    response = await client.delete(f"/products/{product['id']}", headers=admin)
    assert response.status_code == 204
    assert response.content == b""

    read = await client.get(f"/products/{product['id']}")
    assert read.status_code == 200 and read.json()["active"] is False
    listed = (await client.get("/products")).json()
    assert product["id"] not in [p["id"] for p in listed["items"]]
    assert listed["total"] == 0
    categories = (await client.get("/categories")).json()
    assert "Archived soon" not in [c["name"] for c in categories]

    assert (await client.delete(f"/products/{product['id']}", headers=admin)).status_code == 204
    missing = await client.delete(f"/products/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404

    restored = await client.patch(
        f"/products/{product['id']}", json={"active": True}, headers=admin
    )
    assert restored.status_code == 200 and restored.json()["active"] is True
    assert (await client.get("/products")).json()["total"] == 1


async def test_delete_honours_if_match(products_catalogue: Catalogue) -> None:
    product = await products_catalogue.product()
    client, admin = products_catalogue.client, products_catalogue.tokens.admin()
    stale = await client.delete(f"/products/{product['id']}", headers={**admin, "If-Match": '"v0"'})
    assert stale.status_code == 412
    assert (await client.get(f"/products/{product['id']}")).json()["active"] is True


async def test_stock_adjustments_restock_and_write_off_never_below_zero(
    products_catalogue: Catalogue,
) -> None:
    product = await products_catalogue.product(stock=5)
    client, admin = products_catalogue.client, products_catalogue.tokens.admin()
    url = f"/products/{product['id']}/stock-adjustments"

    restocked = await client.post(url, json={"delta": 7, "reason": "delivery"}, headers=admin)
    assert restocked.status_code == 200, restocked.text
    assert restocked.json()["stock"] == 12
    assert restocked.headers["ETag"]

    written_off = await client.post(url, json={"delta": -12, "reason": "flood"}, headers=admin)
    assert written_off.status_code == 200 and written_off.json()["stock"] == 0

    below = await client.post(url, json={"delta": -1, "reason": "oops"}, headers=admin)
    assert below.status_code == 409
    assert below.json()["code"] == "insufficient_stock"
    assert await products_catalogue.stock(product["id"]) == 0
    assert (await products_catalogue.audit())["ok"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"delta": 0, "reason": "nothing"},
        {"delta": 1, "reason": ""},
        {"delta": 1, "reason": "x" * 201},
        {"delta": 1},
        {"delta": 1.5, "reason": "half"},
        {"delta": 1, "reason": "r", "by": "someone"},
    ],
)
async def test_invalid_stock_adjustments_are_422(
    products_catalogue: Catalogue, body: dict[str, Any]
) -> None:
    product = await products_catalogue.product()
    response = await products_catalogue.client.post(
        f"/products/{product['id']}/stock-adjustments",
        json=body,
        headers=products_catalogue.tokens.admin(),
    )
    assert response.status_code == 422


async def test_stock_adjustment_of_unknown_product_is_404(
    products_client: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    response = await products_client.post(
        f"/products/{uuid.uuid4()}/stock-adjustments",
        json={"delta": 1, "reason": "r"},
        headers=products_tokens.admin(),
    )
    assert response.status_code == 404


async def test_adjustments_are_recorded_with_who_and_when(
    products_catalogue: Catalogue, products_db: Database, products_clock: Clock
) -> None:
    from sqlalchemy import select

    from pasar_products.tables import stock_adjustments

    admin_id = str(uuid.uuid4())
    product = await products_catalogue.product(stock=3)
    await products_catalogue.client.post(
        f"/products/{product['id']}/stock-adjustments",
        json={"delta": 4, "reason": "delivery"},
        headers=products_catalogue.tokens.admin(admin_id),
    )
    async with products_db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    stock_adjustments.c.delta,
                    stock_adjustments.c.reason,
                    stock_adjustments.c.by,
                    stock_adjustments.c.at,
                )
                .where(stock_adjustments.c.product_id == product["id"])
                .order_by(stock_adjustments.c.delta)
            )
        ).all()
    assert [(r.delta, r.reason) for r in rows] == [(3, "initial"), (4, "delivery")]
    assert rows[1].by == admin_id
    assert rows[1].at == products_clock.now


async def test_concurrent_write_offs_never_take_stock_below_zero(
    products_catalogue: Catalogue,
) -> None:
    import asyncio

    product = await products_catalogue.product(stock=10)
    client, admin = products_catalogue.client, products_catalogue.tokens.admin()
    url = f"/products/{product['id']}/stock-adjustments"
    responses = await asyncio.gather(
        *(
            client.post(url, json={"delta": -1, "reason": "shrink"}, headers=admin)
            for _ in range(25)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 10 + [409] * 15
    assert await products_catalogue.stock(product["id"]) == 0
    assert (await products_catalogue.audit())["ok"] is True


# Tags a client might send that this service never issued: each must be a plain 412,
# never a 500 (a 40-digit version overflowed the database) nor a false match (a non-ASCII
# digit such as the Arabic-Indic one was read as 1 by int()).
FOREIGN_TAGS = [
    '"v' + "9" * 40 + '"',
    '"v2147483648"',  # one past the version column's range
    '"v²"',
    '"v\u0661"',  # Arabic-Indic one: the product is at version 1, yet this is not its tag
    '"v01"',
    '"v-1"',
    '"v 1"',
    'W/"v1"',
    '"v1',
    "v1",
    "",
    "*,",
]


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
@pytest.mark.parametrize("tag", FOREIGN_TAGS)
async def test_if_match_with_a_tag_never_issued_is_412(
    products_catalogue: Catalogue, method: str, tag: str
) -> None:
    product = await products_catalogue.product()
    client, admin = products_catalogue.client, products_catalogue.tokens.admin()
    assert (await client.get(f"/products/{product['id']}")).headers["ETag"] == '"v1"'
    body = {"name": "Changed"} if method == "PATCH" else None

    # Sent as UTF-8 bytes: a client may put any octet in a header.
    raw_headers = {k.encode(): v.encode() for k, v in admin.items()} | {b"If-Match": tag.encode()}
    response = await client.request(
        method, f"/products/{product['id']}", headers=raw_headers, json=body
    )

    assert response.status_code == 412, response.text
    assert response.json()["code"] == "precondition_failed"
    after = (await client.get(f"/products/{product['id']}")).json()
    assert after["name"] == product["name"] and after["active"] is True
    # The same header on a product that does not exist is still a plain 404.
    missing = await client.request(
        method, f"/products/{uuid.uuid4()}", headers=raw_headers, json=body
    )
    assert missing.status_code == 404, missing.text


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
@pytest.mark.parametrize(
    "tag", ['"v1"', '"v1", W/"v1"', 'W/"v9", "v1"', '"x", "v' + "9" * 40 + '", "v1"', "*", " * "]
)
async def test_if_match_lists_and_star_match_the_current_tag(
    products_catalogue: Catalogue, method: str, tag: str
) -> None:
    product = await products_catalogue.product()
    client, admin = products_catalogue.client, products_catalogue.tokens.admin()
    body = {"name": "Changed"} if method == "PATCH" else None
    response = await client.request(
        method, f"/products/{product['id']}", headers={**admin, "If-Match": tag}, json=body
    )
    assert response.status_code in (200, 204), response.text


def test_if_match_reads_ascii_digits_only() -> None:
    # Over HTTP such a header arrives as Latin-1 text, but the rule must not depend on
    # that: int() reads the Arabic-Indic one as 1 and str.isdigit() takes "²".
    assert versions_matching('"v\u0661"') == frozenset()
    assert versions_matching('"v\u00b2"') == frozenset()
    assert versions_matching('"v12", W/"v3", "v' + "9" * 40 + '"') == frozenset({12})
    assert versions_matching(" * ") is None and versions_matching(None) is None
