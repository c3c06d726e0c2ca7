"""GET /internal/users/{id} and POST /internal/notifications."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from users_support import UsersApi


def event(user_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "event_id": "evt-42",
        "user_id": user_id,
        "type": "order.created",
        "order_id": "order-42",
        "status": "processing",
        "message": "Thanks for your order",
        "occurred_at": "2026-11-25T14:03:00Z",
        **overrides,
    }


async def test_internal_user(users_client: httpx.AsyncClient, users_api: UsersApi) -> None:
    account = await users_api.account("eka@example.com")
    auth = {"Authorization": f"Bearer {await users_api.service_token(scope='users:read')}"}
    response = await users_client.get(f"/internal/users/{account.id}", headers=auth)
    assert response.status_code == 200
    assert response.json() == {
        "id": account.id,
        "email": "eka@example.com",
        "full_name": "Siti Test",
        "role": "customer",
        "active": True,
    }
    missing = await users_client.get("/internal/users/no-such-user", headers=auth)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_repeated_event_is_stored_once(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    auth = {"Authorization": f"Bearer {await users_api.service_token(scope='notifications:write')}"}
    for _ in range(3):
        response = await users_client.post(
            "/internal/notifications", json=event(account.id), headers=auth
        )
        assert response.status_code == 202
    # Even a repeat with a different body stores nothing new.
    response = await users_client.post(
        "/internal/notifications", json=event(account.id, message="changed"), headers=auth
    )
    assert response.status_code == 202
    inbox = (await users_client.get("/users/me/notifications", headers=account.headers)).json()
    assert inbox["total"] == 1
    (item,) = inbox["items"]
    assert item["message"] == "Thanks for your order"
    assert item["type"] == "order.created" and item["status"] == "processing"
    assert item["occurred_at"] == "2026-11-25T14:03:00.000000Z"


async def test_any_short_type_and_optional_order_fields(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    auth = {"Authorization": f"Bearer {await users_api.service_token()}"}
    body = event(account.id, type="promo.announced")
    del body["order_id"], body["status"]
    response = await users_client.post("/internal/notifications", json=body, headers=auth)
    assert response.status_code == 202
    (item,) = (await users_client.get("/users/me/notifications", headers=account.headers)).json()[
        "items"
    ]
    assert item["order_id"] is None and item["status"] is None


async def test_unknown_user_is_refused(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    auth = {"Authorization": f"Bearer {await users_api.service_token()}"}
    response = await users_client.post(
        "/internal/notifications", json=event("nobody"), headers=auth
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_user"


@pytest.mark.parametrize(
    "overrides",
    [
        {"event_id": ""},
        {"event_id": "e" * 101},
        {"type": "t" * 65},
        {"type": ""},
        {"message": ""},
        {"message": "m" * 1001},
        {"occurred_at": "yesterday"},
        {"occurred_at": "2026-11-25T14:03:00"},  # no zone
        {"extra": "field"},
    ],
)
async def test_invalid_notifications_are_422(
    users_client: httpx.AsyncClient, users_api: UsersApi, overrides: dict[str, Any]
) -> None:
    account = await users_api.account()
    auth = {"Authorization": f"Bearer {await users_api.service_token()}"}
    response = await users_client.post(
        "/internal/notifications", json=event(account.id, **overrides), headers=auth
    )
    assert response.status_code == 422, response.text


async def test_occurred_at_is_stored_in_utc(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    auth = {"Authorization": f"Bearer {await users_api.service_token()}"}
    response = await users_client.post(
        "/internal/notifications",
        json=event(account.id, occurred_at="2026-11-25T21:03:00+07:00"),
        headers=auth,
    )
    assert response.status_code == 202
    (item,) = (await users_client.get("/users/me/notifications", headers=account.headers)).json()[
        "items"
    ]
    assert item["occurred_at"].startswith("2026-11-25T14:03:00")
