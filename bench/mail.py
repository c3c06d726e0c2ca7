"""Order mail under load: from a notification POSTed to the users service to the moment a
real SMTP server (aiosmtpd, in this process) accepts the email.

The users service runs alone (uvicorn, a scratch database of ``--db``) with its sender
job on and the SMTP transport pointed at the server here. Two loads, each event for a
customer with order emails on, with three order lines:

* ``steady``: one ``POST /internal/notifications`` every 1/``rate`` s for ``seconds``;
* ``burst``: ``burst`` events at once, as the Order-Service's relay hands them over
  (``POST /internal/notifications/batch``, 100 a request, 4 requests in flight).

Per message: latency from just before its POST to SMTP acceptance (p50/p95/p99/max);
the mail throughput; the users process's CPU milliseconds per mail (from /proc). The
figures go to ``results/mail.json`` (under ``--db``) and ``results/mail.md``.

    .venv/bin/python bench/mail.py --db sqlite [--burst 2000 --rate 50 --seconds 20]
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from benchlib import CpuMeter, parse_options, pct, uvicorn_server
from mailsink import MailSink
from sqlalchemy import insert

from pasar_kit.db import Database
from pasar_kit.migrations import upgrade
from pasar_kit.testing import fresh_database
from pasar_users.app import MIGRATIONS
from pasar_users.tables import users

RESULTS = Path(__file__).parent / "results"
SECRET = "bench-orders-secret-0123456789"
CUSTOMERS = 200
ORDER_LINK = re.compile(r"/orders/([0-9a-f-]{36})")
ORDER = {
    "lines": [
        {"product_id": f"p-{n}", "name": f"Kopi Toraja {n}", "quantity": n,
         "unit_price": 46000, "line_total": 46000 * n}
        for n in (1, 2, 3)
    ],
    "total": 46000 * 6,
    "note": "JNE 0123456789",
}  # fmt: skip


class Stopwatch:
    """When each event was posted and when its mail was accepted (by order id)."""

    def __init__(self) -> None:
        self.posted: dict[str, float] = {}
        self.accepted: dict[str, float] = {}
        self.duplicates = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.expected = 0

    def on_accept(self, message: Any) -> None:
        found = ORDER_LINK.search(MailSink.text(message))
        now = time.monotonic()
        if found is None:
            return
        with self.lock:
            if found.group(1) in self.accepted:
                self.duplicates += 1
            self.accepted[found.group(1)] = now
            if len(self.accepted) >= self.expected:
                self.done.set()

    def expect(self, count: int) -> None:
        with self.lock:
            self.posted.clear()
            self.accepted.clear()
            self.duplicates = 0
            self.expected = count
            self.done.clear()


def _event(user_id: str, order_id: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "user_id": user_id,
        "type": "order.status_changed",
        "order_id": order_id,
        "status": "shipped",
        "message": "Your order has been shipped.",
        "occurred_at": datetime.now(UTC).isoformat(),
        "order": ORDER,
    }


async def _seed_customers(url: str) -> list[str]:
    db = Database(url)
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(CUSTOMERS)]
    try:
        async with db.write() as conn:
            await conn.execute(
                insert(users),
                [
                    {"id": user_id, "email": f"pembeli-{n}@example.com", "full_name": f"Pembeli {n}",
                     "password_hash": "x", "role": "customer", "active": True,
                     "created_at": now, "updated_at": now, "email_verified_at": now,
                     "language": "id" if n % 2 else "en"}
                    for n, user_id in enumerate(ids)
                ],
            )  # fmt: skip
    finally:
        await db.dispose()
    return ids


async def _token(http: httpx.AsyncClient, base: str) -> dict[str, str]:
    response = await http.post(
        f"{base}/auth/token",
        data={"grant_type": "client_credentials", "client_id": "orders", "client_secret": SECRET},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _figures(watch: Stopwatch, began: float, cpu_ms: float) -> dict[str, Any]:
    latencies = [watch.accepted[o] - watch.posted[o] for o in watch.accepted if o in watch.posted]
    last = max(watch.accepted.values())
    return {
        "mails": len(latencies),
        "duplicates": watch.duplicates,
        "mails_per_s": round(len(latencies) / (last - began), 1),
        "p50_ms": round(pct(latencies, 0.50), 1),
        "p95_ms": round(pct(latencies, 0.95), 1),
        "p99_ms": round(pct(latencies, 0.99), 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "users_cpu_ms_per_mail": round(cpu_ms, 2),
    }


async def _steady(
    base: str, customers: list[str], watch: Stopwatch, meter: CpuMeter, rate: int, seconds: int
) -> dict[str, Any]:
    count = rate * seconds
    watch.expect(count)
    meter.snapshot()
    async with httpx.AsyncClient(timeout=30) as http:
        headers = await _token(http, base)
        began = time.monotonic()
        pending = []
        for n in range(count):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            order_id = str(uuid.uuid4())
            watch.posted[order_id] = time.monotonic()
            pending.append(
                asyncio.create_task(
                    http.post(
                        f"{base}/internal/notifications",
                        json=_event(customers[n % len(customers)], order_id),
                        headers=headers,
                    )
                )
            )
        for reply in await asyncio.gather(*pending):
            reply.raise_for_status()
    await asyncio.to_thread(watch.done.wait, 120)
    return _figures(watch, began, meter.per_request(max(1, len(watch.accepted)))["users"])


async def _burst(
    base: str, customers: list[str], watch: Stopwatch, meter: CpuMeter, count: int
) -> dict[str, Any]:
    watch.expect(count)
    events = []
    for n in range(count):
        order_id = str(uuid.uuid4())
        events.append((order_id, _event(customers[n % len(customers)], order_id)))
    meter.snapshot()
    async with httpx.AsyncClient(timeout=60) as http:
        headers = await _token(http, base)
        gate = asyncio.Semaphore(4)

        async def post(chunk: list[tuple[str, dict[str, Any]]]) -> None:
            async with gate:
                now = time.monotonic()
                for order_id, _ in chunk:
                    watch.posted[order_id] = now
                reply = await http.post(
                    f"{base}/internal/notifications/batch",
                    json={"events": [event for _, event in chunk]},
                    headers=headers,
                )
                reply.raise_for_status()

        began = time.monotonic()
        await asyncio.gather(*(post(events[i : i + 100]) for i in range(0, count, 100)))
    await asyncio.to_thread(watch.done.wait, 300)
    return _figures(watch, began, meter.per_request(max(1, len(watch.accepted)))["users"])


def main() -> None:
    options = parse_options(__doc__, burst=2000, rate=50, seconds=20)
    os.environ["PASAR_TEST_DB"] = options.db
    watch = Stopwatch()
    with (
        MailSink() as sink,
        TemporaryDirectory() as scratch,
        fresh_database("bench_mail", Path(scratch)) as url,
    ):
        sink.on_accept = watch.on_accept
        upgrade(url, MIGRATIONS)
        customers = asyncio.run(_seed_customers(url))
        clients = [{"client_id": "orders", "secret": SECRET, "scopes": ["notifications:write"]}]
        env = {
            "USERS_DATABASE_URL": url,
            "USERS_SERVICE_CLIENTS": json.dumps(clients),
            "USERS_LOG_LEVEL": "WARNING",
            "USERS_MAIL_TRANSPORT": "smtp",
            "USERS_SMTP_HOST": "127.0.0.1",
            "USERS_SMTP_PORT": str(sink.port),
            "USERS_SMTP_SECURITY": "none",
            "USERS_ARGON2_TIME_COST": "1",
            "USERS_ARGON2_MEMORY_KIB": "64",
            "USERS_ARGON2_PARALLELISM": "1",
        }
        with uvicorn_server("pasar_users.app:create_app", env) as (server, base):
            meter = CpuMeter({"users": server.pid})
            figures = {
                "steady": asyncio.run(
                    _steady(base, customers, watch, meter, options.rate, options.seconds)
                ),
                "burst": asyncio.run(_burst(base, customers, watch, meter, options.burst)),
            }
    figures["steady"]["load"] = f"{options.rate}/s for {options.seconds} s, single POSTs"
    figures["burst"]["load"] = f"{options.burst} events in batches of 100, 4 in flight"
    print(json.dumps({options.db: figures}, indent=2))
    _keep(options.db, figures)


def _keep(db: str, figures: dict[str, Any]) -> None:
    path = RESULTS / "mail.json"
    kept: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    kept[db] = figures
    path.write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")
    lines = [
        "# Order mail: notification POST to SMTP acceptance (`bench/mail.py`)",
        "",
        "The users service alone with its sender job, SMTP to aiosmtpd on loopback, "
        "default settings (batch 50, 8 sends at once, each SMTP connection kept for the next mail).",
        "",
        "| database | load | mails | mails/s | p50 ms | p95 ms | p99 ms | max ms "
        "| users CPU ms/mail | duplicates |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in sorted(kept.items()):
        for run in ("steady", "burst"):
            f = runs[run]
            lines.append(
                f"| {name} | {f['load']} | {f['mails']} | {f['mails_per_s']} | {f['p50_ms']} "
                f"| {f['p95_ms']} | {f['p99_ms']} | {f['max_ms']} "
                f"| {f['users_cpu_ms_per_mail']} | {f['duplicates']} |"
            )
    (RESULTS / "mail.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
