"""Odd input never reaches the database as an error: no 500 for any string."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from products_support import Catalogue, Tokens

ODD = ["\x00", "a\x00b", "\ud7ff", "é", "💥", "%", "_", "' OR '1'='1", "\\", " "]


@pytest.mark.parametrize("text", ODD)
async def test_odd_text_in_paths_and_queries(
    products_client: httpx.AsyncClient, products_tokens: Tokens, text: str
) -> None:
    segment = quote(text, safe="")
    for response in (
        await products_client.get("/products", params={"q": text}),
        await products_client.get("/products", params={"category": text}),
        await products_client.get(f"/products/{segment}"),
        await products_client.get(
            f"/internal/reservations/{segment}", headers=products_tokens.service()
        ),
        await products_client.post(
            f"/internal/reservations/{segment}/release", headers=products_tokens.service()
        ),
    ):
        assert response.status_code < 500, (response.request.url, response.text)


@pytest.mark.parametrize("text", ["a\x00b", "💥 Kopi", "é"])
async def test_odd_text_in_bodies(
    products_client: httpx.AsyncClient, products_tokens: Tokens, text: str
) -> None:
    created = await products_client.post(
        "/products",
        json={"sku": "ODD-1", "name": text, "description": text, "price": 1, "category": text},
        headers=products_tokens.admin(),
    )
    assert created.status_code in (201, 422), created.text
    reserved = await products_client.post(
        "/internal/reservations",
        json={"reservation_id": "odd", "items": [{"product_id": text, "quantity": 1}]},
        headers=products_tokens.service(),
    )
    assert reserved.status_code == 422, reserved.text


# One rule for a product id wherever it arrives: 1..36 of A-Z a-z 0-9 and "-" (a UUID,
# or a short test id such as "nope").
NOT_PRODUCT_IDS = ["a" * 37, "a" * 10_000, "é", "a b", "a.b", "a_b", "\u0661\u0662\u0663", "+"]


@pytest.mark.parametrize("bad", NOT_PRODUCT_IDS)
async def test_a_path_id_outside_the_rule_is_404_without_echoing_it(
    products_client: httpx.AsyncClient, products_tokens: Tokens, bad: str
) -> None:
    admin = products_tokens.admin()
    path = f"/products/{quote(bad, safe='')}"
    for response in (
        await products_client.get(path),
        await products_client.patch(path, json={"name": "x"}, headers=admin),
        await products_client.delete(path, headers=admin),
        await products_client.post(
            f"{path}/stock-adjustments", json={"delta": 1, "reason": "r"}, headers=admin
        ),
        await products_client.get(f"{path}/stock-adjustments", headers=admin),
    ):
        assert response.status_code == 404, (response.request.url, response.text)
        assert response.json()["code"] == "product_not_found"
        assert bad not in response.json()["detail"]


@pytest.mark.parametrize("bad", ["a" * 65, "a" * 10_000, "-starts-with-dash", "é", "a b"])
async def test_a_reservation_path_id_outside_the_rule_is_404(
    products_client: httpx.AsyncClient, products_tokens: Tokens, bad: str
) -> None:
    service = products_tokens.service()
    path = f"/internal/reservations/{quote(bad, safe='')}"
    for response in (
        await products_client.get(path, headers=service),
        await products_client.post(f"{path}/commit", headers=service),
        await products_client.post(f"{path}/release", headers=service),
    ):
        assert response.status_code == 404, (response.request.url, response.text)
        assert response.json()["code"] == "reservation_not_found"
        assert bad not in response.json()["detail"]


@pytest.mark.parametrize("bad", ["a" * 37, "é", "a b", "a.b", "\u0661\u0662\u0663", ""])
async def test_a_reserved_product_id_outside_the_rule_is_a_field_error(
    products_catalogue: Catalogue, bad: str
) -> None:
    good = await products_catalogue.product(stock=5)
    response = await products_catalogue.reserve([(good["id"], 1), (bad, 1)])
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert [e["loc"] for e in problem["errors"]] == [["body", "items", 1, "product_id"]]
    assert await products_catalogue.stock(good["id"]) == 5
