"""Load scenarios against the real shop: `pasar up` on a scratch data dir, then

* token endpoint: sequential password grants (argon2id dominates);
* catalogue: GET /products at concurrency 32;
* placement: POST /orders at concurrency 32 from 32 customers;
* notification delay: from a 201 to the notification being readable in the inbox.

Catalogue and placement print, beside throughput and latency, the CPU milliseconds per
request (per order) of each process, from /proc: users, products, orders, web and, on a
database server, "db" (mariadbd, or every PostgreSQL process summed: the machine's server,
so whatever else uses it meanwhile counts too).

Usage: python bench/shop.py [--orders 2000] [--concurrency 32] [--db sqlite|mariadb|postgres]
Prints figures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import aiohttp
import benchlib
from benchlib import ADDRESS, ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, CpuMeter, pct


def report(
    name: str, latencies: list[float], elapsed: float, statuses: dict[int, int], cpu: str = ""
) -> None:
    print(
        f"{name:<22} {len(latencies) / elapsed:8.1f} req/s   p50 {pct(latencies, 0.5):6.1f} ms"
        f"   p99 {pct(latencies, 0.99):6.1f} ms   statuses {dict(sorted(statuses.items()))}"
        + (f"   {cpu}" if cpu else "")
    )


async def timed(session: aiohttp.ClientSession, method: str, url: str, **kw: object):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    async with session.request(method, url, **kw) as response:  # type: ignore[arg-type]
        body = await response.json(content_type=None)
        return response.status, body, time.perf_counter() - started


async def run(args: argparse.Namespace, shop_urls: dict[str, str], cpu: CpuMeter) -> None:
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
                        json={"email": email, "password": PASSWORD, "full_name": "Bench"})  # fmt: skip
            status, body, _ = await timed(
                s, "POST", f"{users}/auth/token",
                data={"grant_type": "password", "username": email, "password": PASSWORD},
            )  # fmt: skip
            tokens.append(body["access_token"])

        async def load(name: str, n: int, make, per: str):  # type: ignore[no-untyped-def]
            lat: list[float] = []
            statuses: dict[int, int] = {}
            queue = iter(range(n))

            async def worker(w: int) -> None:
                for i in queue:
                    status, _body, took = await make(w, i)
                    lat.append(took)
                    statuses[status] = statuses.get(status, 0) + 1

            cpu.snapshot()
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
            elapsed = time.perf_counter() - t0
            report(name, lat, elapsed, statuses, f"CPU ms/{per}: {cpu.report(n)}")

        await load("catalogue GET /products", args.orders,
                   lambda w, i: timed(s, "GET", f"{products}/products?limit=20&sort=price"), "req")  # fmt: skip

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

        await load("placement POST /orders", args.orders, place, "order")

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
    args = benchlib.parse_options(orders=2000, concurrency=32)
    with benchlib.running_shop(args.db) as shop:
        cpu = benchlib.shop_meter(shop, args.db)
        print(f"pasar bench on {args.db}: {args.orders} requests per scenario, "
              f"concurrency {args.concurrency}, {os.cpu_count()} cores")  # fmt: skip
        asyncio.run(run(args, {n: shop.url(n) for n in ("users", "products", "orders")}, cpu))


if __name__ == "__main__":
    main()
