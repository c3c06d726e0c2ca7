"""What the bench scripts share: the end-to-end helpers and test data on the import path,
the shop on a scratch data dir, and the CPU time of each process, read from /proc.

Import what you need from here (not from ``shoplib`` or ``testdata`` directly): importing
this module is what puts ``tests`` and ``tests/e2e`` on the path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import urlsplit

from sqlalchemy import insert

from pasar_kit.db import Database
from pasar_kit.migrations import upgrade
from pasar_kit.testing import fresh_database
from pasar_products.app import MIGRATIONS
from pasar_products.search.index import rebuild_index
from pasar_products.tables import products

ROOT = Path(__file__).resolve().parents[1]
# shoplib lives in tests/e2e and imports testdata from tests, as pytest's pythonpath has it.
for _folder in (ROOT / "tests", ROOT / "tests" / "e2e"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from shoplib import (  # noqa: E402
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    RunningShop,
    database_env,
    free_base_port,
    free_port,
    held_units,
    pid_on_port,
    query_database,
    start_shop,
    unfinished_placements,
)
from testdata import ADDRESS, PASSWORD  # noqa: E402

__all__ = [
    "ADDRESS",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "PASSWORD",
    "ROOT",
    "CpuMeter",
    "RunningShop",
    "cpu_seconds",
    "free_port",
    "held_units",
    "parse_options",
    "pct",
    "pid_on_port",
    "products_server",
    "query_database",
    "running_shop",
    "seed_products",
    "service_pids",
    "shop_and_databases",
    "shop_meter",
    "unfinished_placements",
    "uvicorn_server",
]

TICK = os.sysconf("SC_CLK_TCK")
SERVICES = ("users", "products", "orders", "web")
# The database server's processes by name (/proc/<pid>/comm); PostgreSQL runs one per
# connection, so its figure is the sum over all of them.
DATABASE_SERVERS: dict[str, tuple[str, ...]] = {
    "sqlite": (),
    "mariadb": ("mariadbd", "mysqld"),
    "postgres": ("postgres",),
}


def parse_options(description: str | None = None, **defaults: int) -> argparse.Namespace:
    """The command line: ``--name N`` for each default given, and ``--db``."""
    parser = argparse.ArgumentParser(description=description)
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument(
        "--db",
        choices=sorted(DATABASE_SERVERS),
        default=os.environ.get("PASAR_TEST_DB", "sqlite"),
    )
    return parser.parse_args()


def pct(values: list[float], p: float) -> float:
    """The p-quantile of durations in seconds, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def _stat(pid: int) -> tuple[int, float]:
    """(start time, CPU seconds) of a process: the start time tells a reused pid apart."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]), (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process (all its threads) has used so far."""
    return _stat(pid)[1]


def pids_named(names: tuple[str, ...]) -> list[int]:
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in names:
                found.append(int(comm.parent.name))
        except OSError:  # gone meanwhile
            continue
    return found


class CpuMeter:
    """CPU milliseconds per request of named processes over a stretch of load.

    Each name stands for a pid, or for process names (a tuple, matched against
    /proc/<pid>/comm) whose processes are summed. A process that starts during the stretch
    counts whole; one that ends during it is missed (its time has left /proc).
    """

    def __init__(self, processes: Mapping[str, int | tuple[str, ...]]) -> None:
        self.processes = dict(processes)
        self.snapshot()

    def _read(self) -> dict[str, dict[tuple[int, int], float]]:
        seconds: dict[str, dict[tuple[int, int], float]] = {}
        for name, which in self.processes.items():
            seconds[name] = {}
            for pid in [which] if isinstance(which, int) else pids_named(which):
                try:
                    started, used = _stat(pid)
                except OSError:  # gone meanwhile
                    continue
                seconds[name][pid, started] = used
        return seconds

    def snapshot(self) -> None:
        """Start the stretch now."""
        self._before = self._read()

    def per_request(self, requests: int) -> dict[str, float]:
        """CPU milliseconds per request of each name since the snapshot."""
        return {
            name: sum(used - self._before[name].get(key, 0.0) for key, used in now.items())
            * 1000
            / requests
            for name, now in self._read().items()
        }

    def report(self, requests: int) -> str:
        """``users 1.23  products 0.45 ...``: the same figures as one line of text."""
        return "  ".join(f"{name} {ms:.2f}" for name, ms in self.per_request(requests).items())


def service_pids(shop: RunningShop, names: tuple[str, ...] = SERVICES) -> dict[str, int]:
    """The pid of each named service that is running (its port from the shop's URLs)."""
    pids = {}
    for name in names:
        port = urlsplit(shop.url(name)).port
        assert port is not None
        try:
            pids[name] = pid_on_port(port)
        except RuntimeError:  # not installed, so `pasar up` did not start it
            continue
    return pids


def shop_meter(shop: RunningShop, db: str, names: tuple[str, ...] = SERVICES) -> CpuMeter:
    """A CpuMeter over the named services that run and, on a database server, ``db``:
    mariadbd, or every PostgreSQL process summed. That server is the machine's, so
    whatever else uses it meanwhile counts too."""
    server = {"db": DATABASE_SERVERS[db]} if DATABASE_SERVERS[db] else {}
    return CpuMeter({**service_pids(shop, names), **server})


@contextmanager
def uvicorn_server(
    factory: str, env: Mapping[str, str], app_dir: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``factory`` ("module:create_app") served by uvicorn on a free loopback port, quiet,
    with ``env`` added: its process and base URL once ``/readyz`` answers 200."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    if app_dir is not None:
        command += ["--app-dir", str(app_dir)]
    server = subprocess.Popen(command, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{factory} did not become ready")
        yield server, base
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def products_server(
    db: str, products: int, extra_env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The products service alone on a scratch database of ``db`` (created and dropped,
    like the test suite's) seeded with ``products`` products: its process and base URL."""
    os.environ["PASAR_TEST_DB"] = db
    with TemporaryDirectory() as scratch, fresh_database("bench", Path(scratch)) as url:
        upgrade(url, MIGRATIONS)
        began = time.perf_counter()
        asyncio.run(seed_products(url, products))
        print(f"seeded {products} products on {db} in {time.perf_counter() - began:.1f}s")
        env = {
            "PRODUCTS_DATABASE_URL": url,
            "PRODUCTS_WORKERS_ENABLED": "false",
            "PRODUCTS_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        with uvicorn_server("pasar_products.app:create_app", env) as served:
            yield served


@contextmanager
def running_shop(db: str, extra_env: Mapping[str, str] | None = None) -> Iterator[RunningShop]:
    """`pasar up` on a scratch data dir (fresh server databases unless SQLite), logs quiet."""
    with shop_and_databases(db, extra_env) as (shop, _urls):
        yield shop


@contextmanager
def shop_and_databases(
    db: str, extra_env: Mapping[str, str] | None = None
) -> Iterator[tuple[RunningShop, dict[str, str]]]:
    """`running_shop`, and the database URL of each service ("users", "products", "orders")
    for checks and seeding straight on the database."""
    os.environ["PASAR_TEST_DB"] = db
    with TemporaryDirectory() as tmp, ExitStack() as stack:
        env = database_env(stack, Path(tmp))
        env.update({f"{name.upper()}_LOG_LEVEL": "WARNING" for name in SERVICES})
        env.update(extra_env or {})
        data_dir = Path(tmp) / "var"
        urls = {
            name: env.get(f"{name.upper()}_DATABASE_URL")
            or f"sqlite+aiosqlite:///{data_dir.resolve() / (name + '.db')}"
            for name in ("users", "products", "orders")
        }
        shop = start_shop(data_dir, free_base_port(), env)
        try:
            yield shop, urls
        finally:
            shop.stop()


# --- A catalogue of many products, written straight into the Product-Service's tables ---

CATEGORIES = [
    "Makanan & Minuman", "Elektronik", "Fashion", "Rumah Tangga", "Kesehatan & Kecantikan",
    "Olahraga", "Buku", "Mainan", "Otomotif", "Perkakas", "Hobi", "Kantor",
]  # fmt: skip
WORDS = [
    "kopi", "teh", "batik", "sambal", "madu", "kabel", "lampu", "sepatu", "tas", "panci",
    "wajan", "raket", "bola", "matras", "botol", "kaos", "sarung", "sandal", "topi", "sabun",
    "minyak", "lulur", "jamu", "kipas", "speaker", "earbuds", "powerbank", "toples", "tikar",
    "sapu", "gula", "keripik", "beras", "buku", "pensil", "mobil", "obeng", "gitar", "meja",
]  # fmt: skip
ADJECTIVES = ["merah", "biru", "hijau", "besar", "kecil", "premium", "hemat", "asli", "super"]
# What a search benchmark needs beyond the words above: rare words (about 1 product in
# 500 has one) and running gear written in inflected Indonesian (about 1 in 25), drawn
# from a second generator so that every other field stays as it always was.
RARE_WORDS = ["durian", "rendang", "angklung", "wayang", "tenun"]
RUNNING_PHRASES = ["sepatu lari", "cocok untuk berlari", "celana pelari", "lari pagi"]


async def seed_products(url: str, count: int, *, stock: int | None = None) -> list[str]:
    """``count`` products made up from Indonesian words, in batches, and their ids.

    With ``stock`` every product is active and holds that many; without, stock and
    activity are mixed as in a real shop (some sold out, a few archived).
    """
    rng = random.Random(7)
    extra = random.Random(8)
    db = Database(url)
    start = datetime.now(UTC) - timedelta(days=365)
    ids: list[str] = []
    try:
        batch = []
        for i in range(count):
            name = f"{rng.choice(WORDS).title()} {rng.choice(ADJECTIVES)} {rng.choice(WORDS)} {i}"
            words = rng.choices(WORDS, k=12)
            if extra.random() < 0.002:
                name += f" {extra.choice(RARE_WORDS)}"
            if extra.random() < 0.04:
                words.append(extra.choice(RUNNING_PHRASES))
            at = start + timedelta(seconds=i * 300)
            ids.append(str(uuid.uuid4()))
            batch.append(
                {
                    "id": ids[-1],
                    "sku": f"SKU-{i:07d}",
                    "name": name,
                    "description": f"{name}: {' '.join(words)}",
                    "price": rng.randrange(1_000, 5_000_000),
                    "stock": rng.choice([0, 0, 1, 5, 20, 100]) if stock is None else stock,
                    "category": rng.choice(CATEGORIES),
                    "image_url": None,
                    "active": stock is not None or rng.random() > 0.05,
                    "version": 1,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            if len(batch) == 5000:
                async with db.write() as conn:
                    await conn.execute(insert(products), batch)
                batch = []
        if batch:
            async with db.write() as conn:
                await conn.execute(insert(products), batch)
        # Rows written straight into the table are indexed for search in one pass.
        async with db.write() as conn:
            await rebuild_index(conn)
        if db.dialect == "postgresql":
            async with db.write() as conn:
                await conn.exec_driver_sql("ANALYZE products")
                await conn.exec_driver_sql("ANALYZE product_search")
    finally:
        await db.dispose()
    return ids
