"""What the hardening costs and buys, measured on the real shop (`pasar up`, scratch dir):

* a registration flood (100 at once) while an honest customer logs in 10 times: the
  login latency, the users process's peak memory and CPU per request, and how the flood
  was answered; once with the default per-address limit (one address floods) and once
  with it lifted (many addresses: only the argon2id gate stands);
* the revocation window: from an admin's demotion (`PATCH /users/{id}` answered) to the
  Product-Service refusing that admin's old access token, over several runs.

Usage: python bench/hardening.py [--flood 100] [--runs 5] [--db sqlite|mariadb|postgres]
Prints figures; it asserts nothing about speed.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import benchlib
import httpx
from benchlib import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, CpuMeter, RunningShop, pct


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def flood(shop: RunningShop, users_pid: int, size: int, label: str) -> None:
    users = shop.url("users")
    async with httpx.AsyncClient(timeout=120) as http:
        honest = f"honest-{uuid.uuid4().hex[:8]}@example.com"
        created = await http.post(
            f"{users}/auth/register",
            json={"email": honest, "password": PASSWORD, "full_name": "Honest"},
        )
        assert created.status_code == 201, created.text
        login = {"grant_type": "password", "username": honest, "password": PASSWORD}

        async def one_login() -> float:
            started = time.perf_counter()
            answer = await http.post(f"{users}/auth/token", data=login)
            assert answer.status_code == 200, answer.text
            return time.perf_counter() - started

        idle = [await one_login() for _ in range(5)]

        peak = rss_mb(users_pid)
        before_rss, cpu = peak, CpuMeter({"users": users_pid})
        sampling = True

        async def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, rss_mb(users_pid))
                await asyncio.sleep(0.02)

        async def register(i: int) -> int:
            body = {
                "email": f"flood-{uuid.uuid4().hex[:8]}-{i}@example.com",
                "password": "flood-password-1",
                "full_name": "Flood",
            }
            return (await http.post(f"{users}/auth/register", json=body)).status_code

        async def logins_during() -> list[float]:
            await asyncio.sleep(0.2)  # let the flood arrive first
            return [await one_login() for _ in range(10)]

        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        statuses, during = await asyncio.gather(
            asyncio.gather(*(register(i) for i in range(size))), logins_during()
        )
        took = time.perf_counter() - started
        sampling = False
        await sampler
        cpu_ms = cpu.per_request(size + 10)["users"]
    print(
        f"{label}: {size} registrations in {took:.1f} s, answers "
        f"{dict(sorted(Counter(statuses).items()))}\n"
        f"  login idle p50 {pct(idle, 0.5):.0f} ms; during the flood p50 "
        f"{pct(during, 0.5):.0f} ms, max {max(during) * 1000:.0f} ms\n"
        f"  users RSS {before_rss:.0f} MB -> peak {peak:.0f} MB; users CPU "
        f"{cpu_ms:.1f} ms per request"
    )


async def revocation_window(shop: RunningShop, runs: int) -> None:
    users, products = shop.url("users"), shop.url("products")
    async with httpx.AsyncClient(timeout=30) as http:
        grant = {"grant_type": "password", "username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        owner = (await http.post(f"{users}/auth/token", data=grant)).json()["access_token"]
        as_owner = {"Authorization": f"Bearer {owner}"}
        windows = []
        for run in range(runs):
            email = f"helper-{uuid.uuid4().hex[:8]}@example.com"
            made = await http.post(
                f"{users}/auth/register",
                json={"email": email, "password": PASSWORD, "full_name": f"Helper {run}"},
            )
            user_id = made.json()["id"]
            await http.patch(f"{users}/users/{user_id}", json={"role": "admin"}, headers=as_owner)
            login = {"grant_type": "password", "username": email, "password": PASSWORD}
            token = (await http.post(f"{users}/auth/token", data=login)).json()["access_token"]
            as_helper = {"Authorization": f"Bearer {token}"}
            seen = await http.get(f"{products}/admin/low-stock", headers=as_helper)
            assert seen.status_code == 200, seen.text
            demoted = await http.patch(
                f"{users}/users/{user_id}", json={"role": "customer"}, headers=as_owner
            )
            assert demoted.status_code == 200, demoted.text
            answered = time.perf_counter()
            for _ in range(6000):  # at most a minute
                probe = await http.get(f"{products}/admin/low-stock", headers=as_helper)
                if probe.status_code != 200:
                    assert probe.status_code == 401, probe.text
                    break
                await asyncio.sleep(0.01)
            windows.append(time.perf_counter() - answered)
    print(
        f"revocation window (demotion answered -> products refuses the old token), {runs} runs: "
        f"min {min(windows):.2f} s, median {pct(windows, 0.5) / 1000:.2f} s, "
        f"max {max(windows):.2f} s"
    )


def main() -> None:
    args = benchlib.parse_options(flood=100, runs=5)
    print(f"hardening bench on {args.db}, {os.cpu_count()} cores")
    for label, lifted in (("one address floods", False), ("limit lifted (many addresses)", True)):
        extra = {"USERS_REGISTRATIONS_PER_ADDRESS": "100000"} if lifted else {}
        with benchlib.running_shop(args.db, extra) as shop:
            users_pid = benchlib.service_pids(shop, ("users",))["users"]
            asyncio.run(flood(shop, users_pid, args.flood, label))
            if lifted:
                asyncio.run(revocation_window(shop, args.runs))


if __name__ == "__main__":
    main()
