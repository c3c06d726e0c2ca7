"""Odd input never reaches the database as an error: each string gets its one right
answer (a NUL refused up front, anything else taken literally), never a 500."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest
from products_support import Catalogue, Tokens

ODD = ["\x00", "a\x00b", "\ud7ff", "é", "💥", "%", "_", "' OR '1'='1", "\\", " "]


def expected(text: str, status: int, code: str | None = None) -> tuple[int, str | None]:
    """A NUL is refused up front wherever it arrives; any other text gets the route's answer."""
    return (422, "invalid_characters") if "\x00" in text else (status, code)


@pytest.mark.parametrize("text", ODD)
async def test_odd_text_in_paths_and_queries(
    products_client: httpx.AsyncClient,
    products_catalogue: Catalogue,
    products_tokens: Tokens,
    text: str,
) -> None:
    # MariaDB's collation folds accents ("é" finds "e", as a shopper typing "cafe" expects),
    # so the plain product has no letter any odd text could fold to, its SKU included.
    plain = await products_catalogue.product(
        sku=f"K-{uuid.uuid4().int % 10**9}", name="Kopi", description="Robusta", category="Kopi"
    )
    holder = None  # the product whose name holds the text (none can hold a NUL)
    if "\x00" not in text:
        # A word of its own: search matches whole words (and the start of the last one).
        holder = await products_catalogue.product(name=f"Kopi {text} Toraja", category="Kopi")
    segment = quote(text, safe="")
    service = products_tokens.service()
    searched = await products_client.get("/products", params={"q": text})
    answers = [
        (searched, expected(text, 200)),
        (await products_client.get("/products", params={"category": text}), expected(text, 200)),
        (
            await products_client.get(f"/products/{segment}"),
            expected(text, 404, "product_not_found"),
        ),
        (
            await products_client.get(f"/internal/reservations/{segment}", headers=service),
            expected(text, 404, "reservation_not_found"),
        ),
        (
            await products_client.post(
                f"/internal/reservations/{segment}/release", headers=service
            ),
            expected(text, 404, "reservation_not_found"),
        ),
    ]
    for response, (status, code) in answers:
        assert response.status_code == status, (response.request.url, response.text)
        if code is not None:
            assert response.json()["code"] == code, response.text
    if holder is not None:
        # Searched for literally: no wildcard, quote or escape matches the plain "Kopi"
        # (whitespace is stripped, and a blank search lists everything).
        found = {p["name"] for p in searched.json()["items"]}
        assert found == ({holder["name"]} if text.strip() else {plain["name"], holder["name"]})


@pytest.mark.parametrize(
    ("text", "status", "code"),
    [("a\x00b", 422, "invalid_characters"), ("💥 Kopi", 201, None), ("é", 201, None)],
)
async def test_odd_text_in_bodies(
    products_client: httpx.AsyncClient,
    products_tokens: Tokens,
    text: str,
    status: int,
    code: str | None,
) -> None:
    created = await products_client.post(
        "/products",
        json={"sku": "ODD-1", "name": text, "description": text, "price": 1, "category": text},
        headers=products_tokens.admin(),
    )
    assert created.status_code == status, created.text
    if code is not None:
        assert created.json()["code"] == code, created.text
    else:
        stored = (await products_client.get(f"/products/{created.json()['id']}")).json()
        assert (stored["name"], stored["description"], stored["category"]) == (text, text, text)
    reserved = await products_client.post(
        "/internal/reservations",
        json={"reservation_id": "odd", "items": [{"product_id": text, "quantity": 1}]},
        headers=products_tokens.service(),
    )
    answer = (reserved.status_code, reserved.json()["code"])
    assert answer == expected(text, 422, "validation_error"), reserved.text


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
