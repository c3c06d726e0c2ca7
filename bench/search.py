"""Catalogue search at 100,000 products, through a real uvicorn server.

Seeds a scratch database (created and dropped, like the test suite's) with the
benchmark's catalogue and drives each kind of search a shopper types with concurrent
clients, printing p50/p99 latency, requests/s and the server's CPU ms per request:

    .venv/bin/python bench/search.py --db postgres
    .venv/bin/python bench/search.py --db sqlite --label after --requests 800

Each request takes one of two sorts and one of the first three pages, and the page
microcache is off (shoppers search many different things, so a search rarely finds its
page cached); the totals cache is on, as in production. With ``--label`` the figures are
kept in ``results/search.json`` under that label and ``results/search.md`` shows every
label side by side. Scenarios the server does not offer (404 or 422) are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from pathlib import Path

import aiohttp
import benchlib

RESULTS = Path(__file__).parent / "results"

# What a shopper types, by kind; see benchlib's catalogue for how often each word occurs.
SCENARIOS = {
    "common word (kopi)": "/products?q=kopi",
    "rare word (durian)": "/products?q=durian",
    "two words (sepatu merah)": "/products?q=sepatu%20merah",
    # Sastrawi reads "kopii" as "kopi" with the suffix -i, so it is found by its root;
    # "kerpik" (keripik) is found only by the spelling correction.
    "typo (kopii)": "/products?q=kopii",
    "typo (kerpik)": "/products?q=kerpik",
    "inflected (berlari)": "/products?q=berlari",
    "by relevance (kopi)": "/products?q=kopi&sort=relevance&limit=20",
    "facets (kopi)": "/products/facets?q=kopi",
    "suggest (kop)": "/products/suggest?q=kop",
}
VARIATIONS = ["&sort=name", "&sort=-price"]


def request_path(path: str, rng: random.Random) -> str:
    """The listing with one of the sorts and pages; other endpoints as they are."""
    if not path.startswith("/products?") or "sort=" in path:
        return path
    return f"{path}{rng.choice(VARIATIONS)}&offset={20 * rng.randrange(3)}"


async def run(base: str, path: str, requests: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    queue = list(range(requests))
    rng = random.Random(5)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while queue:
                queue.pop()
                began = time.perf_counter()
                async with session.get(base + request_path(path, rng)) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{path}: {response.status}")
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, elapsed


async def offered(base: str, path: str) -> tuple[bool, int | None]:
    """Whether the server answers ``path`` (an endpoint or sort it does not have yet is
    404 or 422), and how many products the search found where the answer says."""
    async with aiohttp.ClientSession() as session, session.get(base + path) as response:
        if response.status != 200:
            return False, None
        body = await response.json()
        found = body.get("total") if isinstance(body, dict) else len(body)
        return True, found


def save(label: str, db: str, figures: dict[str, dict[str, float]]) -> None:
    path = RESULTS / "search.json"
    everything = json.loads(path.read_text()) if path.exists() else {}
    everything.setdefault(label, {})[db] = figures
    path.write_text(json.dumps(everything, indent=2, sort_keys=True) + "\n")
    labels = sorted(everything, key=lambda label: (label != "before", label))
    lines = [
        "# Search at 100,000 products, concurrency 8",
        "",
        "Written by `bench/search.py`. Latency in ms (p50 / p99), requests/s, and CPU ms"
        " per request of the products service and of the database server (MariaDB's"
        " mariadbd, every PostgreSQL process; SQLite runs inside the service); one"
        " column per label.",
        "",
        "| database | scenario | " + " | ".join(labels) + " |",
        "|---|---|" + "---|" * len(labels),
    ]
    for database in ("sqlite", "mariadb", "postgres"):
        for scenario in SCENARIOS:
            cells = []
            for each in labels:
                cell = everything[each].get(database, {}).get(scenario)
                cells.append(
                    f"{cell['p50']:.1f} / {cell['p99']:.1f} ms, {cell['rps']:.0f}/s,"
                    f" CPU {cell['cpu']:.2f}"
                    + (f" + db {cell['db_cpu']:.2f}" if cell.get("db_cpu") else "")
                    + f" ms, {cell['found']} found"
                    if cell
                    else "-"
                )
            if any(cell != "-" for cell in cells):
                lines.append(f"| {database} | {scenario} | " + " | ".join(cells) + " |")
    (RESULTS / "search.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "mariadb", "postgres"], default="sqlite")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--label", help="keep the figures in results/ under this name")
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}
    with benchlib.products_server(
        args.db, args.products, {"PRODUCTS_LIST_PAGE_CACHE_SECONDS": "0"}
    ) as (server, base):
        print(
            f"{'scenario':26} {'found':>7} {'p50 ms':>8} {'p99 ms':>8} {'rps':>6} {'CPU ms/req':>10}"
        )
        for scenario, path in SCENARIOS.items():
            exists, found = asyncio.run(offered(base, path))
            if not exists:
                print(f"{scenario:26} (not offered)")
                continue
            asyncio.run(run(base, path, 20, 2))  # warm up
            database = benchlib.DATABASE_SERVERS[args.db]
            meter = benchlib.CpuMeter({"products": server.pid, "db": database})
            latencies, elapsed = asyncio.run(run(base, path, args.requests, args.concurrency))
            used = meter.per_request(len(latencies))
            cpu, db_cpu = used["products"], used["db"]
            cuts = statistics.quantiles(latencies, n=100)
            figures[scenario] = {
                "found": found or 0,
                "p50": cuts[49] * 1000,
                "p99": cuts[98] * 1000,
                "rps": len(latencies) / elapsed,
                "cpu": cpu,
                "db_cpu": db_cpu,
            }
            print(
                f"{scenario:26} {found!s:>7} {cuts[49] * 1000:8.1f} {cuts[98] * 1000:8.1f}"
                f" {len(latencies) / elapsed:6.0f} {cpu:10.2f} {db_cpu:7.2f}"
            )
    if args.label:
        save(args.label, args.db, figures)


if __name__ == "__main__":
    main()
