"""Registrations are limited per address, and argon2 work is bounded: a flood queues,
then sheds with 503, and logins go first."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from testdata import PASSWORD
from users_support import AppFactory, ClientFrom, UsersApi

from pasar_users.passwords import HashingGate, Work
from pasar_users.problems import HashingBusy


def registration(email: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD, "full_name": "Flood"}


# --- registrations per address ----------------------------------------------------


async def test_registrations_per_address_are_limited(
    users_app_with: AppFactory, client_from: ClientFrom
) -> None:
    async with (
        users_app_with(registrations_per_address=3, registration_window_seconds=3600) as app,
        client_from(app, "198.51.100.7") as flood,
        client_from(app, "192.0.2.10") as other,
    ):
        for i in range(3):
            response = await flood.post("/auth/register", json=registration(f"f{i}@example.com"))
            assert response.status_code == 201
        refused = await flood.post("/auth/register", json=registration("f3@example.com"))
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "too_many_registrations"
        assert 3590 <= int(refused.headers["retry-after"]) <= 3600
        assert (await other.post("/auth/register", json=registration("o@example.com"))).is_success
        # A refused registration created nothing.
        login = await flood.post(
            "/auth/token",
            data={"grant_type": "password", "username": "f3@example.com", "password": PASSWORD},
        )
        assert login.status_code == 400


async def test_a_concurrent_burst_of_registrations_is_counted_as_it_arrives(
    users_app_with: AppFactory, client_from: ClientFrom
) -> None:
    async with users_app_with(registrations_per_address=5) as app, client_from(app) as client:
        responses = await asyncio.gather(
            *(
                client.post("/auth/register", json=registration(f"b{i}@example.com"))
                for i in range(15)
            )
        )
    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] + statuses[429] == 15, statuses
    assert 1 <= statuses[201] <= 5 and statuses[429] >= 10, statuses


# --- the argon2 gate, through the API ---------------------------------------------


class BlockingHasher:
    """argon2's hasher whose ``hash`` waits for the test's go (its checks do not)."""

    def __init__(self, hasher: Any, release: threading.Event) -> None:
        self._hasher = hasher
        self._release = release

    def hash(self, password: str) -> str:
        self._release.wait(timeout=10)
        result: str = self._hasher.hash(password)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hasher, name)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def test_a_registration_flood_is_shed_and_a_login_goes_first(
    users_app_with: AppFactory, users_api: UsersApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with users_app_with(argon2_concurrency=1, argon2_max_waiting=2) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://u") as client:
            await client.post("/auth/register", json=registration("dewi@example.com"))
            passwords = app.state.runtime.passwords
            gate: HashingGate = passwords.gate
            release = threading.Event()
            monkeypatch.setattr(passwords, "_hasher", BlockingHasher(passwords._hasher, release))
            order: list[str] = []

            async def register(i: int) -> httpx.Response:
                response = await client.post(
                    "/auth/register", json=registration(f"flood{i}@example.com")
                )
                order.append(f"register {response.status_code}")
                return response

            async def login() -> httpx.Response:
                response = await client.post(
                    "/auth/token",
                    data={
                        "grant_type": "password",
                        "username": "dewi@example.com",
                        "password": PASSWORD,
                    },
                )
                order.append(f"login {response.status_code}")
                return response

            first = asyncio.create_task(register(0))
            await until(lambda: gate.running == 1)
            flood = [asyncio.create_task(register(i)) for i in range(1, 6)]
            await until(lambda: len(order) == 3)  # two queued, three shed at once
            assert order == ["register 503"] * 3
            signing_in = asyncio.create_task(login())
            await until(lambda: len(order) == 4)
            assert order[3] == "register 503"  # the login took the newest hash's place
            release.set()
            responses = [await first, *[await task for task in flood]]
            assert (await signing_in).status_code == 200
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 2, 503: 4}, statuses
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.json()["code"] == "hashing_busy"
    assert int(busy.headers["retry-after"]) >= 1


# --- the gate on its own ------------------------------------------------------------


async def test_the_gate_runs_verifications_before_hashes() -> None:
    gate = HashingGate(slots=1, max_waiting=10, max_wait_seconds=5)
    ran: list[str] = []
    hold = asyncio.Event()

    async def job(name: str, work: Work) -> None:
        async with gate.slot(work):
            ran.append(name)
            if name == "first":
                await hold.wait()

    tasks = [asyncio.create_task(job("first", Work.HASH))]
    await until(lambda: gate.running == 1)
    for name, work in (("h1", Work.HASH), ("v1", Work.VERIFY), ("h2", Work.HASH)):
        tasks.append(asyncio.create_task(job(name, work)))
        await until(lambda: gate.waiting == len(tasks) - 1)
    tasks.append(asyncio.create_task(job("v2", Work.VERIFY)))
    await until(lambda: gate.waiting == 4)
    hold.set()
    await asyncio.gather(*tasks)
    assert ran == ["first", "v1", "v2", "h1", "h2"]
    assert gate.running == 0 and gate.waiting == 0


async def test_a_full_gate_sheds_hashes_but_makes_room_for_a_verification() -> None:
    gate = HashingGate(slots=1, max_waiting=1, max_wait_seconds=5)
    hold = asyncio.Event()

    async def hold_slot() -> None:
        async with gate.slot(Work.HASH):
            await hold.wait()

    async def quick(work: Work) -> str:
        async with gate.slot(work):
            return work.name

    holder = asyncio.create_task(hold_slot())
    await until(lambda: gate.running == 1)
    queued_hash = asyncio.create_task(quick(Work.HASH))
    await until(lambda: gate.waiting == 1)
    with pytest.raises(HashingBusy):
        await quick(Work.HASH)  # the queue is full
    verify = asyncio.create_task(quick(Work.VERIFY))
    with pytest.raises(HashingBusy):
        await queued_hash  # shed for the verification
    hold.set()
    assert await verify == "VERIFY"
    await holder
    assert gate.running == 0 and gate.waiting == 0


async def test_a_waiter_gives_up_after_the_longest_wait_and_leaks_nothing() -> None:
    gate = HashingGate(slots=1, max_waiting=5, max_wait_seconds=0.05)
    hold = asyncio.Event()

    async def hold_slot() -> None:
        async with gate.slot(Work.HASH):
            await hold.wait()

    holder = asyncio.create_task(hold_slot())
    await until(lambda: gate.running == 1)
    with pytest.raises(HashingBusy):
        async with gate.slot(Work.VERIFY):
            pass
    cancelled = asyncio.create_task(gate.slot(Work.VERIFY).__aenter__())
    await until(lambda: gate.waiting == 1)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert gate.waiting == 0
    hold.set()
    await holder
    assert gate.running == 0
    async with gate.slot(Work.HASH):
        assert gate.running == 1


async def test_requests_beyond_the_limits_never_500(
    users_app: FastAPI, users_api: UsersApi
) -> None:
    # The default gate with cheap hashes: a burst is simply served.
    responses = await asyncio.gather(
        *(
            users_api.client.post("/auth/register", json=registration(f"ok{i}@example.com"))
            for i in range(20)
        )
    )
    assert {r.status_code for r in responses} <= {201, 429, 503}
