"""End-to-end helpers: the shop as real processes (`pasar up`, or `pasar serve` replicas).

With PASAR_TEST_DB=mariadb|postgres each service gets its own fresh server database,
passed through the services' *_DATABASE_URL variables exactly as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from testdata import ADDRESS, PASSWORD

from pasar_kit.testing import fresh_database

ADMIN_EMAIL = "admin@e2e.test"
ADMIN_PASSWORD = "e2e-admin-password"
SERVICES = {"web": 0, "users": 1, "products": 2, "orders": 3}
DATABASE_SERVICES = ("users", "products", "orders")


def pid_on_port(port: int) -> int:
    """The process listening on a loopback TCP port (RuntimeError when none does)."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if int(parts[1].split(":")[1], 16) == port and parts[3] == "0A":
                inode = parts[9]
    if inode is not None:
        for fd_dir in Path("/proc").glob("[0-9]*/fd"):
            try:
                for fd in fd_dir.iterdir():
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return int(fd_dir.parent.name)
            except OSError:
                continue
    raise RuntimeError(f"nothing listens on {port}")


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
        for name in DATABASE_SERVICES
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


def register(users_url: str, email: str, password: str = PASSWORD) -> str:
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


# --- Services as separate `pasar serve` processes (replica and fault tests) -----------
#
# Each service runs as its own `python -m pasar_cli.main serve <svc> --no-migrate`, so a
# test can SIGKILL, SIGSTOP or restart one of them, or run several replicas of one.

ORDERS_SCOPES = ["users:read", "notifications:write", "stock:reserve"]
# Tests need no production-strength password hashing; keeping it cheap keeps them fast.
CHEAP_ARGON2 = {
    "USERS_ARGON2_TIME_COST": "1",
    "USERS_ARGON2_MEMORY_KIB": "8192",
    "USERS_ARGON2_PARALLELISM": "1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child before exec
    """A child must not outlive a test run that was itself killed."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_cli(*commands: list[str], env: dict[str, str]) -> None:
    """Run `python -m pasar_cli.main <args>` once per command, side by side, to completion."""
    running = [
        (args, subprocess.Popen(
            [sys.executable, "-m", "pasar_cli.main", *args],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ))
        for args in commands
    ]  # fmt: skip
    failures = []
    for args, process in running:
        output, _ = process.communicate(timeout=180)
        if process.returncode != 0:
            failures.append(f"pasar {' '.join(args)} failed:\n{output}")
    assert not failures, "\n".join(failures)


@dataclass
class ServiceProcess:
    """One `pasar serve` process, with its output in a log file."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Call from the main thread: the child is killed when the thread that started it
        ends (PR_SET_PDEATHSIG), and a worker thread of ``asyncio.to_thread`` ends early."""
        assert not self.alive(), f"{self.name} is already running"
        command = [
            sys.executable, "-m", "pasar_cli.main", "serve", self.name,
            "--host", "127.0.0.1", "--port", str(self.port), "--no-migrate",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            log.write(f"--- start #{self.starts + 1} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **self.env},
                # Beside its log: whatever it writes by default (mail files) stays there.
                cwd=self.log_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.paused = False
        self.starts += 1

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until GET /readyz answers 200 (call through asyncio.to_thread from async)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited while starting:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready within {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """kill -9: no shutdown, no clean-up, whatever was in flight is lost."""
        assert self.process is not None and self.alive()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections, but nothing answers."""
        assert self.process is not None and self.alive()
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True
        # The signal is asynchronous: return only once the process is really stopped.
        stat = Path(f"/proc/{self.process.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] not in "Tt":
            assert time.monotonic() < deadline, f"{self.name} did not stop"
            time.sleep(0.01)

    def resume(self) -> None:
        if self.process is not None and self.alive() and self.paused:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Fleet:
    """The service processes of one test; all stopped when the ``with`` block ends."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[ServiceProcess] = []

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_all()

    def add(self, name: str, env: dict[str, str], port: int | None = None) -> ServiceProcess:
        index = sum(1 for p in self.processes if p.name == name) + 1
        process = ServiceProcess(
            name, port or free_port(), env, self.directory / f"{name}-{index}.log"
        )
        self.processes.append(process)
        return process

    def start_all(self) -> None:
        """Start every process not running yet, then wait until each is ready."""
        for process in self.processes:
            if not process.alive():
                process.start()
        for process in self.processes:
            process.wait_ready()

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def users_env(database_url: str, orders_secret: str, **extra: str) -> dict[str, str]:
    """The User-Service's environment, as `pasar up` gives it (supervisor.child_environment)."""
    clients = [{"client_id": "orders", "secret": orders_secret, "scopes": ORDERS_SCOPES}]
    return {
        "USERS_DATABASE_URL": database_url,
        "USERS_SERVICE_CLIENTS": json.dumps(clients),
        "USERS_LOG_JSON": "false",
        "USERS_LOG_LEVEL": os.environ.get("PASAR_E2E_LOG_LEVEL", "WARNING"),
        **CHEAP_ARGON2,
        **extra,
    }


def products_env(database_url: str, users_url: str, **extra: str) -> dict[str, str]:
    return {
        "PRODUCTS_DATABASE_URL": database_url,
        "PRODUCTS_JWKS_URL": f"{users_url}/.well-known/jwks.json",
        "PRODUCTS_LOG_JSON": "false",
        "PRODUCTS_LOG_LEVEL": os.environ.get("PASAR_E2E_LOG_LEVEL", "WARNING"),
        **extra,
    }


def orders_env(
    database_url: str, users_url: str, products_url: str, orders_secret: str, **extra: str
) -> dict[str, str]:
    return {
        "ORDERS_DATABASE_URL": database_url,
        "ORDERS_JWKS_URL": f"{users_url}/.well-known/jwks.json",
        "ORDERS_USERS_URL": users_url,
        "ORDERS_PRODUCTS_URL": products_url,
        "ORDERS_CLIENT_ID": "orders",
        "ORDERS_CLIENT_SECRET": orders_secret,
        "ORDERS_LOG_JSON": "false",
        "ORDERS_LOG_LEVEL": os.environ.get("PASAR_E2E_LOG_LEVEL", "WARNING"),
        **extra,
    }


def prepare_databases(database_urls: dict[str, str]) -> None:
    """`pasar migrate` for products and orders, `pasar create-admin` (which migrates the
    users database first) for the e2e admin."""
    env = {f"{name.upper()}_DATABASE_URL": url for name, url in database_urls.items()}
    env.update(CHEAP_ARGON2)
    others = [name for name in database_urls if name != "users"]
    run_cli(
        ["migrate", *others],
        ["create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD],
        env=env,
    )


async def query_database(url: str, statement: str, **params: object) -> list[tuple[object, ...]]:
    """Rows of one read-only SQL statement, for checks the HTTP API does not expose
    (held reservations, placements still in flight)."""
    from sqlalchemy import pool, text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(statement), params)
            return [tuple(row) for row in result.all()]
    finally:
        await engine.dispose()


async def held_units(products_database_url: str, product_ids: list[str] | None = None) -> int:
    """Units on reservations still ``held`` (for the given products, or all)."""
    rows = await query_database(
        products_database_url,
        "SELECT l.product_id, l.quantity FROM reservation_lines l "
        "JOIN reservations r ON r.id = l.reservation_id WHERE r.status = 'held'",
    )
    wanted = None if product_ids is None else set(product_ids)
    return sum(int(str(qty)) for pid, qty in rows if wanted is None or pid in wanted)


async def unfinished_placements(orders_database_url: str) -> int:
    """Orders rows still ``placing`` or ``recovering`` (never visible through the API)."""
    rows = await query_database(
        orders_database_url,
        "SELECT count(*) FROM orders WHERE status IN ('placing', 'recovering')",
    )
    return int(str(rows[0][0]))


# --- Async client helpers -------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login_async(http: httpx.AsyncClient, users_url: str, email: str, password: str) -> str:
    response = await http.post(
        f"{users_url}/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def service_token(
    http: httpx.AsyncClient, users_url: str, client_id: str, secret: str
) -> str:
    """A service's access token (OAuth 2.0 client-credentials grant)."""
    response = await http.post(
        f"{users_url}/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def register_async(http: httpx.AsyncClient, users_url: str, email: str) -> tuple[str, str]:
    """A new customer; returns (user id, access token)."""
    response = await http.post(
        f"{users_url}/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "E2E Customer"},
    )
    assert response.status_code == 201, response.text
    token = await login_async(http, users_url, email, PASSWORD)
    return str(response.json()["id"]), token


async def create_product_async(
    http: httpx.AsyncClient, products_url: str, admin: str, *, stock: int, price: int = 150000
) -> dict[str, object]:
    sku = f"E2E-{uuid.uuid4().hex[:10].upper()}"
    response = await http.post(
        f"{products_url}/products",
        headers=bearer(admin),
        json={"sku": sku, "name": f"Kopi {sku}", "description": "e2e", "price": price,
              "stock": stock, "category": "E2E"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return dict(response.json())


async def place_order_async(
    http: httpx.AsyncClient, orders_url: str, token: str, items: list[dict[str, object]]
) -> httpx.Response:
    return await http.post(
        f"{orders_url}/orders",
        headers=bearer(token),
        json={"items": items, "shipping_address": ADDRESS},
    )


async def all_pages(
    http: httpx.AsyncClient, url: str, token: str, **params: str
) -> list[dict[str, object]]:
    """Every item of a paged list (``{"items", "total", "limit", "offset"}``)."""
    items: list[dict[str, object]] = []
    while True:
        response = await http.get(
            url, headers=bearer(token), params={**params, "limit": "100", "offset": str(len(items))}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["total"]:
            return items


def asked_for(changed: dict[str, list[str]], order_id: str) -> list[str]:
    """Every status a test put an order in: placed ("processing": payments are off), then
    each status change it was answered 200 for (``changed``, by order id, in order)."""
    return ["processing", *changed.get(order_id, [])]


async def stock_audit_async(http: httpx.AsyncClient, products_url: str, admin: str) -> None:
    response = await http.get(f"{products_url}/admin/stock-audit", headers=bearer(admin))
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "violations": []}, response.text


async def eventually_async(check, timeout: float = 60.0, interval: float = 0.25):  # type: ignore[no-untyped-def]
    """Await ``check()`` until it returns something truthy; the last failure is reported.

    ``check`` may also raise AssertionError to say "not yet".
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = await check()
        except AssertionError as exc:
            result, last = None, exc
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {last}")
        await asyncio.sleep(interval)
