"""Races that must have one winner, run for real against the database."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from users_support import UsersApi

from pasar_users.tables import notifications, refresh_tokens, users


async def test_concurrent_refreshes_with_one_token_yield_exactly_one_pair(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    form = {"grant_type": "refresh_token", "refresh_token": account.refresh_token}
    responses = await asyncio.gather(
        *(users_client.post("/auth/token", data=form) for _ in range(12))
    )
    statuses = Counter(r.status_code for r in responses)
    # The first to lock the token rotates it; every later use is a replay.
    assert statuses == {200: 1, 400: 11}, statuses
    for response in responses:
        if response.status_code == 400:
            assert response.json()["error"] == "invalid_grant"
    async with users_app.state.db.read() as conn:
        issued = await conn.scalar(select(func.count()).select_from(refresh_tokens))
    assert issued == 2  # the login's token and its one successor


async def test_concurrent_identical_notifications_are_stored_once(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    auth = {"Authorization": f"Bearer {await users_api.service_token()}"}
    event = {
        "event_id": "evt-race",
        "user_id": account.id,
        "type": "order.created",
        "order_id": "o-1",
        "status": "processing",
        "message": "Order placed",
        "occurred_at": "2026-11-25T14:03:00Z",
    }
    responses = await asyncio.gather(
        *(users_client.post("/internal/notifications", json=event, headers=auth) for _ in range(12))
    )
    assert [r.status_code for r in responses] == [202] * 12, [r.text for r in responses]
    async with users_app.state.db.read() as conn:
        stored = await conn.scalar(select(func.count()).select_from(notifications))
    assert stored == 1


async def test_concurrent_registrations_with_one_email(
    users_app: FastAPI, users_client: httpx.AsyncClient
) -> None:
    def body(i: int) -> dict[str, str]:
        # Different spellings of one address.
        email = "Race@Example.com" if i % 2 else "race@example.com"
        return {"email": email, "password": "long enough", "full_name": f"Racer {i}"}

    responses = await asyncio.gather(
        *(users_client.post("/auth/register", json=body(i)) for i in range(12))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 11}, statuses
    assert all(r.json()["code"] == "email_taken" for r in responses if r.status_code == 409)
    async with users_app.state.db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(users)) == 1


async def test_admins_stepping_down_at_once_leave_one_admin(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    admins = [await users_api.account(f"admin{i}@example.com", admin=True) for i in range(4)]
    responses = await asyncio.gather(
        *(
            users_client.patch(f"/users/{a.id}", json={"role": "customer"}, headers=a.headers)
            for a in admins
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 3, 409: 1}, [r.text for r in responses]
    async with users_app.state.db.read() as conn:
        remaining = await conn.scalar(
            select(func.count()).select_from(users).where(users.c.role == "admin")
        )
    assert remaining == 1


async def test_concurrent_logins_each_get_their_own_family(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    # As many as the throttle lets through at once from one address (pasar counts an
    # attempt in flight as a failure until it succeeds: see test_login_throttle).
    responses = await asyncio.gather(*(users_api.login(account.email) for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    refresh = {r.json()["refresh_token"] for r in responses}
    assert len(refresh) == 5
