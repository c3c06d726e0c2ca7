"""Admin: GET /users and PATCH /users/{id}; ensure_admin."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from testdata import PASSWORD
from users_support import UsersApi

from pasar_kit.db import utcnow
from pasar_users.accounts import ensure_admin


async def test_list_users_with_search_and_pagination(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    admin = await users_api.account("boss@example.com", admin=True)
    await users_api.register("budi@example.com", full_name="Budi Santoso")
    await users_api.register("citra@example.com", full_name="Citra Lestari")
    await users_api.register("santo@example.org", full_name="Dian")

    everyone = (await users_client.get("/users", headers=admin.headers)).json()
    assert everyone["total"] == 4 and everyone["limit"] == 20 and everyone["offset"] == 0
    assert everyone["items"][0]["email"] == "boss@example.com"  # oldest first
    assert {"id", "email", "full_name", "role", "active", "created_at"} <= set(everyone["items"][0])
    assert "password_hash" not in everyone["items"][0]

    by_name = (
        await users_client.get("/users", params={"q": "SANTO"}, headers=admin.headers)
    ).json()
    assert {u["email"] for u in by_name["items"]} == {"budi@example.com", "santo@example.org"}
    by_email = (
        await users_client.get("/users", params={"q": "example.org"}, headers=admin.headers)
    ).json()
    assert [u["email"] for u in by_email["items"]] == ["santo@example.org"]
    wildcard = (await users_client.get("/users", params={"q": "%"}, headers=admin.headers)).json()
    assert wildcard["total"] == 0  # LIKE wildcards are matched literally

    page = (
        await users_client.get("/users", params={"limit": 2, "offset": 2}, headers=admin.headers)
    ).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    assert [u["email"] for u in page["items"]] == ["citra@example.com", "santo@example.org"]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"offset": 10**25}]
)
async def test_list_users_pagination_bounds(
    users_client: httpx.AsyncClient, users_api: UsersApi, params: dict[str, int]
) -> None:
    admin = await users_api.account(admin=True)
    assert (
        await users_client.get("/users", params=params, headers=admin.headers)
    ).status_code == 422


async def test_promote_and_demote(users_client: httpx.AsyncClient, users_api: UsersApi) -> None:
    admin = await users_api.account(admin=True)
    customer = await users_api.account()
    promoted = await users_client.patch(
        f"/users/{customer.id}", json={"role": "admin"}, headers=admin.headers
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "admin"
    # A fresh login carries the new role.
    fresh = (await users_api.login(customer.email)).json()["access_token"]
    listed = await users_client.get("/users", headers={"Authorization": f"Bearer {fresh}"})
    assert listed.status_code == 200
    demoted = await users_client.patch(
        f"/users/{customer.id}", json={"role": "customer"}, headers=admin.headers
    )
    assert demoted.json()["role"] == "customer"
    # The still-valid admin token of the demoted user no longer opens admin routes: it
    # was issued before the role change, so it is revoked (401; a refresh gives a
    # customer's token, which is 403 here).
    stale = await users_client.get("/users", headers={"Authorization": f"Bearer {fresh}"})
    assert stale.status_code == 401


async def test_deactivation_blocks_login_refresh_and_profile(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    admin = await users_api.account(admin=True)
    customer = await users_api.account()
    response = await users_client.patch(
        f"/users/{customer.id}", json={"active": False}, headers=admin.headers
    )
    assert response.status_code == 200 and response.json()["active"] is False

    login = await users_api.login(customer.email)
    assert login.status_code == 400 and login.json()["error"] == "invalid_grant"
    refresh = await users_client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": customer.refresh_token}
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    me = await users_client.get("/users/me", headers=customer.headers)
    assert me.status_code == 403 and me.json()["code"] == "account_inactive"

    service = await users_api.service_token()
    internal = await users_client.get(
        f"/internal/users/{customer.id}", headers={"Authorization": f"Bearer {service}"}
    )
    assert internal.json()["active"] is False

    # Reactivated: logs in again, but the old refresh tokens stay dead.
    await users_client.patch(f"/users/{customer.id}", json={"active": True}, headers=admin.headers)
    assert (await users_api.login(customer.email)).status_code == 200
    old = await users_client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": customer.refresh_token}
    )
    assert old.status_code == 400


async def test_unknown_user_is_404(users_client: httpx.AsyncClient, users_api: UsersApi) -> None:
    admin = await users_api.account(admin=True)
    response = await users_client.patch(
        "/users/00000000-0000-0000-0000-000000000000", json={"active": False}, headers=admin.headers
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body", [{"role": "root"}, {"active": "sometimes"}, {"email": "x@example.com"}]
)
async def test_invalid_admin_patch_is_422(
    users_client: httpx.AsyncClient, users_api: UsersApi, body: dict[str, Any]
) -> None:
    admin = await users_api.account(admin=True)
    customer = await users_api.account()
    response = await users_client.patch(f"/users/{customer.id}", json=body, headers=admin.headers)
    assert response.status_code == 422


@pytest.mark.parametrize("body", [{"role": "customer"}, {"active": False}])
async def test_the_last_active_admin_stays(
    users_client: httpx.AsyncClient, users_api: UsersApi, body: dict[str, Any]
) -> None:
    admin = await users_api.account(admin=True)
    response = await users_client.patch(f"/users/{admin.id}", json=body, headers=admin.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "last_admin"
    assert (await users_client.get("/users", headers=admin.headers)).status_code == 200


async def test_an_admin_may_step_down_when_another_remains(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    first = await users_api.account(admin=True)
    await users_api.account(admin=True)
    response = await users_client.patch(
        f"/users/{first.id}", json={"role": "customer"}, headers=first.headers
    )
    assert response.status_code == 200
    assert (await users_client.get("/users", headers=first.headers)).status_code == 401


async def test_ensure_admin_creates_then_promotes_and_resets(
    users_app: FastAPI, users_api: UsersApi
) -> None:
    db, passwords = users_app.state.db, users_app.state.runtime.passwords
    created = await ensure_admin(
        db=db,
        email=" Admin@Example.com",
        password="first password",
        passwords=passwords,
        clock=utcnow,
    )
    assert (await users_api.login("admin@example.com", "first password")).status_code == 200
    again = await ensure_admin(
        db=db,
        email="admin@example.com",
        password="second password",
        passwords=passwords,
        clock=utcnow,
    )
    assert again == created
    assert (await users_api.login("admin@example.com", "first password")).status_code == 400
    assert (await users_api.login("admin@example.com", "second password")).status_code == 200

    customer = await users_api.register("shop@example.com")
    promoted = await ensure_admin(
        db=db,
        email="shop@example.com",
        password="owner password",
        passwords=passwords,
        clock=utcnow,
    )
    assert promoted == customer["id"]
    response = await users_api.login("shop@example.com", "owner password")
    from jwt import decode

    claims = decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["role"] == "admin"


async def test_ensure_admin_reactivates(users_app: FastAPI, users_api: UsersApi) -> None:
    from sqlalchemy import update

    from pasar_users.tables import users

    db, passwords = users_app.state.db, users_app.state.runtime.passwords
    user_id = await ensure_admin(
        db=db, email="boss@example.com", password=PASSWORD, passwords=passwords, clock=utcnow
    )
    async with db.write() as conn:
        await conn.execute(update(users).where(users.c.id == user_id).values(active=False))
    assert (await users_api.login("boss@example.com")).status_code == 400
    await ensure_admin(
        db=db, email="boss@example.com", password=PASSWORD, passwords=passwords, clock=utcnow
    )
    assert (await users_api.login("boss@example.com")).status_code == 200
