"""Replicas: users x1, products x2 and orders x2 as real processes, each service's
replicas sharing one server database, under 200 concurrent placements.

Skipped on SQLite: replicas of a service share its database, and SQLite is a file that
only processes on one host can share (and then with one writer at a time); the
scale-out story is MariaDB or PostgreSQL (docs/operations.md, "Scaling out").
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from shoplib import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Fleet,
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
    query_database,
    register_async,
    service_token,
    stock_audit_async,
    unfinished_placements,
    users_env,
)

from pasar_kit.testing import backend, fresh_database

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        backend() == "sqlite",
        reason="replicas share one server database (MariaDB or PostgreSQL); not SQLite",
    ),
]

PRODUCTS = 3
STOCK = 60
CUSTOMERS = 20
PLACEMENTS = 200
CONCURRENCY = 32
# Reservations held straight through the products API and never committed: both
# replicas' expiry workers race to return them, and must return each exactly once.
ABANDONED_HOLDS = 20
RESERVATION_TTL = 8


@dataclass
class ReplicaShop:
    users: str
    products: list[str]
    orders: list[str]
    database_urls: dict[str, str]
    orders_secret: str


@pytest.fixture
def replica_shop(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ReplicaShop]:
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(fresh_database(f"replica_{name}", tmp_path))
            for name in ("users", "products", "orders")
        }
        prepare_databases(urls)
        # Entered after the databases, so the processes stop before the databases go.
        fleet = stack.enter_context(Fleet(tmp_path))
        secret = secrets.token_urlsafe(24)
        users = fleet.add("users", users_env(urls["users"], secret))
        products = [
            fleet.add(
                "products",
                products_env(
                    urls["products"],
                    users.url,
                    PRODUCTS_RESERVATION_TTL_SECONDS=str(RESERVATION_TTL),
                    PRODUCTS_EXPIRY_INTERVAL_SECONDS="1",
                ),
            )
            for _ in range(2)
        ]
        # Each orders replica calls one products replica; together they use both.
        orders = [
            fleet.add(
                "orders",
                orders_env(
                    urls["orders"],
                    users.url,
                    products[i % 2].url,
                    secret,
                    ORDERS_OUTBOX_INTERVAL_SECONDS="0.5",
                    ORDERS_RECOVERY_INTERVAL_SECONDS="1",
                    ORDERS_PLACING_DEADLINE_SECONDS="15",
                    ORDERS_OUTBOX_BACKOFF_MAX_SECONDS="2",
                ),
            )
            for i in range(2)
        ]
        # As `pasar up` does: users first, whose JWKS the others fetch when they start.
        users.start()
        users.wait_ready()
        fleet.start_all()
        failed_before = request.session.testsfailed
        yield ReplicaShop(
            users=users.url,
            products=[p.url for p in products],
            orders=[o.url for o in orders],
            database_urls=urls,
            orders_secret=secret,
        )
        if request.session.testsfailed > failed_before:
            for process in fleet.processes:
                print(f"--- {process.name} on {process.port} ---\n{process.log_tail()}")


@dataclass(frozen=True)
class Plan:
    """One placement: who, through which orders replica, what, and what happens next."""

    customer: int
    replica: int
    items: list[dict[str, object]]
    then: str  # "keep", "cancel", "ship" or "race" (cancel and ship at once)


def make_plans(rng: random.Random, product_ids: list[str]) -> list[Plan]:
    plans = []
    for n in range(PLACEMENTS):
        chosen = rng.sample(product_ids, rng.randint(1, 2))
        items: list[dict[str, object]] = [
            {"product_id": pid, "quantity": rng.randint(1, 3)} for pid in chosen
        ]
        then = rng.choices(["keep", "cancel", "ship", "race"], weights=[60, 15, 15, 10])[0]
        plans.append(Plan(n % CUSTOMERS, n % 2, items, then))
    return plans


async def test_two_replicas_of_products_and_orders_under_concurrent_orders(
    replica_shop: ReplicaShop,
) -> None:
    shop = replica_shop
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        admin = await login_async(http, shop.users, ADMIN_EMAIL, ADMIN_PASSWORD)
        products = [
            await create_product_async(http, shop.products[i % 2], admin, stock=STOCK)
            for i in range(PRODUCTS)
        ]
        product_ids = [str(p["id"]) for p in products]
        customers = [
            await register_async(http, shop.users, f"replica-{n}-{seed}@example.com")
            for n in range(CUSTOMERS)
        ]
        plans = make_plans(rng, product_ids)

        statuses: Counter[int] = Counter()
        unexpected: list[str] = []
        unavailable: list[str] = []
        placed: dict[str, Plan] = {}
        changes: Counter[str] = Counter()
        # The status changes each order was answered 200 for: what its history must hold.
        changed: dict[str, list[str]] = {}
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def change(plan: Plan, order_id: str, action: str, replica: int) -> int:
            orders_url = shop.orders[replica]
            if action == "cancel":
                token = customers[plan.customer][1]
                response = await http.post(
                    f"{orders_url}/orders/{order_id}/cancel", headers=bearer(token)
                )
            else:
                response = await http.post(
                    f"{orders_url}/orders/{order_id}/status",
                    headers=bearer(admin),
                    json={"status": "shipped"},
                )
            if response.status_code not in (200, 409):
                unexpected.append(f"{action} {order_id}: {response.status_code} {response.text}")
            elif response.status_code == 409:
                assert response.json()["code"] == "invalid_transition", response.text
            else:
                changed.setdefault(order_id, []).append(
                    "cancelled" if action == "cancel" else "shipped"
                )
            changes[f"{action}:{response.status_code}"] += 1
            return response.status_code

        async def place(plan: Plan) -> None:
            async with semaphore:
                token = customers[plan.customer][1]
                response = await place_order_async(
                    http, shop.orders[plan.replica], token, plan.items
                )
                statuses[response.status_code] += 1
                if response.status_code not in (201, 409, 503):
                    unexpected.append(f"place: {response.status_code} {response.text}")
                    return
                if response.status_code != 201:
                    assert response.json()["code"] in ("out_of_stock", "dependency_unavailable")
                    if response.status_code == 503:
                        unavailable.append(response.json()["detail"])
                    return
                order_id = str(response.json()["id"])
                placed[order_id] = plan
                # Status changes go through the other orders replica than the placement.
                other = 1 - plan.replica
                if plan.then in ("cancel", "ship"):
                    assert await change(plan, order_id, plan.then, other) == 200
                elif plan.then == "race":
                    results = await asyncio.gather(
                        change(plan, order_id, "cancel", plan.replica),
                        change(plan, order_id, "ship", other),
                    )
                    assert sorted(results) == [200, 409], results

        service = await service_token(http, shop.users, "orders", shop.orders_secret)
        holds: Counter[int] = Counter()

        async def hold(n: int) -> None:
            async with semaphore:
                response = await http.post(
                    f"{shop.products[n % 2]}/internal/reservations",
                    headers=bearer(service),
                    json={"reservation_id": f"abandoned-{seed}-{n}",
                          "items": [{"product_id": product_ids[n % PRODUCTS], "quantity": 1}]},
                )  # fmt: skip
                holds[response.status_code] += 1
                if response.status_code not in (201, 409):
                    unexpected.append(f"hold: {response.status_code} {response.text}")

        # The holds are spread through the burst, so they compete with placements.
        work = [place(plan) for plan in plans]
        for n in range(ABANDONED_HOLDS):
            work.insert(n * (len(work) // ABANDONED_HOLDS), hold(n))
        await asyncio.gather(*work)
        assert not unexpected, unexpected[:5]
        assert statuses[201] > 0

        # Every created order is there, whole, and readable through either replica.
        final: dict[str, dict[str, Any]] = {}
        for n, (order_id, plan) in enumerate(placed.items()):
            token = customers[plan.customer][1]
            response = await http.get(
                f"{shop.orders[n % 2]}/orders/{order_id}", headers=bearer(token)
            )
            assert response.status_code == 200, response.text
            order = response.json()
            assert {(i["product_id"], i["quantity"]) for i in order["items"]} == {
                (i["product_id"], i["quantity"]) for i in plan.items
            }
            assert order["total"] == sum(i["line_total"] for i in order["items"])
            # Where the answered changes left it (placed orders are "processing").
            assert order["status"] == asked_for(changed, order_id)[-1], (order, changed)
            final[order_id] = order

        # Failed placements left no order behind: the shop holds exactly the 201s.
        listed = await all_pages(http, f"{shop.orders[0]}/orders", admin)
        assert {str(o["id"]) for o in listed} == set(placed)

        async def no_placement_in_flight() -> bool:
            # A placement that timed out may leave its row to the recovery job.
            return await unfinished_placements(shop.database_urls["orders"]) == 0

        await eventually_async(no_placement_in_flight, timeout=90)

        # No oversell: what live orders hold never exceeds the stock (cancelled units go
        # back on sale, so all orders together may exceed it). And stock == initial - sold
        # once cancelled orders are released and any abandoned hold has expired.
        sold = Counter[str]()
        for order in final.values():
            for item in order["items"]:
                if order["status"] != "cancelled":
                    sold[item["product_id"]] += item["quantity"]
        assert all(sold[pid] <= STOCK for pid in product_ids), sold

        async def stock_settled() -> bool:
            assert await held_units(shop.database_urls["products"], product_ids) == 0
            for products_url in shop.products:
                for pid in product_ids:
                    response = await http.get(f"{products_url}/products/{pid}")
                    assert response.status_code == 200, response.text
                    assert response.json()["stock"] == STOCK - sold[pid], (pid, response.json())
            return True

        await eventually_async(stock_settled, timeout=90)
        for products_url in shop.products:
            await stock_audit_async(http, products_url, admin)
        # The abandoned holds raced the placements for stock, then both products replicas'
        # expiry workers raced to return them: some must have been held for that to happen.
        assert holds[201] > 0, holds
        expired = await query_database(
            shop.database_urls["products"],
            "SELECT count(*) FROM reservations WHERE id LIKE :prefix "
            "AND status = 'released' AND release_reason = 'expired'",
            prefix=f"abandoned-{seed}-%",
        )
        assert int(str(expired[0][0])) == holds[201], (expired, holds)

        # Each status the test put each order in reached its customer's inbox exactly once.
        expected: dict[int, Counter[tuple[str, str]]] = {n: Counter() for n in range(CUSTOMERS)}
        for order_id, plan in placed.items():
            for status in asked_for(changed, order_id):
                expected[plan.customer][(order_id, status)] += 1

        async def inboxes_complete() -> int:
            total = 0
            for n, (_user_id, token) in enumerate(customers):
                notes = await all_pages(http, f"{shop.users}/users/me/notifications", token)
                got = Counter((str(x["order_id"]), str(x["status"])) for x in notes)
                assert not [k for k, v in got.items() if v > 1], f"duplicates for customer {n}"
                assert got == expected[n], f"customer {n}: {len(got)} of {len(expected[n])}"
                total += len(notes)
            return total

        notifications = await eventually_async(inboxes_complete, timeout=90, interval=1)

    print(
        f"\nreplicas: seed={seed} placements={PLACEMENTS} placed={statuses[201]} "
        f"out_of_stock={statuses[409]} unavailable={statuses[503]} "
        f"changes={dict(sorted(changes.items()))} notifications={notifications} "
        f"sold={sum(sold.values())}/{PRODUCTS * STOCK} abandoned_holds_expired={holds[201]} "
        f"503s={Counter(unavailable)}"
    )
