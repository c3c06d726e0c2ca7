"""GET /internal/token-revocations and the rule behind it: a deactivation, a role change
or a password change voids every access token issued before it, everywhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from testdata import PASSWORD
from users_support import UsersApi

from pasar_kit.db import utcnow
from pasar_users.tables import users


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def feed(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get(
        "/internal/token-revocations", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def revoked(body: dict[str, Any]) -> dict[str, float]:
    return {entry["user_id"]: entry["not_before"] for entry in body["revocations"]}


async def test_changes_that_revoke_are_listed_with_their_instant(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    admin = await users_api.account(admin=True)
    service = await users_api.service_token(scope="users:read")
    deactivated, demoted, promoted, changed, untouched, edited = [
        await users_api.account() for _ in range(6)
    ]
    await users_client.patch(
        f"/users/{demoted.id}", json={"role": "admin"}, headers=admin.headers
    )  # promoted first, then demoted below: listed once, with the later instant
    # The admin's own listing comes from ensure_admin (a new password): leave it aside.
    before = revoked(await feed(users_client, service))

    started = time.time()
    for account, body in (
        (deactivated, {"active": False}),
        (demoted, {"role": "customer"}),
        (promoted, {"role": "admin"}),
    ):
        response = await users_client.patch(
            f"/users/{account.id}", json=body, headers=admin.headers
        )
        assert response.status_code == 200, response.text
    response = await users_client.put(
        "/users/me/password",
        headers=changed.headers,
        json={"current_password": PASSWORD, "new_password": "a brand new one"},
    )
    assert response.status_code == 204
    await users_client.patch("/users/me", headers=edited.headers, json={"phone": "0812"})
    await users_client.patch(
        f"/users/{untouched.id}", json={"active": True, "role": "customer"}, headers=admin.headers
    )  # no change at all
    finished = time.time()

    body = await feed(users_client, service)
    assert body["horizon_seconds"] == 900 + 60
    listed = revoked(body)
    changed_ids = {deactivated.id, demoted.id, promoted.id, changed.id}
    assert changed_ids <= set(listed)
    assert untouched.id not in listed and edited.id not in listed
    assert set(listed) - changed_ids <= set(before)  # nothing else appeared
    async with users_app.state.db.read() as conn:
        rows = (await conn.execute(select(users.c.id, users.c.tokens_not_before))).all()
    stored = {row.id: row.tokens_not_before for row in rows}
    for user_id in changed_ids:
        assert started - 0.001 <= listed[user_id] <= finished + 0.001
        assert listed[user_id] == pytest.approx(stored[user_id].timestamp(), abs=1e-6)
    # Every token those users held is now refused by the rule.
    for account in (deactivated, demoted, promoted, changed):
        assert claims(account.access_token)["iat"] < listed[account.id]


async def test_reactivation_does_not_bring_old_tokens_back(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    admin = await users_api.account(admin=True)
    service = await users_api.service_token()
    customer = await users_api.account()
    await users_client.patch(f"/users/{customer.id}", json={"active": False}, headers=admin.headers)
    not_before = revoked(await feed(users_client, service))[customer.id]
    await users_client.patch(f"/users/{customer.id}", json={"active": True}, headers=admin.headers)
    assert revoked(await feed(users_client, service))[customer.id] == not_before
    stale = await users_client.get("/users/me", headers=customer.headers)
    assert stale.status_code == 401


async def test_only_revocations_within_the_horizon_are_listed(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    service = await users_api.service_token()
    old, recent = await users_api.account(), await users_api.account()
    horizon = 900 + 60
    async with users_app.state.db.write() as conn:
        for account, age in ((old, horizon + 1), (recent, horizon - 1)):
            await conn.execute(
                update(users)
                .where(users.c.id == account.id)
                .values(tokens_not_before=utcnow() - timedelta(seconds=age))
            )
    listed = revoked(await feed(users_client, service))
    assert recent.id in listed and old.id not in listed


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("customer", 403), ("admin", 403), ("no_scope", 403), ("write", 403)],
)
async def test_only_a_service_with_users_read_may_poll(
    users_client: httpx.AsyncClient, users_api: UsersApi, who: str, status: int
) -> None:
    tokens: dict[str, Callable[[], Awaitable[str]]] = {
        "customer": lambda: _user_token(users_api, admin=False),
        "admin": lambda: _user_token(users_api, admin=True),
        "no_scope": lambda: users_api.service_token("reporting", "reporting-secret-for-tests"),
        "write": lambda: users_api.service_token(scope="notifications:write"),
    }
    headers = {} if who == "anonymous" else {"Authorization": f"Bearer {await tokens[who]()}"}
    response = await users_client.get("/internal/token-revocations", headers=headers)
    assert response.status_code == status, response.text


async def _user_token(users_api: UsersApi, *, admin: bool) -> str:
    account = await users_api.account(admin=admin)
    token: str = account.access_token
    return token


async def test_a_token_issued_just_after_a_change_is_accepted(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    service = await users_api.service_token()
    for round_ in range(3):
        new_password = f"password number {round_}"
        response = await users_client.put(
            "/users/me/password",
            headers=account.headers,
            json={"current_password": account.password, "new_password": new_password},
        )
        assert response.status_code == 204
        stale = await users_client.get("/users/me", headers=account.headers)
        assert stale.status_code == 401
        assert stale.json()["code"] == "unauthorized"
        # Within the same second: only the fraction of iat tells the two tokens apart.
        login = await users_api.login(account.email, new_password)
        fresh = login.json()["access_token"]
        assert claims(fresh)["iat"] >= revoked(await feed(users_client, service))[account.id]
        account.access_token, account.password = fresh, new_password
        assert (await users_client.get("/users/me", headers=account.headers)).status_code == 200


async def test_a_demoted_admins_token_is_refused_and_a_refresh_is_a_customer(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    admin = await users_api.account(admin=True)
    other = await users_api.account(admin=True)
    response = await users_client.patch(
        f"/users/{other.id}", json={"role": "customer"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert (await users_client.get("/users", headers=other.headers)).status_code == 401
    refreshed = await users_client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": other.refresh_token}
    )
    token = refreshed.json()["access_token"]
    assert claims(token)["role"] == "customer"
    listed = await users_client.get("/users", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 403


async def test_no_token_carries_a_stale_role_past_a_demotion(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    """Logins and refreshes racing a demotion: any token still saying admin was issued
    before the demotion's not_before, so every verifier refuses it."""
    admin = await users_api.account(admin=True)
    service = await users_api.service_token()
    target = await users_api.account()
    for _ in range(4):
        promoted = await users_client.patch(
            f"/users/{target.id}", json={"role": "admin"}, headers=admin.headers
        )
        assert promoted.status_code == 200
        session = (await users_api.login(target.email)).json()
        results = await asyncio.gather(
            users_api.login(target.email),
            users_api.login(target.email),
            users_client.post(
                "/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]},
            ),
            users_client.patch(
                f"/users/{target.id}", json={"role": "customer"}, headers=admin.headers
            ),
        )
        not_before = revoked(await feed(users_client, service))[target.id]
        for response in results[:3]:
            assert response.status_code == 200, response.text
            issued = claims(response.json()["access_token"])
            if issued["role"] == "admin":
                assert issued["iat"] < not_before
            else:
                assert issued["iat"] >= not_before
