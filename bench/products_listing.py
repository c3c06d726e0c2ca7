"""GET /products at 100,000 products, through a real uvicorn server.

Seeds a scratch database (created and dropped, like the test suite's) and times a few
listing queries with concurrent clients, printing p50/p99 latency and requests/s:

    .venv/bin/python bench/products_listing.py --db mariadb
    .venv/bin/python bench/products_listing.py --db sqlite --products 100000 --requests 400

The client runs on the same machine as the server, so it takes some of the CPU.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import aiohttp
import benchlib

SCENARIOS = {
    "default page": "/products",
    "category + sort -price": "/products?category=Elektronik&sort=-price",
    "price range + in stock": "/products?min_price=5000000&max_price=20000000&in_stock=true",
    "newest, page 50": "/products?sort=-created_at&limit=20&offset=1000",
    "search q=kopi": "/products?q=kopi",
    "search q=kopi + category": "/products?q=kopi&category=Makanan%20%26%20Minuman",
}
SORTS = ["name", "-name", "price", "-price", "created_at", "-created_at"]


def varied(rng: random.Random) -> str:
    """A page as shoppers ask for them: any category, any sort, one of the first five."""
    category = rng.choice(benchlib.CATEGORIES).replace(" ", "%20").replace("&", "%26")
    return f"/products?category={category}&sort={rng.choice(SORTS)}&offset={20 * rng.randrange(5)}"


async def run(
    base: str, path: str | None, requests: int, concurrency: int
) -> tuple[list[float], float]:
    """``path`` None: a varied page each request."""
    latencies: list[float] = []
    queue = list(range(requests))
    rng = random.Random(11)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while queue:
                queue.pop()
                began = time.perf_counter()
                async with session.get(base + (path or varied(rng))) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, elapsed


def main() -> None:
    args = benchlib.parse_options(
        __doc__.splitlines()[0], products=100_000, requests=400, concurrency=8
    )
    with benchlib.products_server(args.db, args.products) as (server, base):
        print(f"{'scenario':28} {'p50 ms':>8} {'p99 ms':>8} {'rps':>8} {'CPU ms/req':>10}")
        scenarios: dict[str, str | None] = {"varied pages": None, **SCENARIOS}
        for label, path in scenarios.items():
            asyncio.run(run(base, path, 20, 2))  # warm up
            meter = benchlib.CpuMeter({"products": server.pid})
            latencies, elapsed = asyncio.run(run(base, path, args.requests, args.concurrency))
            cpu = meter.per_request(len(latencies))["products"]
            cuts = statistics.quantiles(latencies, n=100)
            print(
                f"{label:28} {cuts[49] * 1000:8.1f} {cuts[98] * 1000:8.1f}"
                f" {len(latencies) / elapsed:8.0f} {cpu:10.2f}"
            )


if __name__ == "__main__":
    main()
