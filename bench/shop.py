"""Load scenarios against the real shop: `pasar up` on a scratch data dir, then

* token endpoint: sequential password grants (argon2id dominates);
* catalogue: GET /products at concurrency 32;
* placement: POST /orders at concurrency 32 from 32 customers;
* notification delay: from a 201 to the notification being readable in the inbox.

Usage: python bench/shop.py [--orders 2000] [--concurrency 32] [--db sqlite|mariadb|postgres]
Prints figures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from shoplib import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    free_base_port,
    start_shop,
)

ADDRESS = {"recipient": "Bench", "line1": "Jl. Bench 1", "city": "Jakarta",
           "postal_code": "10110", "country": "ID", "phone": "+62800000000"}  # fmt: skip


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def report(name: str, latencies: list[float], elapsed: float, statuses: dict[int, int]) -> None:
    print(
        f"{name:<22} {len(latencies) / elapsed:8.1f} req/s   p50 {pct(latencies, 0.5):6.1f} ms"
        f"   p99 {pct(latencies, 0.99):6.1f} ms   statuses {dict(sorted(statuses.items()))}"
    )


async def timed(session: aiohttp.ClientSession, method: str, url: str, **kw: object):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    async with session.request(method, url, **kw) as response:  # type: ignore[arg-type]
        body = await response.json(content_type=None)
        return response.status, body, time.perf_counter() - started


async def run(args: argparse.Namespace, shop_urls: dict[str, str]) -> None:
    users, products, orders = shop_urls["users"], shop_urls["products"], shop_urls["orders"]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s:
        # Token endpoint, sequential.
        lat = []
        t0 = time.perf_counter()
        for _ in range(20):
            status, body, took = await timed(
                s, "POST", f"{users}/auth/token",
                data={"grant_type": "password", "username": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            )  # fmt: skip
            assert status == 200, body
            lat.append(took)
        report("token (password)", lat, time.perf_counter() - t0, {200: 20})
        admin = body["access_token"]

        # A product with plenty of stock.
        status, product, _ = await timed(
            s, "POST", f"{products}/products", headers={"Authorization": f"Bearer {admin}"},
            json={"sku": f"BENCH-{uuid.uuid4().hex[:6]}", "name": "Bench item", "price": 1000,
                  "stock": 10_000_000, "category": "Bench"},
        )  # fmt: skip
        assert status == 201, product

        # Customers.
        tokens = []
        for i in range(args.concurrency):
            email = f"bench-{uuid.uuid4().hex[:8]}-{i}@example.com"
            await timed(s, "POST", f"{users}/auth/register",
                        json={"email": email, "password": "bench-pass-1", "full_name": "Bench"})  # fmt: skip
            status, body, _ = await timed(
                s, "POST", f"{users}/auth/token",
                data={"grant_type": "password", "username": email, "password": "bench-pass-1"},
            )  # fmt: skip
            tokens.append(body["access_token"])

        async def load(name: str, n: int, make):  # type: ignore[no-untyped-def]
            lat: list[float] = []
            statuses: dict[int, int] = {}
            queue = iter(range(n))

            async def worker(w: int) -> None:
                for i in queue:
                    status, _body, took = await make(w, i)
                    lat.append(took)
                    statuses[status] = statuses.get(status, 0) + 1

            t0 = time.perf_counter()
            await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
            report(name, lat, time.perf_counter() - t0, statuses)

        await load("catalogue GET /products", args.orders,
                   lambda w, i: timed(s, "GET", f"{products}/products?limit=20&sort=price"))  # fmt: skip

        placed: list[tuple[str, str, float]] = []

        async def place(w: int, i: int):  # type: ignore[no-untyped-def]
            status, body, took = await timed(
                s, "POST", f"{orders}/orders",
                headers={"Authorization": f"Bearer {tokens[w]}", "Idempotency-Key": uuid.uuid4().hex},
                json={"items": [{"product_id": product["id"], "quantity": 1}],
                      "shipping_address": ADDRESS},
            )  # fmt: skip
            if status == 201:
                placed.append((tokens[w], body["id"], time.perf_counter()))
            return status, body, took

        await load("placement POST /orders", args.orders, place)

        # Notification delay: place one order at a time and poll its inbox.
        delays = []
        for w in range(10):
            t_start = time.perf_counter()
            status, order, _ = await place(w, 0)
            assert status == 201, order
            while True:
                _, inbox, _ = await timed(
                    s, "GET", f"{users}/users/me/notifications?limit=5",
                    headers={"Authorization": f"Bearer {tokens[w]}"},
                )  # fmt: skip
                if any(n["order_id"] == order["id"] for n in inbox["items"]):
                    break
                await asyncio.sleep(0.002)
            delays.append(time.perf_counter() - t_start)
        print(f"{'notification delay':<22} p50 {pct(delays, 0.5):6.1f} ms   max {max(delays) * 1000:6.1f} ms"
              " (from POST /orders sent to the notification readable)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--db", default=os.environ.get("PASAR_TEST_DB", "sqlite"))
    args = parser.parse_args()
    os.environ["PASAR_TEST_DB"] = args.db
    from shoplib import database_env

    with TemporaryDirectory() as tmp, ExitStack() as stack:
        env = database_env(stack, Path(tmp))
        env.update({"USERS_LOG_LEVEL": "WARNING", "PRODUCTS_LOG_LEVEL": "WARNING",
                    "ORDERS_LOG_LEVEL": "WARNING"})  # fmt: skip
        shop = start_shop(Path(tmp) / "var", free_base_port(), env)
        try:
            print(f"pasar bench on {args.db}: {args.orders} requests per scenario, "
                  f"concurrency {args.concurrency}, {os.cpu_count()} cores")  # fmt: skip
            asyncio.run(run(args, {n: shop.url(n) for n in ("users", "products", "orders")}))
        finally:
            shop.stop()


if __name__ == "__main__":
    main()
