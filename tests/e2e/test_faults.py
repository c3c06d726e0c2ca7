"""Faults at process level: kill -9 and SIGSTOP of products, users and orders while the
shop is busy, then checks that nothing is lost, doubled or left behind.

One `pasar serve` process per service (on SQLite too), shared by the tests of this
module; each test creates its own products and customers and heals the shop (resume,
restart) when it ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from shoplib import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Fleet,
    ServiceProcess,
    all_pages,
    asked_for,
    bearer,
    create_product_async,
    eventually_async,
    held_units,
    login_async,
    orders_env,
    place_order_async,
    prepare_databases,
    products_env,
    register_async,
    stock_audit_async,
    unfinished_placements,
    users_env,
)

from pasar_kit.testing import fresh_database

pytestmark = pytest.mark.e2e

RESERVATION_TTL = 3
PLACING_DEADLINE = 3
# Timeouts short enough that a hanging dependency turns into 503 within seconds.
ORDERS_SETTINGS = {
    "ORDERS_HTTP_TIMEOUT": "2",
    "ORDERS_HTTP_CONNECT_TIMEOUT": "0.5",
    "ORDERS_CIRCUIT_RESET_SECONDS": "1",
    "ORDERS_PLACING_DEADLINE_SECONDS": str(PLACING_DEADLINE),
    "ORDERS_RECOVERY_INTERVAL_SECONDS": "0.5",
    "ORDERS_OUTBOX_INTERVAL_SECONDS": "0.5",
    "ORDERS_OUTBOX_BACKOFF_BASE_SECONDS": "0.2",
    "ORDERS_OUTBOX_BACKOFF_MAX_SECONDS": "2",
}
PRODUCTS_SETTINGS = {
    "PRODUCTS_RESERVATION_TTL_SECONDS": str(RESERVATION_TTL),
    "PRODUCTS_EXPIRY_INTERVAL_SECONDS": "0.5",
}
# Generous: the machine is shared and busy; these bound waits, they assert no timing.
SETTLE = 90.0


@dataclass
class FaultShop:
    processes: dict[str, ServiceProcess]
    database_urls: dict[str, str]
    faults: Counter[str] = field(default_factory=Counter)

    def url(self, name: str) -> str:
        return self.processes[name].url

    def inject(self, fault: str, name: str) -> None:
        process = self.processes[name]
        if fault == "kill -9":
            process.kill()
        elif fault == "SIGSTOP":
            process.pause()
        else:
            raise ValueError(fault)
        self.faults[f"{fault} {name}"] += 1

    def heal(self) -> None:
        """Every process running and answering again (also after a failed test)."""
        for process in self.processes.values():
            process.resume()
            if not process.alive():
                process.start()
        for process in self.processes.values():
            process.wait_ready()


@pytest.fixture(scope="module")
def fault_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultShop]:
    directory = tmp_path_factory.mktemp("faults")
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(fresh_database(f"faults_{name}", directory))
            for name in ("users", "products", "orders")
        }
        prepare_databases(urls)
        fleet = stack.enter_context(Fleet(directory))
        secret = secrets.token_urlsafe(24)
        users = fleet.add("users", users_env(urls["users"], secret))
        products = fleet.add(
            "products", products_env(urls["products"], users.url, **PRODUCTS_SETTINGS)
        )
        orders = fleet.add(
            "orders",
            orders_env(urls["orders"], users.url, products.url, secret, **ORDERS_SETTINGS),
        )
        # As `pasar up` does: users first, whose JWKS the others fetch when they start.
        users.start()
        users.wait_ready()
        fleet.start_all()
        shop = FaultShop({"users": users, "products": products, "orders": orders}, urls)
        yield shop
        print(
            f"\nfaults: injected={sum(shop.faults.values())} {dict(shop.faults)} "
            f"restarts={ {p.name: p.starts - 1 for p in fleet.processes} }"
        )


@pytest.fixture
def shop(fault_shop: FaultShop, request: pytest.FixtureRequest) -> Iterator[FaultShop]:
    failed_before = request.session.testsfailed
    yield fault_shop
    if request.session.testsfailed > failed_before:
        for process in fault_shop.processes.values():
            print(f"--- {process.name} ---\n{process.log_tail()}")
    fault_shop.heal()


@dataclass
class Case:
    """One test's own admin token, customers and products."""

    http: httpx.AsyncClient
    admin: str
    customers: list[tuple[str, str]]  # (user id, token)
    products: dict[str, int]  # product id -> initial stock
    rng: random.Random

    def items(self) -> list[dict[str, Any]]:
        chosen = self.rng.sample(list(self.products), self.rng.randint(1, len(self.products)))
        return [{"product_id": pid, "quantity": self.rng.randint(1, 3)} for pid in chosen]


async def new_case(
    http: httpx.AsyncClient, shop: FaultShop, *, customers: int, products: int, stock: int
) -> Case:
    admin = await login_async(http, shop.url("users"), ADMIN_EMAIL, ADMIN_PASSWORD)
    tag = secrets.token_hex(4)
    people = [
        await register_async(http, shop.url("users"), f"fault-{tag}-{n}@example.com")
        for n in range(customers)
    ]
    created = [
        await create_product_async(http, shop.url("products"), admin, stock=stock)
        for _ in range(products)
    ]
    return Case(http, admin, people, {str(p["id"]): stock for p in created}, random.Random(tag))


@dataclass
class Attempt:
    customer: int
    items: list[dict[str, Any]]
    during: str  # what was being done to the shop when the request was sent
    status: int | None = None  # None: no HTTP answer at all (the process died)
    body: Any = None
    retry_after: str | None = None
    error: str | None = None
    seconds: float = 0.0  # measured for the report, never asserted on


class Burst:
    """Concurrent placements; ``during()`` labels each with the fault state at send time."""

    def __init__(
        self,
        case: Case,
        orders_url: str,
        *,
        count: int,
        concurrency: int,
        during: Callable[[], str] = lambda: "normal",
    ) -> None:
        self.case = case
        self.orders_url = orders_url
        self.count = count
        self.semaphore = asyncio.Semaphore(concurrency)
        self.during = during
        self.attempts: list[Attempt] = []

    @property
    def answered(self) -> int:
        return sum(1 for a in self.attempts if a.status is not None or a.error is not None)

    async def run(self) -> list[Attempt]:
        await asyncio.gather(*(self._one(n) for n in range(self.count)))
        return self.attempts

    async def _one(self, n: int) -> None:
        async with self.semaphore:
            customer = n % len(self.case.customers)
            attempt = Attempt(customer, self.case.items(), self.during())
            self.attempts.append(attempt)
            token = self.case.customers[customer][1]
            started = time.monotonic()
            try:
                response = await place_order_async(
                    self.case.http, self.orders_url, token, attempt.items
                )
            except httpx.TransportError as exc:
                attempt.error = type(exc).__name__
                return
            finally:
                attempt.seconds = time.monotonic() - started
            attempt.status = response.status_code
            attempt.body = response.json()
            attempt.retry_after = response.headers.get("retry-after")

    async def until_answered(self, count: int, task: asyncio.Task[Any]) -> None:
        deadline = time.monotonic() + SETTLE
        while self.answered < count and not task.done():
            assert time.monotonic() < deadline, f"only {self.answered} answers"
            await asyncio.sleep(0.02)


def created(attempts: list[Attempt]) -> list[Attempt]:
    return [a for a in attempts if a.status == 201]


def assert_only_expected_answers(attempts: list[Attempt], *, transport_errors: bool) -> None:
    """201, 409 out_of_stock or 503 dependency_unavailable with Retry-After; never a 500."""
    for a in attempts:
        if a.status is None:
            assert transport_errors, a
            continue
        assert a.status in (201, 409, 503), (a.status, a.body)
        if a.status == 409:
            assert a.body["code"] == "out_of_stock", a.body
        if a.status == 503:
            assert a.body["code"] == "dependency_unavailable", a.body
            assert a.retry_after is not None and int(a.retry_after) >= 1, a


async def place_surely(case: Case, orders_url: str, customer: int) -> dict[str, Any]:
    """One order while nothing is broken (a busy machine may still time out: try again)."""
    for _ in range(10):
        response = await place_order_async(
            case.http, orders_url, case.customers[customer][1], case.items()
        )
        if response.status_code == 201:
            return dict(response.json())
        assert response.status_code == 503, response.text
        await asyncio.sleep(1)
    raise AssertionError("no order could be placed")


async def orders_of(case: Case, shop: FaultShop) -> dict[str, dict[str, Any]]:
    """Every order the shop holds for this case's customers, as the admin lists them."""
    found: dict[str, dict[str, Any]] = {}
    for user_id, _token in case.customers:
        for order in await all_pages(
            case.http, f"{shop.url('orders')}/orders", case.admin, user_id=user_id
        ):
            found[str(order["id"])] = order
    return found


async def assert_settled(
    case: Case,
    shop: FaultShop,
    attempts: list[Attempt],
    *,
    changed: dict[str, list[str]] | None = None,
    lost_answers: bool = False,
) -> tuple[dict[str, dict[str, Any]], int]:
    """After the shop healed: every 201 order intact, in the status last asked for
    (``changed``: the status changes each order was answered 200 for, in order); nothing
    else left unless its answer was lost in a crash; no held stock (TTL passed); stock adds
    up; every notification stored once. Returns the orders held and how many notifications
    they made."""
    http = case.http
    changed = changed or {}
    orders = await orders_of(case, shop)
    placed = {str(a.body["id"]): a for a in created(attempts)}
    if lost_answers:
        assert set(placed) <= set(orders)
    else:
        assert set(orders) == set(placed), "a failed placement left an order"
    for order_id, attempt in placed.items():
        token = case.customers[attempt.customer][1]
        response = await http.get(f"{shop.url('orders')}/orders/{order_id}", headers=bearer(token))
        assert response.status_code == 200, response.text
        lines = {(i["product_id"], i["quantity"]) for i in response.json()["items"]}
        assert lines == {(i["product_id"], i["quantity"]) for i in attempt.items}
    final = {order_id: order["status"] for order_id, order in orders.items()}
    assert final == {order_id: asked_for(changed, order_id)[-1] for order_id in orders}, final

    sold: Counter[str] = Counter()
    for order in orders.values():
        if order["status"] != "cancelled":
            for item in order["items"]:
                sold[item["product_id"]] += item["quantity"]

    async def stock_settled() -> bool:
        assert await unfinished_placements(shop.database_urls["orders"]) == 0, "placing"
        held = await held_units(shop.database_urls["products"], list(case.products))
        assert held == 0, f"{held} units still held"
        for pid, initial in case.products.items():
            product = (await http.get(f"{shop.url('products')}/products/{pid}")).json()
            assert product["stock"] == initial - sold[pid], (product["stock"], initial, sold[pid])
        return True

    await eventually_async(stock_settled, timeout=SETTLE)
    await stock_audit_async(http, shop.url("products"), case.admin)
    return orders, await assert_notified_once(case, shop, orders, changed)


async def assert_notified_once(
    case: Case,
    shop: FaultShop,
    orders: dict[str, dict[str, Any]],
    changed: dict[str, list[str]],
) -> int:
    """Each status the test put each order in (its placement, then ``changed``) in its
    owner's inbox, exactly once."""
    owner = {user_id: n for n, (user_id, _token) in enumerate(case.customers)}
    expected: list[Counter[tuple[str, str]]] = [Counter() for _ in case.customers]
    for order_id, order in orders.items():
        for status in asked_for(changed, order_id):
            expected[owner[order["user_id"]]][(order_id, status)] += 1

    async def inboxes() -> int:
        total = 0
        for n, (_user_id, token) in enumerate(case.customers):
            notes = await all_pages(case.http, f"{shop.url('users')}/users/me/notifications", token)
            got = Counter((str(x["order_id"]), str(x["status"])) for x in notes)
            assert all(v == 1 for v in got.values()), f"customer {n} has a duplicate"
            assert got == expected[n], f"customer {n}: {sorted(got.items())[:3]}"
            total += len(notes)
        return total or -1  # truthy even when there was nothing to deliver

    return int(await eventually_async(inboxes, timeout=SETTLE, interval=0.5))


async def test_products_killed_during_placements_then_restarted(shop: FaultShop) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        case = await new_case(http, shop, customers=4, products=2, stock=200)
        state = "before"
        burst = Burst(case, shop.url("orders"), count=60, concurrency=12, during=lambda: state)
        task = asyncio.create_task(burst.run())
        await burst.until_answered(5, task)
        shop.inject("kill -9", "products")
        state = "down"
        await burst.until_answered(burst.answered + 5, task)
        shop.processes["products"].start()
        await asyncio.to_thread(shop.processes["products"].wait_ready)
        state = "restarted"
        attempts = await task
        assert_only_expected_answers(attempts, transport_errors=False)
        # The kill overlapped the burst: placements were sent while products was down,
        # and the outage was felt (a refusal; some may reach the restarted products).
        while_down = [a for a in attempts if a.during == "down"]
        assert while_down, "the burst ended before products was killed"
        assert any(a.status == 503 for a in while_down), [a.status for a in while_down]
        stuck = await unfinished_placements(shop.database_urls["orders"])
        # The restarted products serves placements again.
        for n in range(4):
            order = await place_surely(case, shop.url("orders"), n % len(case.customers))
            attempts.append(Attempt(n % len(case.customers), order["items"], "after", 201, order))
        await assert_settled(case, shop, attempts)
    answers = Counter(a.status for a in attempts)
    print(
        f"\nkill -9 products: {dict(answers)} over {len(attempts)} placements, "
        f"{stuck} left placing for recovery"
    )


async def test_products_stopped_placements_answer_503_fast(shop: FaultShop) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        case = await new_case(http, shop, customers=3, products=2, stock=100)
        state = "before"
        burst = Burst(case, shop.url("orders"), count=24, concurrency=6, during=lambda: state)
        task = asyncio.create_task(burst.run())
        await burst.until_answered(4, task)
        shop.inject("SIGSTOP", "products")
        state = "stopped"
        # Every placement finishes while products is still stopped: none may hang.
        attempts = await asyncio.wait_for(task, timeout=SETTLE)
        shop.processes["products"].resume()
        assert_only_expected_answers(attempts, transport_errors=False)
        while_stopped = [a for a in attempts if a.during == "stopped"]
        assert while_stopped
        assert all(a.status == 503 for a in while_stopped), [a.status for a in while_stopped]
        await assert_settled(case, shop, attempts)
    slowest = max(a.seconds for a in while_stopped)
    print(
        f"\nSIGSTOP products: {len(while_stopped)} placements sent while stopped, all 503 "
        f"(slowest answer {slowest:.1f}s)"
    )


async def test_products_killed_during_status_changes(shop: FaultShop) -> None:
    """A cancellation stands while products is down; its stock comes back afterwards."""
    orders_url = shop.url("orders")
    async with httpx.AsyncClient(timeout=60) as http:
        case = await new_case(http, shop, customers=2, products=2, stock=100)
        placed = [await place_surely(case, orders_url, n % 2) for n in range(10)]
        shop.inject("kill -9", "products")
        changed: dict[str, list[str]] = {}
        for n, order in enumerate(placed):
            if n % 2:
                token, status = case.customers[n % 2][1], "cancelled"
                url, body = f"{orders_url}/orders/{order['id']}/cancel", None
            else:
                token, status = case.admin, "shipped"
                url, body = f"{orders_url}/orders/{order['id']}/status", {"status": status}
            response = await http.post(url, headers=bearer(token), json=body)
            assert response.status_code == 200, response.text
            changed[str(order["id"])] = [status]
        shop.processes["products"].start()
        await asyncio.to_thread(shop.processes["products"].wait_ready)
        attempts = [Attempt(n % 2, o["items"], "before", 201, o) for n, o in enumerate(placed)]
        orders, notes = await assert_settled(case, shop, attempts, changed=changed)
    cancelled = sum(1 for o in orders.values() if o["status"] == "cancelled")
    print(f"\nkill -9 products: {cancelled} cancellations stood and released later, {notes} notes")


async def test_users_killed_during_placements(shop: FaultShop) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        case = await new_case(http, shop, customers=3, products=2, stock=200)
        state = "before"
        burst = Burst(case, shop.url("orders"), count=40, concurrency=8, during=lambda: state)
        task = asyncio.create_task(burst.run())
        await burst.until_answered(4, task)
        shop.inject("kill -9", "users")
        state = "down"
        attempts = await asyncio.wait_for(task, timeout=SETTLE)
        assert_only_expected_answers(attempts, transport_errors=False)
        # The kill overlapped the burst, and no placement got past a dead users.
        while_down = [a for a in attempts if a.during == "down"]
        assert while_down, "the burst ended before users was killed"
        assert all(a.status == 503 for a in while_down), [a.status for a in while_down]
        shop.processes["users"].start()
        await asyncio.to_thread(shop.processes["users"].wait_ready)
        _orders, notes = await assert_settled(case, shop, attempts)
    answers = Counter(a.status for a in attempts)
    print(f"\nkill -9 users: placements {dict(answers)}, {notes} notifications once")


async def test_users_killed_during_status_changes(shop: FaultShop) -> None:
    await _users_fault_during_status_changes(shop, "kill -9")


async def test_users_stopped_during_status_changes(shop: FaultShop) -> None:
    await _users_fault_during_status_changes(shop, "SIGSTOP")


async def _users_fault_during_status_changes(shop: FaultShop, fault: str) -> None:
    orders_url = shop.url("orders")
    async with httpx.AsyncClient(timeout=60) as http:
        case = await new_case(http, shop, customers=3, products=1, stock=300)
        placed = [await place_surely(case, orders_url, n % 3) for n in range(12)]
        owner = {str(o["id"]): n % 3 for n, o in enumerate(placed)}
        answers: list[int] = []
        changed: dict[str, list[str]] = {}

        async def change(order_id: str, n: int) -> None:
            if n % 3 == 0:
                token = case.customers[owner[order_id]][1]
                steps = [("cancelled", token)]
            else:
                steps = [("shipped", case.admin), ("completed", case.admin)]
            for status, token in steps:
                if status == "cancelled":
                    url, body = f"{orders_url}/orders/{order_id}/cancel", None
                else:
                    url, body = f"{orders_url}/orders/{order_id}/status", {"status": status}
                response = await http.post(url, headers=bearer(token), json=body)
                answers.append(response.status_code)
                assert response.status_code == 200, response.text
                changed.setdefault(order_id, []).append(status)
                await asyncio.sleep(0.05)

        task = asyncio.gather(*(change(str(o["id"]), n) for n, o in enumerate(placed)))
        deadline = time.monotonic() + SETTLE
        while len(answers) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        shop.inject(fault, "users")
        await task  # every status change succeeds without users

        # Users down: the catalogue still answers; a placement fails fast, leaving nothing.
        catalogue = await http.get(f"{shop.url('products')}/products", params={"limit": 5})
        assert catalogue.status_code == 200, catalogue.text
        refused = await place_order_async(http, orders_url, case.customers[0][1], case.items())
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "dependency_unavailable"
        assert refused.headers.get("retry-after")

        if fault == "kill -9":
            shop.processes["users"].start()
            await asyncio.to_thread(shop.processes["users"].wait_ready)
        else:
            shop.processes["users"].resume()
        attempts = [Attempt(owner[str(o["id"])], o["items"], "before", 201, o) for o in placed]
        # Every order ends in the status last asked for (cancelled or completed).
        _orders, notes = await assert_settled(case, shop, attempts, changed=changed)
    print(f"\n{fault} users: {len(answers)} status changes all 200, {notes} notifications once")


async def test_orders_killed_mid_placement_catalogue_stays_up(shop: FaultShop) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        case = await new_case(http, shop, customers=3, products=2, stock=200)
        burst = Burst(case, shop.url("orders"), count=40, concurrency=10)
        task = asyncio.create_task(burst.run())
        await burst.until_answered(3, task)
        shop.inject("kill -9", "orders")
        attempts = await asyncio.wait_for(task, timeout=SETTLE)
        assert_only_expected_answers(attempts, transport_errors=True)

        # Orders is down: the catalogue is not.
        products = shop.url("products")
        assert (await http.get(f"{products}/products", params={"limit": 5})).status_code == 200
        for pid in case.products:
            assert (await http.get(f"{products}/products/{pid}")).status_code == 200
        assert (await http.get(f"{products}/categories")).status_code == 200

        # Placements the crash cut short: left to the recovery job of the next orders.
        stuck = await unfinished_placements(shop.database_urls["orders"])
        shop.processes["orders"].start()
        await asyncio.to_thread(shop.processes["orders"].wait_ready)
        orders, _notes = await assert_settled(case, shop, attempts, lost_answers=True)
    errors = Counter(a.error for a in attempts if a.status is None)
    print(
        f"\nkill -9 orders: {len(created(attempts))} answered 201, no answer {dict(errors)}, "
        f"{stuck} placements stuck and recovered, "
        f"{len(orders) - len(created(attempts))} unanswered ones had completed"
    )
