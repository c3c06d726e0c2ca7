"""Odd input never reaches the database as an error: no 500 for any string."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

ODD = ["\x00", "a\x00b", "\ud7ff", "é", "💥", "%", "_", "' OR '1'='1", "\\", " "]


@pytest.mark.parametrize("text", ODD)
async def test_odd_text_in_paths_and_queries(
    products_client: httpx.AsyncClient, products_tokens: Any, text: str
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
    products_client: httpx.AsyncClient, products_tokens: Any, text: str
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
