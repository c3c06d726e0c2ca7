"""GET /internal/users/{id}, POST /internal/notifications and its batch."""

from __future__ import annotations

import asyncio
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
        "email_verified": False,
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


async def inbox_messages(users_client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await users_client.get("/users/me/notifications?limit=100", headers=headers)
    return sorted(item["message"] for item in response.json()["items"])


async def test_a_batch_stores_each_event_once_and_says_what_became_of_each(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    ana, budi = (
        await users_api.account("ana@example.com"),
        await users_api.account("budi@example.com"),
    )
    auth = {"Authorization": f"Bearer {await users_api.service_token(scope='notifications:write')}"}
    sent_before = await users_client.post(
        "/internal/notifications", json=event(ana.id, event_id="e-1", message="one"), headers=auth
    )
    assert sent_before.status_code == 202
    batch = [
        event(ana.id, event_id="e-1", message="one, again"),  # stored before
        event(ana.id, event_id="e-2", message="two"),
        event(budi.id, event_id="e-3", message="three"),
        event("nobody", event_id="e-4", message="four"),
        event(budi.id, event_id="e-3", message="three, twice in one batch"),
    ]
    response = await users_client.post(
        "/internal/notifications/batch", json={"events": batch}, headers=auth
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "results": [
            {"event_id": "e-1", "outcome": "duplicate"},
            {"event_id": "e-2", "outcome": "stored"},
            {"event_id": "e-3", "outcome": "stored"},
            {"event_id": "e-4", "outcome": "unknown_user"},
            {"event_id": "e-3", "outcome": "duplicate"},
        ]
    }
    assert await inbox_messages(users_client, ana.headers) == ["one", "two"]
    assert await inbox_messages(users_client, budi.headers) == ["three"]

    again = await users_client.post(
        "/internal/notifications/batch", json={"events": batch}, headers=auth
    )
    assert [r["outcome"] for r in again.json()["results"]] == [
        "duplicate", "duplicate", "duplicate", "unknown_user", "duplicate",
    ]  # fmt: skip
    assert await inbox_messages(users_client, budi.headers) == ["three"]


async def test_batches_racing_with_the_same_events_store_each_once(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    auth = {"Authorization": f"Bearer {await users_api.service_token(scope='notifications:write')}"}
    events = [event(account.id, event_id=f"race-{i}", message=f"m{i:02}") for i in range(40)]

    async def send(offset: int) -> list[dict[str, str]]:
        # Each sender starts elsewhere in the list, so the batches overlap differently.
        mine = events[offset:] + events[:offset]
        response = await users_client.post(
            "/internal/notifications/batch", json={"events": mine}, headers=auth
        )
        assert response.status_code == 200, response.text
        results: list[dict[str, str]] = response.json()["results"]
        return results

    answers = await asyncio.gather(*(send(offset) for offset in range(0, 40, 5)))
    stored = [r["event_id"] for answer in answers for r in answer if r["outcome"] == "stored"]
    assert sorted(stored) == sorted(e["event_id"] for e in events)  # each exactly once
    assert await inbox_messages(users_client, account.headers) == [f"m{i:02}" for i in range(40)]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"events": []}, "empty"),
        ({"events": [event("u", event_id=f"e{i}") for i in range(101)]}, "more than 100"),
        ({"events": [event("u"), event("u", occurred_at="yesterday")]}, "one event invalid"),
        ([event("u")], "a bare list"),
    ],
)
async def test_an_invalid_batch_is_422_and_stores_nothing(
    users_client: httpx.AsyncClient, users_api: UsersApi, body: Any, why: str
) -> None:
    account = await users_api.account()
    for item in body["events"] if isinstance(body, dict) else body:
        item["user_id"] = account.id
    auth = {"Authorization": f"Bearer {await users_api.service_token()}"}
    response = await users_client.post("/internal/notifications/batch", json=body, headers=auth)
    assert response.status_code == 422, why
    assert await inbox_messages(users_client, account.headers) == []


async def test_a_batch_needs_the_notifications_scope(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    reader = {"Authorization": f"Bearer {await users_api.service_token(scope='users:read')}"}
    body = {"events": [event(account.id)]}
    response = await users_client.post("/internal/notifications/batch", json=body, headers=reader)
    assert response.status_code == 403
    anonymous = await users_client.post("/internal/notifications/batch", json=body)
    assert anonymous.status_code == 401
    assert await inbox_messages(users_client, account.headers) == []


@pytest.mark.parametrize("occurred_at", [0, 1764000000, 1.5, True, None, ["2026-11-25T14:03:00Z"]])
async def test_occurred_at_must_be_a_date_time_string(
    users_client: httpx.AsyncClient, users_api: UsersApi, occurred_at: Any
) -> None:
    """Not a number read as seconds since 1970 (as pydantic alone would), nor anything
    else that is not RFC 3339 text; alone or in a batch."""
    account = await users_api.account()
    auth = {"Authorization": f"Bearer {await users_api.service_token()}"}
    body = event(account.id, occurred_at=occurred_at)
    single = await users_client.post("/internal/notifications", json=body, headers=auth)
    assert single.status_code == 422, single.text
    batch = await users_client.post(
        "/internal/notifications/batch", json={"events": [body]}, headers=auth
    )
    assert batch.status_code == 422, batch.text
    assert await inbox_messages(users_client, account.headers) == []
