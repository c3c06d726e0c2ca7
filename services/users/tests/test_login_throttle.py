"""The login throttle through the API: guessing is slowed, nobody is locked out.

Delays are not waited for: the throttle's rows are moved into the past instead.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from fastapi import FastAPI
from testdata import ORDERS_SECRET, PASSWORD
from users_support import AppFactory, ClientFrom

SERVICE = {
    "grant_type": "client_credentials",
    "client_id": "orders",
    "client_secret": ORDERS_SECRET,
}


def login_form(email: str, password: str = PASSWORD) -> dict[str, str]:
    return {"grant_type": "password", "username": email, "password": password}


async def register(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Dewi"}
    )
    assert response.status_code == 201, response.text


def assert_throttled(response: httpx.Response, retry_after: int | None = None) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "too_many_attempts"
    seconds = int(response.headers["retry-after"])
    assert response.json()["retry_after"] == seconds
    if retry_after is not None:
        assert seconds == retry_after
    return seconds


async def test_password_failures_never_refuse_a_service_its_token(
    users_app_with: AppFactory, client_from: ClientFrom
) -> None:
    # The issue: 20 bad logins from the one address of `pasar up` stopped all ordering.
    async with users_app_with(login_address_max_failures=10) as app, client_from(app) as client:
        for i in range(30):
            response = await client.post("/auth/token", data=login_form(f"x{i}@example.com", "no"))
            assert response.status_code in (400, 429)
        assert_throttled(await client.post("/auth/token", data=login_form("y@example.com")))
        service = await client.post("/auth/token", data=SERVICE)
        assert service.status_code == 200, service.text


async def test_guesses_from_one_address_get_growing_delays(
    users_app: FastAPI, client_from: ClientFrom, age_attempts: Any
) -> None:
    db = users_app.state.db
    async with client_from(users_app, "198.51.100.7") as client:
        await register(client, "dewi@example.com")
        for _ in range(5):
            wrong = await client.post("/auth/token", data=login_form("dewi@example.com", "no"))
            assert wrong.status_code == 400
        # Even the right password waits: the answer must not tell a guesser anything.
        assert_throttled(await client.post("/auth/token", data=login_form("dewi@example.com")), 1)
        for delay in (1, 2, 4, 8):
            await age_attempts(db, delay)
            wrong = await client.post("/auth/token", data=login_form("dewi@example.com", "no"))
            assert wrong.status_code == 400
            refused = await client.post("/auth/token", data=login_form("dewi@example.com"))
            assert_throttled(refused, delay * 2)
        await age_attempts(db, 16)
        assert (await client.post("/auth/token", data=login_form("dewi@example.com"))).is_success
        # A success clears this address's count for the account: five free again.
        for _ in range(5):
            wrong = await client.post("/auth/token", data=login_form("dewi@example.com", "no"))
            assert wrong.status_code == 400


async def test_a_guesser_cannot_lock_the_owner_out(
    users_app_with: AppFactory, client_from: ClientFrom
) -> None:
    # No per-address delay here, to show the account-wide rule on its own.
    async with (
        users_app_with(login_pair_free_failures=1000, login_account_soft_limit=20) as app,
        client_from(app, "203.0.113.66") as attacker,
        client_from(app, "192.0.2.10") as owner,
    ):
        await register(owner, "dewi@example.com")
        for _ in range(20):
            wrong = await attacker.post("/auth/token", data=login_form("dewi@example.com", "no"))
            assert wrong.status_code == 400
        # The attacked account slows the address that keeps failing on it...
        assert_throttled(await attacker.post("/auth/token", data=login_form("dewi@example.com")))
        # ...but its owner, on their own device, gets straight in.
        assert (await owner.post("/auth/token", data=login_form("dewi@example.com"))).is_success


async def test_a_guesser_on_many_addresses_gets_one_try_per_address(
    users_app_with: AppFactory, client_from: ClientFrom
) -> None:
    async with users_app_with(login_account_soft_limit=5) as app:
        async with client_from(app, "192.0.2.10") as owner:
            await register(owner, "dewi@example.com")
        for i in range(8):
            async with client_from(app, f"203.0.113.{i}") as bot:
                wrong = await bot.post("/auth/token", data=login_form("dewi@example.com", "no"))
                assert wrong.status_code == 400
        async with client_from(app, "203.0.113.0") as bot:
            assert_throttled(await bot.post("/auth/token", data=login_form("dewi@example.com")))
        async with client_from(app, "192.0.2.10") as owner:
            assert (await owner.post("/auth/token", data=login_form("dewi@example.com"))).is_success


async def test_failures_spread_over_accounts_leave_the_address_open(
    users_app: FastAPI, client_from: ClientFrom
) -> None:
    # Twenty used to lock the address for everybody behind it (a NAT, the storefront).
    async with client_from(users_app, "198.51.100.7") as client:
        await register(client, "victim@example.com")
        for i in range(30):
            wrong = await client.post("/auth/token", data=login_form(f"spray{i}@example.com", "x"))
            assert wrong.status_code == 400
        assert (await client.post("/auth/token", data=login_form("victim@example.com"))).is_success


async def test_an_address_ceiling_holds_across_accounts_then_reopens(
    users_app_with: AppFactory, client_from: ClientFrom, age_attempts: Any
) -> None:
    async with (
        users_app_with(login_address_max_failures=10, login_window_seconds=600) as app,
        client_from(app, "198.51.100.7") as sprayer,
        client_from(app, "192.0.2.10") as elsewhere,
    ):
        await register(elsewhere, "victim@example.com")
        for i in range(10):
            wrong = await sprayer.post("/auth/token", data=login_form(f"s{i}@example.com", "x"))
            assert wrong.status_code == 400
        refused = await sprayer.post("/auth/token", data=login_form("victim@example.com"))
        assert 590 <= assert_throttled(refused) <= 600
        assert (
            await elsewhere.post("/auth/token", data=login_form("victim@example.com"))
        ).is_success
        await age_attempts(app.state.db, 600)
        assert (await sprayer.post("/auth/token", data=login_form("victim@example.com"))).is_success


async def test_a_burst_of_concurrent_guesses_is_counted_as_it_arrives(
    users_app: FastAPI, client_from: ClientFrom
) -> None:
    async with client_from(users_app, "198.51.100.7") as client:
        await register(client, "dewi@example.com")
        form = login_form("dewi@example.com", "guess")
        responses = await asyncio.gather(
            *(client.post("/auth/token", data=form) for _ in range(16))
        )
    statuses = Counter(r.status_code for r in responses)
    assert statuses[400] + statuses[429] == 16, statuses
    # Five are free; attempts in flight count, so the rest of the burst waits.
    assert statuses[400] <= 8 and statuses[429] >= 8, statuses


async def test_another_address_success_does_not_clear_a_guessers_count(
    users_app: FastAPI, client_from: ClientFrom
) -> None:
    async with (
        client_from(users_app, "203.0.113.66") as attacker,
        client_from(users_app, "192.0.2.10") as owner,
    ):
        await register(owner, "dewi@example.com")
        for _ in range(5):
            wrong = await attacker.post("/auth/token", data=login_form("dewi@example.com", "no"))
            assert wrong.status_code == 400
        assert (await owner.post("/auth/token", data=login_form("dewi@example.com"))).is_success
        assert_throttled(await attacker.post("/auth/token", data=login_form("dewi@example.com")))


async def test_unknown_accounts_are_throttled_the_same_way(
    users_app: FastAPI, client_from: ClientFrom
) -> None:
    async with client_from(users_app, "198.51.100.7") as client:
        for _ in range(5):
            wrong = await client.post("/auth/token", data=login_form("ghost@example.com", "no"))
            assert wrong.status_code == 400
        assert_throttled(await client.post("/auth/token", data=login_form("ghost@example.com")))


async def test_bad_client_secrets_slow_that_address_not_the_client(
    users_app: FastAPI, client_from: ClientFrom
) -> None:
    bad = {**SERVICE, "client_secret": "guess"}
    async with (
        client_from(users_app, "203.0.113.7") as attacker,
        client_from(users_app, "10.0.0.5") as orders,
    ):
        for _ in range(5):
            response = await attacker.post("/auth/token", data=bad)
            assert response.status_code == 401 and response.json()["error"] == "invalid_client"
        assert_throttled(await attacker.post("/auth/token", data=SERVICE), 1)
        assert (await orders.post("/auth/token", data=SERVICE)).status_code == 200


async def test_a_client_name_typed_as_a_username_is_another_throttle(
    users_app: FastAPI, client_from: ClientFrom
) -> None:
    # Password logins for "orders" never count against the client "orders".
    async with client_from(users_app) as client:
        for _ in range(10):
            response = await client.post("/auth/token", data=login_form("orders", "guess"))
            assert response.status_code in (400, 429)
        assert (await client.post("/auth/token", data=SERVICE)).status_code == 200
