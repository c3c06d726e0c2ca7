"""Graceful shutdown: SIGTERM to orders and products in the middle of a burst of
placements, as a rolling update does, then both started again.

Every placement is sent with an Idempotency-Key and, like a well-behaved client, sent
again with the same key while no answer comes (the port is closed while the processes
restart). Afterwards: every placement answered 201 exists with its lines and no other
order does; nothing is left ``placing``; no stock is held; stock adds up; every
notification is stored once (the outbox relay finished its batch); each process exited
within its grace period, and /readyz said 503 from the signal on.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from shoplib import (
    Fleet,
    ServiceProcess,
    bearer,
    orders_env,
    prepare_databases,
    products_env,
    users_env,
)
from test_faults import (
    ORDERS_SETTINGS,
    PRODUCTS_SETTINGS,
    SETTLE,
    Attempt,
    Case,
    FaultShop,
    assert_only_expected_answers,
    assert_settled,
    new_case,
)
from testdata import ADDRESS

from pasar_kit.testing import fresh_database

pytestmark = pytest.mark.e2e

GRACE = 8.0
# products keeps serving this long after SIGTERM while its /readyz says 503.
PRODUCTS_DELAY = 1.0


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[FaultShop]:
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(fresh_database(f"shutdown_{name}", tmp_path))
            for name in ("users", "products", "orders")
        }
        prepare_databases(urls)
        fleet = stack.enter_context(Fleet(tmp_path))
        secret = secrets.token_urlsafe(24)
        users = fleet.add("users", users_env(urls["users"], secret))
        products = fleet.add(
            "products",
            products_env(
                urls["products"],
                users.url,
                **PRODUCTS_SETTINGS,
                PRODUCTS_SHUTDOWN_GRACE_SECONDS=str(GRACE),
                PRODUCTS_SHUTDOWN_DELAY_SECONDS=str(PRODUCTS_DELAY),
                PRODUCTS_LOG_LEVEL="INFO",
            ),
        )
        orders = fleet.add(
            "orders",
            orders_env(
                urls["orders"],
                users.url,
                products.url,
                secret,
                **ORDERS_SETTINGS,
                ORDERS_SHUTDOWN_GRACE_SECONDS=str(GRACE),
                ORDERS_LOG_LEVEL="INFO",
            ),
        )
        users.start()
        users.wait_ready()
        fleet.start_all()
        running = FaultShop({"users": users, "products": products, "orders": orders}, urls)
        try:
            yield running
        finally:
            for process in (products, orders):
                print(f"--- {process.name} ---\n{process.log_tail(12)}")


@dataclass
class Sent:
    attempt: Attempt
    key: str
    first_sent: float
    tries: int = 0
    answered_at: float = 0.0
    first_ended_at: float = 0.0
    first_error: str | None = None


async def place_until_answered(case: Case, orders_url: str, customer: int, log: list[Sent]) -> None:
    """One placement, sent again with its key whenever no HTTP answer came."""
    sent = Sent(Attempt(customer, case.items(), "burst"), str(uuid.uuid4()), time.monotonic())
    log.append(sent)
    deadline = time.monotonic() + SETTLE
    while True:
        sent.tries += 1
        try:
            response = await case.http.post(
                f"{orders_url}/orders",
                headers={**bearer(case.customers[customer][1]), "Idempotency-Key": sent.key},
                json={"items": sent.attempt.items, "shipping_address": ADDRESS},
            )
        except httpx.TransportError as exc:
            sent.attempt.error = type(exc).__name__
            if sent.tries == 1:
                sent.first_ended_at, sent.first_error = time.monotonic(), sent.attempt.error
            assert time.monotonic() < deadline, f"no answer for {sent.key}"
            await asyncio.sleep(0.2)
            continue
        sent.answered_at = time.monotonic()
        if sent.tries == 1:
            sent.first_ended_at = sent.answered_at
        sent.attempt.status = response.status_code
        sent.attempt.body = response.json()
        sent.attempt.retry_after = response.headers.get("retry-after")
        return


def terminate(process: ServiceProcess) -> float:
    """SIGTERM; how long the process took to exit (blocking: run it in a thread)."""
    assert process.process is not None
    began = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    process.process.wait(timeout=GRACE + 30)
    return time.monotonic() - began


async def test_sigterm_to_orders_and_products_during_placements_loses_nothing(
    shop: FaultShop,
) -> None:
    orders, products = shop.processes["orders"], shop.processes["products"]
    log: list[Sent] = []
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        case = await new_case(http, shop, customers=4, products=2, stock=300)
        count, concurrency = 80, 16
        semaphore = asyncio.Semaphore(concurrency)

        async def one(n: int) -> None:
            async with semaphore:
                await place_until_answered(case, orders.url, n % len(case.customers), log)

        async def all_of_them() -> None:
            await asyncio.gather(*(one(n) for n in range(count)))

        burst = asyncio.create_task(all_of_them())
        while sum(1 for s in log if s.answered_at) < 10:
            assert not burst.done()
            await asyncio.sleep(0.02)

        signalled = time.monotonic()
        exits = asyncio.gather(
            asyncio.to_thread(terminate, orders), asyncio.to_thread(terminate, products)
        )
        # Draining: products answers /readyz with 503 during its pre-stop delay.
        await asyncio.sleep(0.3)
        ready = await http.get(f"{products.url}/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"] == {"shutdown": "draining"}
        orders_took, products_took = await exits
        # In flight at the signal: first sent before it, that try ending after it.
        in_flight = [s for s in log if s.first_sent < signalled < s.first_ended_at]

        # Back in dependency order, as a rolling update brings them (orders started first
        # would answer 503 until products is back: correct, but it proves less).
        products.start()
        await asyncio.to_thread(products.wait_ready)
        orders.start()
        await asyncio.to_thread(orders.wait_ready)
        await asyncio.wait_for(burst, timeout=SETTLE)

        attempts = [s.attempt for s in log]
        assert len(attempts) == count
        # Every placement got an answer in the end, and never a 500.
        assert_only_expected_answers(attempts, transport_errors=False)
        await assert_settled(case, shop, attempts)

    # Within the grace period (the exit of the interpreter itself included).
    assert orders_took < GRACE, orders_took
    assert products_took < GRACE, products_took
    assert products_took >= PRODUCTS_DELAY  # it kept serving through its delay
    # Requests in flight at the signal were finished and answered by servers that took no
    # new ones by then. (A request still unread on a kept-alive connection when the server
    # closes it is lost to the server, HTTP/1.1's own race: the client sends it again.)
    finished = [s for s in in_flight if s.first_error is None]
    assert finished, f"of {len(in_flight)} placements in flight at the signal none finished"
    dropped = Counter(s.first_error for s in in_flight if s.first_error)
    answers = Counter(s.attempt.status for s in log)
    resent = sum(1 for s in log if s.tries > 1)
    print(
        f"\nSIGTERM orders+products: {dict(answers)} over {count} placements; "
        f"{len(finished)} of {len(in_flight)} in flight at the signal finished "
        f"(unread ones dropped: {dict(dropped)}); {resent} sent again "
        f"(no answer while down); exits: orders {orders_took:.2f}s, products "
        f"{products_took:.2f}s (grace {GRACE:.0f}s, products delay {PRODUCTS_DELAY:.0f}s)"
    )
