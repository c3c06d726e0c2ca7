"""The current password, asked again: a new email needs it, and wrong ones are throttled
per account, so a stolen access token is no guessing channel and no takeover."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from testdata import PASSWORD
from users_support import ClientFrom, UsersApi


async def change_password(
    client: httpx.AsyncClient, headers: dict[str, str], current: str
) -> httpx.Response:
    return await client.put(
        "/users/me/password",
        headers=headers,
        json={"current_password": current, "new_password": "a brand new one"},
    )


async def test_a_new_email_needs_the_current_password(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account("rina@example.com")
    missing = await users_client.patch(
        "/users/me", headers=account.headers, json={"email": "thief@example.com"}
    )
    assert missing.status_code == 422, missing.text
    assert missing.json()["code"] == "current_password_required"
    assert missing.json()["errors"][0]["loc"] == ["body", "current_password"]
    wrong = await users_client.patch(
        "/users/me",
        headers=account.headers,
        json={"email": "thief@example.com", "current_password": "a guess!"},
    )
    assert wrong.status_code == 403 and wrong.json()["code"] == "wrong_password"
    me = (await users_client.get("/users/me", headers=account.headers)).json()
    assert me["email"] == "rina@example.com"
    # What the storefront sends when the email changes.
    right = await users_client.patch(
        "/users/me",
        headers=account.headers,
        json={"email": "rina.baru@example.com", "full_name": "Rina", "current_password": PASSWORD},
    )
    assert right.status_code == 200, right.text
    assert right.json()["email"] == "rina.baru@example.com"


async def test_the_same_email_needs_no_password(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account("rina@example.com")
    response = await users_client.patch(
        "/users/me", headers=account.headers, json={"email": "RINA@example.com", "phone": "0812"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["phone"] == "0812"


async def test_wrong_current_passwords_are_throttled_per_account(
    users_app: FastAPI, users_api: UsersApi, client_from: ClientFrom, age_attempts: Any
) -> None:
    account = await users_api.account()
    async with (
        client_from(users_app, "203.0.113.9") as thief,
        client_from(users_app, "198.51.100.1") as elsewhere,
    ):
        for _ in range(5):
            wrong = await change_password(thief, account.headers, "a guess!")
            assert wrong.status_code == 403 and wrong.json()["code"] == "wrong_password"
        for client in (thief, elsewhere):  # per account, not per address
            refused = await change_password(client, account.headers, PASSWORD)
            assert refused.status_code == 429, refused.text
            assert refused.json()["code"] == "too_many_attempts"
            assert int(refused.headers["retry-after"]) == 1
        # The email change asks the same question, so it shares the count.
        email = await thief.patch(
            "/users/me",
            headers=account.headers,
            json={"email": "thief@example.com", "current_password": PASSWORD},
        )
        assert email.status_code == 429
        # The login throttle is another one: the owner can still sign in.
        assert (await users_api.login(account.email)).status_code == 200
        await age_attempts(users_app.state.db, 1)
        assert (await change_password(elsewhere, account.headers, PASSWORD)).status_code == 204
