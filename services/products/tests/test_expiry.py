"""Held reservations expire: the worker returns their stock, a late commit is refused."""

from __future__ import annotations

import asyncio

import httpx
from products_support import Catalogue, Clock

from pasar_kit.auth import TokenVerifier
from pasar_kit.db import Database
from pasar_kit.testing import lifespan_of
from pasar_products.app import create_app
from pasar_products.reservations import expire_reservations
from pasar_products.settings import Settings


async def _status(catalogue: Catalogue, reservation_id: str) -> str:
    response = await catalogue.client.get(
        f"/internal/reservations/{reservation_id}", headers=catalogue.tokens.service()
    )
    assert response.status_code == 200
    return str(response.json()["status"])


async def test_worker_releases_only_expired_held_reservations(
    products_catalogue: Catalogue, products_db: Database, products_clock: Clock
) -> None:
    a = await products_catalogue.product(stock=10)
    await products_catalogue.reserve([(a["id"], 1)], "short", ttl_seconds=60)
    await products_catalogue.reserve([(a["id"], 2)], "long", ttl_seconds=3600)
    await products_catalogue.reserve([(a["id"], 3)], "committed", ttl_seconds=60)
    await products_catalogue.reserve([(a["id"], 4)], "committed-at-once", commit=True)
    service = products_catalogue.tokens.service()
    await products_catalogue.client.post("/internal/reservations/committed/commit", headers=service)
    assert await products_catalogue.stock(a["id"]) == 0

    assert await expire_reservations(db=products_db, now=products_clock.now, batch_size=10) == 0
    products_clock.advance(60)  # expires_at == now counts as expired
    assert await expire_reservations(db=products_db, now=products_clock.now, batch_size=10) == 1
    assert await expire_reservations(db=products_db, now=products_clock.now, batch_size=10) == 0

    assert await _status(products_catalogue, "short") == "released"
    assert await _status(products_catalogue, "long") == "held"
    assert await _status(products_catalogue, "committed") == "committed"
    assert await _status(products_catalogue, "committed-at-once") == "committed"
    assert await products_catalogue.stock(a["id"]) == 1
    assert (await products_catalogue.audit())["ok"] is True


async def test_worker_works_in_batches(
    products_catalogue: Catalogue, products_db: Database, products_clock: Clock
) -> None:
    a = await products_catalogue.product(stock=10)
    b = await products_catalogue.product(stock=10)
    for i in range(5):
        await products_catalogue.reserve([(b["id"], 1), (a["id"], 1)], f"r{i}", ttl_seconds=1)
    products_clock.advance(2)
    counts = [
        await expire_reservations(db=products_db, now=products_clock.now, batch_size=2)
        for _ in range(4)
    ]
    assert counts == [2, 2, 1, 0]
    assert await products_catalogue.stock(a["id"]) == 10
    assert await products_catalogue.stock(b["id"]) == 10
    assert (await products_catalogue.audit())["ok"] is True


async def test_commit_after_expiry_releases_and_is_409_reservation_expired(
    products_catalogue: Catalogue, products_db: Database, products_clock: Clock
) -> None:
    a = await products_catalogue.product(stock=3)
    await products_catalogue.reserve([(a["id"], 3)], "late", ttl_seconds=30)
    products_clock.advance(31)
    response = await products_catalogue.client.post(
        "/internal/reservations/late/commit", headers=products_catalogue.tokens.service()
    )
    assert response.status_code == 409
    assert response.json()["code"] == "reservation_expired"
    assert await _status(products_catalogue, "late") == "released"
    assert await products_catalogue.stock(a["id"]) == 3
    # Nothing left for the worker; the stock came back once.
    assert await expire_reservations(db=products_db, now=products_clock.now, batch_size=10) == 0
    again = await products_catalogue.client.post(
        "/internal/reservations/late/commit", headers=products_catalogue.tokens.service()
    )
    assert again.status_code == 409 and again.json()["code"] == "reservation_expired"
    assert (await products_catalogue.audit())["ok"] is True


async def test_commit_after_the_worker_expired_it_is_409_reservation_expired(
    products_catalogue: Catalogue, products_db: Database, products_clock: Clock
) -> None:
    a = await products_catalogue.product(stock=3)
    await products_catalogue.reserve([(a["id"], 1)], "swept", ttl_seconds=5)
    products_clock.advance(5)
    assert await expire_reservations(db=products_db, now=products_clock.now, batch_size=10) == 1
    response = await products_catalogue.client.post(
        "/internal/reservations/swept/commit", headers=products_catalogue.tokens.service()
    )
    assert response.status_code == 409
    assert response.json()["code"] == "reservation_expired"


async def test_release_after_expiry_is_idempotent(
    products_catalogue: Catalogue, products_db: Database, products_clock: Clock
) -> None:
    a = await products_catalogue.product(stock=3)
    await products_catalogue.reserve([(a["id"], 2)], "gone", ttl_seconds=5)
    products_clock.advance(10)
    assert await expire_reservations(db=products_db, now=products_clock.now, batch_size=10) == 1
    response = await products_catalogue.client.post(
        "/internal/reservations/gone/release", headers=products_catalogue.tokens.service()
    )
    assert response.status_code == 200 and response.json()["status"] == "released"
    assert await products_catalogue.stock(a["id"]) == 3


async def test_the_app_runs_the_expiry_worker_in_the_background(
    products_catalogue: Catalogue,
    products_settings: Settings,
    products_verifier: TokenVerifier,
    products_clock: Clock,
) -> None:
    a = await products_catalogue.product(stock=4)
    await products_catalogue.reserve([(a["id"], 4)], "bg", ttl_seconds=10)
    products_clock.advance(11)

    settings = products_settings.model_copy(
        update={"workers_enabled": True, "expiry_interval_seconds": 0.05}
    )
    app = create_app(settings, verifier=products_verifier, clock=products_clock)
    async with lifespan_of(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://products") as client:

            async def stock() -> int:
                return int((await client.get(f"/products/{a['id']}")).json()["stock"])

            async def until_returned() -> None:
                while await stock() != 4:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(until_returned(), timeout=30)
    assert await _status(products_catalogue, "bg") == "released"
