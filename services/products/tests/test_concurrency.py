"""Concurrency, proven: many requests at once through a real server on the real database.

Run on MariaDB and PostgreSQL (PASAR_TEST_DB) these race real transactions against each
other; on SQLite they check that serialised writers give the same answers. Every test
ends with the stock invariant.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from products_support import Catalogue, Clock, Tokens

from pasar_kit.auth import TokenVerifier
from pasar_kit.db import Database
from pasar_kit.testing import serve
from pasar_products.app import create_app
from pasar_products.reservations import expire_reservations
from pasar_products.settings import Settings


@pytest.fixture
async def products_http(
    products_db: Database,
    products_settings: Settings,
    products_verifier: TokenVerifier,
    products_clock: Clock,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app served by uvicorn over real HTTP (its own engine and pool)."""
    app = create_app(products_settings, verifier=products_verifier, clock=products_clock)
    async with serve(app) as url:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            yield client


async def _reserve(
    client: httpx.AsyncClient, tokens: Tokens, items: list[tuple[str, int]], rid: str | None = None
) -> httpx.Response:
    return await client.post(
        "/internal/reservations",
        json={
            "reservation_id": rid or str(uuid.uuid4()),
            "items": [{"product_id": p, "quantity": q} for p, q in items],
        },
        headers=tokens.service(),
    )


async def _assert_invariant(catalogue: Catalogue) -> None:
    audit = await catalogue.audit()
    assert audit == {"ok": True, "violations": []}


async def test_100_concurrent_reservations_of_stock_20_hold_exactly_20(
    products_catalogue: Catalogue, products_http: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    product = await products_catalogue.product(stock=20)
    responses = await asyncio.gather(
        *(_reserve(products_http, products_tokens, [(product["id"], 1)]) for _ in range(100))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 20, 409: 80}, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"out_of_stock"}
    assert await products_catalogue.stock(product["id"]) == 0
    await _assert_invariant(products_catalogue)


async def test_40_crossed_two_line_reservations_never_deadlock_or_half_reserve(
    products_catalogue: Catalogue, products_http: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    a = await products_catalogue.product(stock=1000)
    b = await products_catalogue.product(stock=1000)
    requests = [
        [(a["id"], 1), (b["id"], 2)] if i % 2 else [(b["id"], 2), (a["id"], 1)] for i in range(40)
    ]
    responses = await asyncio.gather(
        *(_reserve(products_http, products_tokens, r) for r in requests)
    )
    assert [r.status_code for r in responses] == [201] * 40, [r.text for r in responses][:3]
    assert await products_catalogue.stock(a["id"]) == 1000 - 40
    assert await products_catalogue.stock(b["id"]) == 1000 - 80
    await _assert_invariant(products_catalogue)


async def test_crossed_reservations_under_scarcity_are_all_or_nothing(
    products_catalogue: Catalogue, products_http: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    a = await products_catalogue.product(stock=15)
    b = await products_catalogue.product(stock=1000)
    c = await products_catalogue.product(stock=1000)
    requests = [
        [(a["id"], 1), (b["id"], 1), (c["id"], 1)]
        if i % 2
        else [(c["id"], 1), (b["id"], 1), (a["id"], 1)]
        for i in range(40)
    ]
    responses = await asyncio.gather(
        *(_reserve(products_http, products_tokens, r) for r in requests)
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 15, 409: 25}, statuses
    # No partial reservation: B and C lost exactly what A lost.
    assert await products_catalogue.stock(a["id"]) == 0
    assert await products_catalogue.stock(b["id"]) == 1000 - 15
    assert await products_catalogue.stock(c["id"]) == 1000 - 15
    await _assert_invariant(products_catalogue)


async def test_concurrent_replays_of_one_reservation_hold_stock_once(
    products_catalogue: Catalogue, products_http: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    product = await products_catalogue.product(stock=10)
    responses = await asyncio.gather(
        *(_reserve(products_http, products_tokens, [(product["id"], 3)], "same") for _ in range(20))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 19}, statuses
    assert len({r.text for r in responses}) == 1  # the very same reservation each time
    assert await products_catalogue.stock(product["id"]) == 7
    await _assert_invariant(products_catalogue)


@pytest.mark.parametrize("committed", [False, True])
async def test_concurrent_releases_return_the_stock_once(
    products_catalogue: Catalogue,
    products_http: httpx.AsyncClient,
    products_tokens: Tokens,
    committed: bool,
) -> None:
    a = await products_catalogue.product(stock=10)
    b = await products_catalogue.product(stock=10)
    reserved = await _reserve(products_http, products_tokens, [(a["id"], 4), (b["id"], 6)], "rel")
    assert reserved.status_code == 201
    service = products_tokens.service()
    if committed:
        commit = await products_http.post("/internal/reservations/rel/commit", headers=service)
        assert commit.status_code == 200
    responses = await asyncio.gather(
        *(
            products_http.post("/internal/reservations/rel/release", headers=service)
            for _ in range(30)
        )
    )
    assert [r.status_code for r in responses] == [200] * 30
    assert {r.json()["status"] for r in responses} == {"released"}
    assert await products_catalogue.stock(a["id"]) == 10
    assert await products_catalogue.stock(b["id"]) == 10
    await _assert_invariant(products_catalogue)


async def test_commit_racing_release_ends_in_one_consistent_state(
    products_catalogue: Catalogue, products_http: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    product = await products_catalogue.product(stock=50)
    service = products_tokens.service()
    ids = [f"race-{i}" for i in range(10)]
    for rid in ids:
        assert (
            await _reserve(products_http, products_tokens, [(product["id"], 2)], rid)
        ).is_success
    calls = [
        products_http.post(f"/internal/reservations/{rid}/{action}", headers=service)
        for rid in ids
        for action in ("commit", "release", "commit", "release")
    ]
    responses = await asyncio.gather(*calls)
    # A commit that loses to a release is refused; nothing else can go wrong.
    assert {r.status_code for r in responses} <= {200, 409}
    assert all(
        r.json()["code"] == "reservation_released" for r in responses if r.status_code == 409
    )
    assert await products_catalogue.stock(product["id"]) == 50  # every one ends released
    await _assert_invariant(products_catalogue)


async def test_two_expiry_workers_release_each_reservation_once(
    products_catalogue: Catalogue,
    products_http: httpx.AsyncClient,
    products_tokens: Tokens,
    products_db_url: str,
    products_clock: Clock,
) -> None:
    a = await products_catalogue.product(stock=500)
    b = await products_catalogue.product(stock=500)
    for i in range(60):
        items = [(a["id"], 1 + i % 3), (b["id"], 2)] if i % 2 else [(b["id"], 1), (a["id"], 1)]
        assert (await _reserve(products_http, products_tokens, items, f"exp-{i}")).is_success
    products_clock.advance(3600)
    replicas = [Database(products_db_url), Database(products_db_url)]  # two service processes
    service = products_tokens.service()

    async def worker(db: Database) -> int:
        released = 0
        while True:
            done = await expire_reservations(db=db, now=products_clock.now, batch_size=7)
            if done == 0:
                return released
            released += done

    try:
        workers, releases = await asyncio.gather(
            asyncio.gather(worker(replicas[0]), worker(replicas[1])),
            # Clients releasing some of the same reservations at the same moment.
            asyncio.gather(
                *(
                    products_http.post(f"/internal/reservations/exp-{i}/release", headers=service)
                    for i in range(0, 60, 4)
                )
            ),
        )
    finally:
        for db in replicas:
            await db.dispose()
    by_workers = sum(workers)
    assert all(r.status_code == 200 for r in releases)
    assert 60 - len(releases) <= by_workers <= 60
    assert await products_catalogue.stock(a["id"]) == 500
    assert await products_catalogue.stock(b["id"]) == 500
    for i in range(60):
        read = await products_http.get(f"/internal/reservations/exp-{i}", headers=service)
        assert read.json()["status"] == "released"
    await _assert_invariant(products_catalogue)


async def test_reservations_racing_restocks_and_write_offs_keep_the_invariant(
    products_catalogue: Catalogue, products_http: httpx.AsyncClient, products_tokens: Tokens
) -> None:
    product = await products_catalogue.product(stock=30)
    admin = products_tokens.admin()
    url = f"/products/{product['id']}/stock-adjustments"
    deltas: list[int | None] = []  # a stock delta, or None for a reservation of one unit
    calls = []
    for i in range(60):
        if i % 3 == 0:
            delta = 3 if i % 2 else -2
            deltas.append(delta)
            calls.append(
                products_http.post(url, json={"delta": delta, "reason": "count"}, headers=admin)
            )
        else:
            deltas.append(None)
            calls.append(_reserve(products_http, products_tokens, [(product["id"], 1)]))
    responses = await asyncio.gather(*calls)
    applied = reserved = 0
    for asked, response in zip(deltas, responses, strict=True):
        if asked is None:
            assert response.status_code in (201, 409), response.text
            if response.status_code == 201:
                reserved += 1
            else:
                assert response.json()["code"] == "out_of_stock", response.text
        else:
            assert response.status_code in (200, 409), response.text
            if response.status_code == 200:
                applied += asked
            else:
                assert response.json()["code"] == "insufficient_stock", response.text
    # Exactly what the answers said happened: each 200 adjustment and each 201 hold once.
    stock = await products_catalogue.stock(product["id"])
    assert stock == 30 + applied - reserved, (stock, applied, reserved)
    assert stock >= 0
    await _assert_invariant(products_catalogue)
