"""GET/PATCH /users/me, PUT /users/me/password and the notification inbox."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from testdata import PASSWORD
from users_support import UsersApi


async def test_profile(users_client: httpx.AsyncClient, users_api: UsersApi) -> None:
    account = await users_api.account("rina@example.com")
    response = await users_client.get("/users/me", headers=account.headers)
    assert response.status_code == 200
    profile = response.json()
    assert set(profile) >= {"id", "email", "full_name", "phone", "address", "role", "created_at"}
    assert profile["id"] == account.id
    assert profile["email"] == "rina@example.com"
    assert profile["created_at"].endswith("Z")


async def test_patch_profile(users_client: httpx.AsyncClient, users_api: UsersApi) -> None:
    account = await users_api.account("rina@example.com")
    response = await users_client.patch(
        "/users/me",
        headers=account.headers,
        json={
            "full_name": "Rina Wijaya",
            "phone": "+62 812 0000 0000",
            "address": "Jl. Merdeka 1, Bandung",
            "email": "Rina.W@Example.com",
            "current_password": PASSWORD,
        },
    )
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["full_name"] == "Rina Wijaya"
    assert profile["phone"] == "+62 812 0000 0000"
    assert profile["address"] == "Jl. Merdeka 1, Bandung"
    assert profile["email"] == "rina.w@example.com"
    # The new email logs in; the old one no longer exists.
    assert (await users_api.login("rina.w@example.com")).status_code == 200
    assert (await users_api.login("rina@example.com")).status_code == 400


async def test_patch_is_partial_and_null_clears_optional_fields(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    await users_client.patch("/users/me", headers=account.headers, json={"phone": "123"})
    response = await users_client.patch(
        "/users/me", headers=account.headers, json={"full_name": "Only Name"}
    )
    assert response.json()["phone"] == "123"
    response = await users_client.patch("/users/me", headers=account.headers, json={"phone": None})
    assert response.json()["phone"] is None
    assert response.json()["full_name"] == "Only Name"


async def test_patch_email_taken(users_client: httpx.AsyncClient, users_api: UsersApi) -> None:
    await users_api.register("taken@example.com")
    account = await users_api.account()
    response = await users_client.patch(
        "/users/me",
        headers=account.headers,
        json={"email": "TAKEN@example.com", "current_password": PASSWORD},
    )
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


async def test_patch_own_email_unchanged_is_fine(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    response = await users_client.patch(
        "/users/me", headers=account.headers, json={"email": account.email.upper()}
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == account.email
    stored = await users_client.get("/users/me", headers=account.headers)
    assert stored.json()["email"] == account.email
    assert (await users_api.login(account.email)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"full_name": None},
        {"email": None},
        {"email": "nope"},
        {"full_name": ""},
        {"phone": "9" * 33},
        {"role": "admin"},
        {"active": False},
        {"password": "new password"},
    ],
)
async def test_patch_refuses_invalid_or_forbidden_fields(
    users_client: httpx.AsyncClient, users_api: UsersApi, body: dict[str, Any]
) -> None:
    account = await users_api.account()
    response = await users_client.patch("/users/me", headers=account.headers, json=body)
    assert response.status_code == 422, response.text
    me = (await users_client.get("/users/me", headers=account.headers)).json()
    assert me["role"] == "customer"


async def test_change_password(users_client: httpx.AsyncClient, users_api: UsersApi) -> None:
    account = await users_api.account()
    second_device = (await users_api.login(account.email)).json()["refresh_token"]
    response = await users_client.put(
        "/users/me/password",
        headers=account.headers,
        json={"current_password": PASSWORD, "new_password": "a brand new one"},
    )
    assert response.status_code == 204
    assert (await users_api.login(account.email)).status_code == 400
    assert (await users_api.login(account.email, "a brand new one")).status_code == 200
    for refresh in (account.refresh_token, second_device):
        refused = await users_client.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"


async def test_change_password_with_a_wrong_current_password(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    response = await users_client.put(
        "/users/me/password",
        headers=account.headers,
        json={"current_password": "not it at all", "new_password": "a brand new one"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_password"
    assert (await users_api.login(account.email)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"current_password": PASSWORD, "new_password": "short"},
        {"current_password": PASSWORD, "new_password": "x" * 1025},
        {"current_password": PASSWORD},
        {"new_password": "long enough"},
    ],
)
async def test_change_password_validation(
    users_client: httpx.AsyncClient, users_api: UsersApi, body: dict[str, Any]
) -> None:
    account = await users_api.account()
    response = await users_client.put("/users/me/password", headers=account.headers, json=body)
    assert response.status_code == 422


# --- notifications ----------------------------------------------------------------


async def notify(
    client: httpx.AsyncClient, service: str, user_id: str, n: int, **extra: Any
) -> None:
    event = {
        "event_id": f"evt-{user_id}-{n}",
        "user_id": user_id,
        "type": "order.status_changed",
        "order_id": f"order-{n}",
        "status": "shipped",
        "message": f"Order {n} shipped",
        "occurred_at": f"2026-11-25T14:{n:02d}:00Z",
        **extra,
    }
    response = await client.post(
        "/internal/notifications", json=event, headers={"Authorization": f"Bearer {service}"}
    )
    assert response.status_code == 202, response.text


async def test_inbox_newest_first_with_pagination_and_unread_filter(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    other = await users_api.account()
    service = await users_api.service_token()
    for n in range(5):
        await notify(users_client, service, account.id, n)
    await notify(users_client, service, other.id, 9)

    page = (
        await users_client.get(
            "/users/me/notifications", params={"limit": 2, "offset": 1}, headers=account.headers
        )
    ).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [item["order_id"] for item in page["items"]] == ["order-3", "order-2"]
    item = page["items"][0]
    assert set(item) >= {"id", "type", "order_id", "status", "message", "read", "created_at"}
    assert item["read"] is False and item["created_at"].endswith("Z")

    newest = (await users_client.get("/users/me/notifications", headers=account.headers)).json()
    assert newest["limit"] == 20 and newest["offset"] == 0
    first_id = newest["items"][0]["id"]
    marked = await users_client.post(
        f"/users/me/notifications/{first_id}/read", headers=account.headers
    )
    assert marked.status_code == 204
    again = await users_client.post(
        f"/users/me/notifications/{first_id}/read", headers=account.headers
    )
    assert again.status_code == 204  # idempotent

    unread = (
        await users_client.get(
            "/users/me/notifications", params={"unread": "true"}, headers=account.headers
        )
    ).json()
    assert unread["total"] == 4
    assert first_id not in [item["id"] for item in unread["items"]]
    everything = (await users_client.get("/users/me/notifications", headers=account.headers)).json()
    assert everything["items"][0]["read"] is True


async def test_someone_elses_notification_is_not_found(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    owner = await users_api.account()
    snoop = await users_api.account()
    await notify(users_client, await users_api.service_token(), owner.id, 1)
    (item,) = (await users_client.get("/users/me/notifications", headers=owner.headers)).json()[
        "items"
    ]
    response = await users_client.post(
        f"/users/me/notifications/{item['id']}/read", headers=snoop.headers
    )
    assert response.status_code == 404
    missing = await users_client.post(
        "/users/me/notifications/does-not-exist/read", headers=owner.headers
    )
    assert missing.status_code == 404
    unread = (
        await users_client.get(
            "/users/me/notifications", params={"unread": "true"}, headers=owner.headers
        )
    ).json()
    assert unread["total"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"offset": 10**25},
        {"limit": "x"},
        {"unread": "maybe"},
    ],
)
async def test_inbox_pagination_bounds(
    users_client: httpx.AsyncClient, users_api: UsersApi, params: dict[str, Any]
) -> None:
    account = await users_api.account()
    response = await users_client.get(
        "/users/me/notifications", params=params, headers=account.headers
    )
    assert response.status_code == 422
