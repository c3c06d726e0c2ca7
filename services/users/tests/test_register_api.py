"""POST /auth/register."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from users_support import UsersApi


def body(**overrides: Any) -> dict[str, Any]:
    return {"email": "ayu@example.com", "password": "long enough", "full_name": "Ayu", **overrides}


async def test_register_creates_a_customer(users_client: httpx.AsyncClient) -> None:
    response = await users_client.post("/auth/register", json=body())
    assert response.status_code == 201
    user = response.json()
    assert user["email"] == "ayu@example.com"
    assert user["role"] == "customer"
    assert user["active"] is True
    assert user["phone"] is None and user["address"] is None
    assert user["created_at"].endswith("Z")
    assert "password" not in response.text and "argon2" not in response.text


async def test_email_is_normalised(users_client: httpx.AsyncClient) -> None:
    response = await users_client.post(
        "/auth/register", json=body(email="  Ayu.Putri@Example.COM ")
    )
    assert response.status_code == 201
    assert response.json()["email"] == "ayu.putri@example.com"


@pytest.mark.parametrize("variant", ["ayu@example.com", "AYU@EXAMPLE.COM", " Ayu@example.com"])
async def test_email_is_unique_case_insensitively(
    users_client: httpx.AsyncClient, variant: str
) -> None:
    assert (await users_client.post("/auth/register", json=body())).status_code == 201
    response = await users_client.post("/auth/register", json=body(email=variant))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "email_taken"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password": "short12"}, "password"),
        ({"password": "x" * 1025}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@" + "b" * 260 + ".com"}, "email"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "   "}, "full_name"),
        ({"full_name": "n" * 201}, "full_name"),
        ({"role": "admin"}, "role"),  # unknown fields are refused, not ignored
    ],
)
async def test_invalid_registrations_are_422(
    users_client: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    response = await users_client.post("/auth/register", json=body(**overrides))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert any(field in error["loc"] for error in problem["errors"])


@pytest.mark.parametrize("missing", ["email", "password", "full_name"])
async def test_missing_fields_are_422(users_client: httpx.AsyncClient, missing: str) -> None:
    payload = body()
    del payload[missing]
    assert (await users_client.post("/auth/register", json=payload)).status_code == 422


async def test_long_password_is_accepted_and_not_truncated(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    password = "p" * 1024
    response = await users_client.post("/auth/register", json=body(password=password))
    assert response.status_code == 201
    assert (await users_api.login("ayu@example.com", password)).status_code == 200
    assert (await users_api.login("ayu@example.com", password[:-1])).status_code == 400


async def test_malformed_json_is_a_problem(users_client: httpx.AsyncClient) -> None:
    response = await users_client.post(
        "/auth/register", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
