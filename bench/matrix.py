"""The reference benchmark (`make bench`): every scenario at every concurrency on every
database, driven by wrk, with CPU milliseconds per request for each process.

For each database it starts `pasar up` on a scratch data dir (fresh server databases),
seeds 10,000 products straight into the Product-Service's tables and 100 customers
through the API, and serves `baseline.py` on the same products database. Then, for each
concurrency, wrk (`wrk/pasar.lua`) drives:

  token        POST /auth/token, a customer's password grant (argon2id; reported only)
  detail       GET /products/{id}, any of the 10,000
  listing      GET /products: any category, any sort, one of the first five pages
  search       GET /products?q=<word>
  place        POST /orders: one unit of any product, any customer, a new Idempotency-Key
  place-hot    POST /orders: one unit of the same product every time
  baseline-listing   the listing pages from baseline.py (raw driver, no ORM, no cache)
  baseline-update    baseline.py's guarded `stock = stock - 1` on any product

After every placement run it waits for the saga to settle and checks the books: no
placement left unfinished, every stock unit taken is on an order line, nothing held, and
every outbox event stored once in the users' inboxes. A broken book fails the run.

It prints each figure as it goes and writes `matrix.json`, `matrix.md` and
`placement-latency.png` (with matplotlib from bench/requirements.txt) under --out:

    .venv/bin/python bench/matrix.py --db sqlite mariadb postgres --out bench/results

CPU per request is read from /proc for the services, the database server (mariadbd, or
every PostgreSQL process summed: the machine's, so whatever else uses it counts too) and
baseline.py, and from wrk's own rusage for the client. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import random
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import quote

import aiohttp
import benchlib
from benchlib import (
    ADDRESS,
    PASSWORD,
    CpuMeter,
    RunningShop,
    held_units,
    query_database,
    unfinished_placements,
)

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk" / "pasar.lua"
# Which process answers each scenario.
TARGET = {
    "token": "users",
    "detail": "products",
    "listing": "products",
    "search": "products",
    "place": "orders",
    "place-hot": "orders",
    "baseline-listing": "baseline",
    "baseline-update": "baseline",
}
# The order they run in: the guarded update last, as it takes stock behind the shop's back.
SCENARIOS = list(TARGET)
PLACEMENTS = ("place", "place-hot")
# What each scenario is compared with, at the same concurrency.
BASELINE_OF = {"listing": "baseline-listing", "place": "baseline-update"}
PRODUCT_STOCK = 1_000_000


@dataclass
class Cell:
    """One scenario at one concurrency on one database."""

    db: str
    scenario: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    socket_errors: int
    timeouts: int
    cpu_ms: dict[str, float] = field(default_factory=dict)
    books: str = ""  # the placement check: "" where none ran, else "ok" or what broke


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", nargs="+", default=["sqlite", "mariadb", "postgres"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--scenarios", nargs="+", default=SCENARIOS, choices=SCENARIOS)
    parser.add_argument("--seconds", type=int, default=5, help="per run, after a warm-up")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    return parser.parse_args()


# --- Setting the stage --------------------------------------------------------------


async def add_customers(users: str, count: int) -> tuple[list[str], list[str]]:
    """``count`` customers registered through the API: their emails and access tokens."""
    run = uuid.uuid4().hex[:6]
    emails = [f"bench-{run}-{i}@example.com" for i in range(count)]
    tokens: list[str] = [""] * count
    gate = asyncio.Semaphore(4)  # argon2id: a few at a time, as the users service prefers

    async def one(http: aiohttp.ClientSession, i: int) -> None:
        async with gate:
            profile = {"email": emails[i], "password": PASSWORD, "full_name": f"Pembeli {i}"}
            async with http.post(f"{users}/auth/register", json=profile) as response:
                assert response.status == 201, await response.text()
            grant = {"grant_type": "password", "username": emails[i], "password": PASSWORD}
            async with http.post(f"{users}/auth/token", data=grant) as response:
                assert response.status == 200, await response.text()
                tokens[i] = (await response.json())["access_token"]

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(one(http, i) for i in range(count)))
    return emails, tokens


def write_data(folder: Path, ids: list[str], emails: list[str], tokens: list[str]) -> None:
    """The files wrk/pasar.lua reads: one value per line."""
    rng = random.Random(3)
    pages = []
    for category in benchlib.CATEGORIES:
        for sort in ("name", "-name", "price", "-price", "created_at", "-created_at"):
            for page in range(5):
                pages.append(f"/products?category={quote(category)}&sort={sort}&offset={20 * page}")
    rng.shuffle(pages)
    order = json.dumps({"items": [{"product_id": "@", "quantity": 1}], "shipping_address": ADDRESS})
    prefix, suffix = order.split("@")
    files = {
        "pages.txt": pages,
        "products.txt": ids,
        "hot.txt": ids[:1],
        "terms.txt": benchlib.WORDS,
        "emails.txt": [quote(email) for email in emails],
        "tokens.txt": tokens,
        "password.txt": [quote(PASSWORD)],
        "order.txt": [prefix, suffix],
    }
    for name, lines in files.items():
        (folder / name).write_text("\n".join(lines) + "\n")


# --- One run --------------------------------------------------------------------------


def wrk(url: str, scenario: str, concurrency: int, seconds: int, data: Path) -> dict[str, Any]:
    """wrk's figures for one run, and the CPU seconds it used itself (``client_cpu_s``)."""
    env = {
        **os.environ,
        "BENCH_DATA": str(data),
        "BENCH_SCENARIO": scenario,
        "BENCH_RUN": uuid.uuid4().hex[:8],
    }
    threads = min(2, concurrency)
    command = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds}s",
               "--timeout", "10s", "-s", str(LUA), url]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    figures["client_cpu_s"] = usage.ru_utime + usage.ru_stime
    return figures


def measure(
    db: str, scenario: str, concurrency: int, seconds: int, url: str, data: Path, meter: CpuMeter
) -> Cell:
    meter.snapshot()
    figures = wrk(url, scenario, concurrency, seconds, data)
    requests = max(1, figures["requests"])
    cpu = {name: round(ms, 2) for name, ms in meter.per_request(requests).items()}
    cpu["client"] = round(figures["client_cpu_s"] * 1000 / requests, 2)
    elapsed = figures["duration_us"] / 1e6
    return Cell(
        db=db,
        scenario=scenario,
        concurrency=concurrency,
        requests=figures["requests"],
        seconds=round(elapsed, 2),
        rps=round(figures["requests"] / elapsed, 1),
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        statuses=dict(sorted(figures["statuses"].items())),
        socket_errors=figures["socket_errors"],
        timeouts=figures["timeouts"],
        cpu_ms=cpu,
    )


# --- The books after placements -----------------------------------------------------


async def scalar(url: str, statement: str) -> int:
    return int(str((await query_database(url, statement))[0][0] or 0))


async def check_books(urls: dict[str, str], stock_at_start: int) -> str:
    """Wait (up to a minute) for placements and the outbox to settle, then "ok" or what
    does not add up."""
    deadline = time.monotonic() + 60
    while True:
        unfinished = await unfinished_placements(urls["orders"])
        undelivered = await scalar(
            urls["orders"], "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
        )
        if unfinished == 0 and undelivered == 0:
            break
        if time.monotonic() > deadline:
            return (
                f"after 60 s: {unfinished} placements unfinished, {undelivered} events undelivered"
            )
        await asyncio.sleep(0.2)
    stock = await scalar(urls["products"], "SELECT sum(stock) FROM products")
    ordered = await scalar(
        urls["orders"],
        "SELECT sum(l.quantity) FROM order_lines l JOIN orders o ON o.id = l.order_id"
        " WHERE o.status <> 'cancelled'",
    )
    held = await held_units(urls["products"])
    events = await scalar(urls["orders"], "SELECT count(*) FROM outbox")
    stored = await scalar(
        urls["users"], "SELECT count(*) FROM notifications WHERE type LIKE 'order%'"
    )
    broken = []
    if stock_at_start - stock != ordered:
        broken.append(f"stock taken {stock_at_start - stock} != ordered {ordered}")
    if held:
        broken.append(f"{held} units still held")
    if events != stored:
        broken.append(f"{events} outbox events but {stored} notifications")
    return "; ".join(broken) or "ok"


# --- One database -------------------------------------------------------------------


def bench_database(db: str, args: argparse.Namespace, cells: list[Cell]) -> None:
    env = {
        "USERS_REGISTRATIONS_PER_ADDRESS": "100000",
        "USERS_ACCESS_TOKEN_TTL_SECONDS": "7200",
    }
    with benchlib.shop_and_databases(db, env) as (shop, urls):
        began = time.perf_counter()
        ids = asyncio.run(
            benchlib.seed_products(urls["products"], args.products, stock=PRODUCT_STOCK)
        )
        emails, tokens = asyncio.run(add_customers(shop.url("users"), args.customers))
        print(f"{db}: {len(ids)} products and {len(tokens)} customers in "
              f"{time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
        # The baseline reads the products database with the plain driver.
        plain_url = urls["products"].replace("sqlite+aiosqlite:", "sqlite:")
        with (
            benchlib.uvicorn_server(
                "baseline:create_app", {"BASELINE_DATABASE_URL": plain_url}, app_dir=HERE
            ) as (baseline, baseline_url),
            TemporaryDirectory() as data,
        ):
            write_data(Path(data), ids, emails, tokens)
            run_scenarios(db, args, cells, shop, urls, Path(data), baseline, baseline_url)


def run_scenarios(
    db: str,
    args: argparse.Namespace,
    cells: list[Cell],
    shop: RunningShop,
    urls: dict[str, str],
    data: Path,
    baseline: subprocess.Popen[bytes],
    baseline_url: str,
) -> None:
    pids = benchlib.service_pids(shop, ("users", "products", "orders"))
    server = benchlib.DATABASE_SERVERS[db]
    meter = CpuMeter({**pids, **({"db": server} if server else {}), "baseline": baseline.pid})
    stock_at_start = asyncio.run(scalar(urls["products"], "SELECT sum(stock) FROM products"))
    plan = [
        (scenario, concurrency)
        for scenario in SCENARIOS
        if scenario in args.scenarios
        for concurrency in args.concurrency
        # argon2id takes 64 MiB and tens of ms a grant: more at once only queues.
        if scenario != "token" or concurrency <= 8
    ]
    for step, (scenario, concurrency) in enumerate(plan, 1):
        target = baseline_url if TARGET[scenario] == "baseline" else shop.url(TARGET[scenario])
        if concurrency == min(args.concurrency):  # warm up each scenario once
            wrk(target, scenario, 8, 1, data)
            time.sleep(1)  # let what the warm-up left in flight finish
        cell = measure(db, scenario, concurrency, args.seconds, target, data, meter)
        if scenario in PLACEMENTS:
            cell.books = asyncio.run(check_books(urls, stock_at_start))
        cells.append(cell)
        print(f"[{step:2}/{len(plan)}] {line(cell)}", flush=True)


def line(cell: Cell) -> str:
    cpu = " ".join(f"{name} {ms:.2f}" for name, ms in cell.cpu_ms.items() if ms >= 0.005)
    books = f"  books {cell.books}" if cell.books else ""
    return (
        f"{cell.db:8} {cell.scenario:16} c{cell.concurrency:<3} {cell.rps:8.1f} req/s"
        f"  p50 {cell.p50_ms:7.1f}  p99 {cell.p99_ms:7.1f} ms  {cell.statuses}"
        f"  CPU ms/req: {cpu}{books}"
    )


# --- Reports ------------------------------------------------------------------------


def ratio(cell: Cell, cells: list[Cell]) -> str:
    other = BASELINE_OF.get(cell.scenario)
    for base in cells:
        if (base.db, base.scenario, base.concurrency) == (cell.db, other, cell.concurrency):
            return f"{cell.rps / base.rps:.2f}" if base.rps else ""
    return ""


def markdown(cells: list[Cell], started: str) -> str:
    lines = [
        f"# pasar bench: {started}",
        "",
        f"{os.cpu_count()} cores, {platform.platform()}; client (wrk), services and database "
        "on the same machine. CPU is milliseconds per request of each process; "
        '"x baseline" is throughput over the baseline\'s at the same concurrency '
        "(listing over baseline-listing, place over baseline-update).",
    ]
    for db in dict.fromkeys(cell.db for cell in cells):
        lines += [
            "",
            f"## {db}",
            "",
            "| scenario | c | req/s | p50 ms | p95 ms | p99 ms | statuses | x baseline "
            "| CPU ms/req: users / products / orders / db / baseline / client | books |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for cell in (c for c in cells if c.db == db):
            cpu = " / ".join(
                f"{cell.cpu_ms.get(name, 0):.2f}"
                for name in ("users", "products", "orders", "db", "baseline", "client")
            )
            statuses = " ".join(f"{code}: {n}" for code, n in cell.statuses.items())
            errors = cell.socket_errors + cell.timeouts
            lines.append(
                f"| {cell.scenario} | {cell.concurrency} | {cell.rps:.1f} | {cell.p50_ms:.1f} "
                f"| {cell.p95_ms:.1f} | {cell.p99_ms:.1f} | {statuses}"
                f"{f' +{errors} errors' if errors else ''} | {ratio(cell, cells)} | {cpu} "
                f"| {cell.books} |"
            )
    return "\n".join(lines) + "\n"


def plot(cells: list[Cell], path: Path) -> bool:
    """Placement latency (p50 and p99) against concurrency, one line per database and
    scenario; False when matplotlib is not installed (`make bench` installs it)."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        return False
    matplotlib.use("Agg")
    pyplot = importlib.import_module("matplotlib.pyplot")
    ticker = importlib.import_module("matplotlib.ticker")
    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, scenario in zip(axes, PLACEMENTS, strict=True):
        for db in dict.fromkeys(cell.db for cell in cells):
            mine = [c for c in cells if (c.db, c.scenario) == (db, scenario)]
            if not mine:
                continue
            xs = [c.concurrency for c in mine]
            (drawn,) = ax.plot(xs, [c.p99_ms for c in mine], marker="o", label=f"{db} p99")
            ax.plot(xs, [c.p50_ms for c in mine], marker=".", linestyle="--",
                    color=drawn.get_color(), label=f"{db} p50")  # fmt: skip
        ax.set_title(
            f"POST /orders: {'one hot product' if scenario == 'place-hot' else 'any product'}"
        )
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({c.concurrency for c in cells}))
        ax.get_xaxis().set_major_formatter(ticker.ScalarFormatter())
        ax.set_xlabel("concurrent clients")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("latency, ms")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def main() -> None:
    args = parse()
    args.out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cells: list[Cell] = []
    for db in args.db:
        bench_database(db, args, cells)
    (args.out / "matrix.json").write_text(
        json.dumps(
            {"started": started, "cores": os.cpu_count(), "cells": [asdict(c) for c in cells]},
            indent=1,
        )
    )
    (args.out / "matrix.md").write_text(markdown(cells, started))
    drawn = plot(cells, args.out / "placement-latency.png")
    print(f"wrote {args.out}/matrix.json, matrix.md" + (", placement-latency.png" if drawn else ""))
    broken = [c for c in cells if c.books not in ("", "ok")]
    if broken:
        sys.exit("the books do not add up after: " + ", ".join(line(c) for c in broken))


if __name__ == "__main__":
    main()
