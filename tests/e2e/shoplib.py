"""End-to-end helpers: the shop as real processes (`pasar up`, or `pasar serve` replicas).

With PASAR_TEST_DB=mariadb|postgres each service gets its own fresh server database,
passed through the services' *_DATABASE_URL variables exactly as an operator would.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pasar_kit.testing import fresh_database

ADMIN_EMAIL = "admin@e2e.test"
ADMIN_PASSWORD = "e2e-admin-password"
SERVICES = {"users": 1, "products": 2, "orders": 3}


def free_base_port() -> int:
    """A base port whose base+1..base+3 are all free on the loopback."""
    for _ in range(200):
        base = random.randrange(20000, 40000, 10)
        try:
            for offset in SERVICES.values():
                with socket.socket() as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports")


@dataclass
class RunningShop:
    process: subprocess.Popen[str]
    base_port: int
    data_dir: Path
    output: list[str] = field(default_factory=list)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.base_port + SERVICES[service]}"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def database_env(stack: ExitStack, directory: Path) -> dict[str, str]:
    if os.environ.get("PASAR_TEST_DB", "sqlite") == "sqlite":
        return {}
    return {
        f"{name.upper()}_DATABASE_URL": stack.enter_context(
            fresh_database(f"e2e_{name}", directory)
        )
        for name in SERVICES
    }


def start_shop(
    data_dir: Path, base_port: int, extra_env: dict[str, str] | None = None
) -> RunningShop:
    env = {
        **os.environ,
        "PASAR_ADMIN_EMAIL": ADMIN_EMAIL,
        "PASAR_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pasar_cli.main", "up", "--data-dir", str(data_dir),
         "--base-port", str(base_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    shop = RunningShop(process, base_port, data_dir)
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    for line in process.stdout:
        shop.output.append(line)
        if "Ctrl-C stops everything" in line:
            break
        if time.monotonic() > deadline:
            break
    if process.poll() is not None or not any("pasar is running" in x for x in shop.output):
        shop.stop()
        raise AssertionError("pasar up did not start:\n" + "".join(shop.output))

    # Keep draining the output so the children never block on a full pipe.
    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            shop.output.append(line)

    threading.Thread(target=drain, daemon=True).start()
    return shop


def api(base_url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30)


def login(users_url: str, email: str, password: str) -> str:
    response = httpx.post(
        f"{users_url}/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def register(users_url: str, email: str, password: str = "customer-pass-1") -> str:
    response = httpx.post(
        f"{users_url}/auth/register",
        json={"email": email, "password": password, "full_name": "E2E Customer"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return login(users_url, email, password)


def eventually(check, timeout: float = 20.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll ``check`` until it returns something truthy (for asynchronous effects)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
