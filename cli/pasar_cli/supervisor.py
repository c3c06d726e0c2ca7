"""`pasar up`: every service as its own child process, watched and restarted.

The parent prepares everything first (data dir, secrets, migrations, the admin account,
the demo catalogue), then starts the children in dependency order, waits for each to be
ready, and from then on only supervises: a child that dies is restarted with backoff,
and SIGINT/SIGTERM stop them all, gracefully: each child in turn, callers first (the
storefront, then orders, products, users), gets SIGTERM and its own grace period to
finish what it is doing before it is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pasar_cli.services import SERVICES, ServiceSpec
from pasar_kit.lifecycle import DEFAULT_GRACE_SECONDS

ORDERS_SCOPES = ["users:read", "notifications:write", "stock:reserve"]
# Products reads the User-Service's token revocations (demoted or deactivated users).
PRODUCTS_SCOPES = ["users:read"]


class StartupError(Exception):
    """A reason `pasar up` cannot start, told to the user in one line."""


def say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Shop:
    data_dir: Path
    base_port: int
    host: str = "127.0.0.1"
    services: tuple[str, ...] = ("users", "products", "orders", "web")

    def port(self, name: str) -> int:
        return self.base_port + SERVICES[name].port_offset

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.port(name)}"

    def database_url(self, spec: ServiceSpec) -> str:
        """The service's ``*_DATABASE_URL`` if the operator set one, else SQLite in the data dir."""
        given = os.environ.get(f"{spec.env_prefix}DATABASE_URL")
        if given:
            return given
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / (spec.name + '.db')}"

    def image_dir(self) -> str:
        """Where the Product-Service keeps uploaded images: ``PRODUCTS_IMAGE_DIR`` if the
        operator set it, else ``images`` in the data dir (beside the SQLite files)."""
        return os.environ.get("PRODUCTS_IMAGE_DIR") or str(self.data_dir.resolve() / "images")

    def mail_dir(self) -> str:
        """Where the User-Service writes mail as ``.eml`` files (its default file
        transport): ``USERS_MAIL_DIR`` if the operator set it, else ``mail`` in the data dir."""
        return os.environ.get("USERS_MAIL_DIR") or str(self.data_dir.resolve() / "mail")

    def mail_by_smtp(self) -> bool:
        return os.environ.get("USERS_MAIL_TRANSPORT", "file").strip().lower() == "smtp"


def acquire_lock(data_dir: Path) -> IO[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "pasar.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        raise StartupError(
            f"another pasar is already running on {data_dir} (pid {pid}); stop it first"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def check_ports(shop: Shop) -> None:
    for name in shop.services:
        port = shop.port(name)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As uvicorn binds: connections lingering in TIME_WAIT do not count as "in use".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((shop.host, port))
            except OSError:
                raise StartupError(
                    f"port {port} ({name}) is already in use; free it or pass --base-port"
                ) from None


def load_secrets(data_dir: Path) -> dict[str, str]:
    """Per-data-dir secrets, generated once and kept (mode 600) so restarts agree."""
    path = data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for key in (
        "orders_client_secret",
        "products_client_secret",
        "admin_password",
        "web_session_secret",
    ):
        if key not in stored:
            stored[key] = secrets.token_urlsafe(24)
            changed = True
    if changed:
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return stored


def child_environment(shop: Shop, secret: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each service's environment: its database, the services it calls, its credentials."""
    users = shop.url("users")
    jwks = f"{users}/.well-known/jwks.json"
    # Where browsers fetch product images from: the image URLs in product answers.
    images_from = os.environ.get("PRODUCTS_PUBLIC_URL") or shop.url("products")
    env: dict[str, dict[str, str]] = {}
    for name in shop.services:
        spec = SERVICES[name]
        p = spec.env_prefix
        values = {f"{p}DATABASE_URL": shop.database_url(spec)} if spec.has_database else {}
        values.setdefault(f"{p}LOG_JSON", os.environ.get(f"{p}LOG_JSON", "false"))
        if name == "web":
            values.update(
                {
                    f"{p}USERS_URL": users,
                    f"{p}PRODUCTS_URL": shop.url("products"),
                    f"{p}ORDERS_URL": shop.url("orders"),
                    f"{p}SESSION_SECRET": secret["web_session_secret"],
                    # The storefront's pages may show images from there (CSP img-src).
                    f"{p}IMAGE_ORIGINS": os.environ.get(f"{p}IMAGE_ORIGINS")
                    or f"https: {images_from}",
                }
            )
        elif name == "users":
            clients = [
                {
                    "client_id": "orders",
                    "secret": secret["orders_client_secret"],
                    "scopes": ORDERS_SCOPES,
                },
                {
                    "client_id": "products",
                    "secret": secret["products_client_secret"],
                    "scopes": PRODUCTS_SCOPES,
                },
            ]
            values[f"{p}SERVICE_CLIENTS"] = json.dumps(clients)
            values[f"{p}MAIL_DIR"] = shop.mail_dir()
            # The links in mail open the storefront where this shop serves it.
            values[f"{p}STOREFRONT_URL"] = os.environ.get(f"{p}STOREFRONT_URL") or shop.url("web")
        else:
            values[f"{p}JWKS_URL"] = jwks
        if name == "products":
            values.update(
                {
                    f"{p}IMAGE_DIR": shop.image_dir(),
                    # Image URLs in its answers point where it really listens.
                    f"{p}PUBLIC_URL": images_from,
                    f"{p}USERS_URL": users,
                    f"{p}CLIENT_ID": "products",
                    f"{p}CLIENT_SECRET": secret["products_client_secret"],
                }
            )
        if name == "orders":
            values.update(
                {
                    f"{p}USERS_URL": users,
                    f"{p}PRODUCTS_URL": shop.url("products"),
                    f"{p}CLIENT_ID": "orders",
                    f"{p}CLIENT_SECRET": secret["orders_client_secret"],
                }
            )
        env[name] = values
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Children get SIGTERM if `pasar up` itself is killed, so none are orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = field(default=1.0)

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.command,
            env={**os.environ, **self.env},
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def grace(self) -> float:
        """The child's shutdown grace period: its own setting, or the kit's default."""
        key = f"{SERVICES[self.name].env_prefix}SHUTDOWN_GRACE_SECONDS"
        raw = self.env.get(key) or os.environ.get(key)
        try:
            return float(raw) if raw else DEFAULT_GRACE_SECONDS
        except ValueError:
            return DEFAULT_GRACE_SECONDS

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then a kill only if the child outlives its grace period (and a bit)."""
        if not self.alive():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=self.grace() + 5 if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_ready(url: str, child: Child, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            code = child.process.returncode if child.process else "?"
            raise StartupError(
                f"{child.name} exited with code {code} while starting; see its log above"
            )
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise StartupError(f"{child.name} did not become ready within {timeout:.0f}s")


def print_table(shop: Shop, admin_email: str, admin_password: str | None) -> None:
    # The shop itself first: that is the address a person opens.
    names = sorted(shop.services, key=lambda name: SERVICES[name].port_offset)
    width = max(len(shop.url(name)) for name in names)
    say("")
    say("pasar is running:")
    for name in names:
        url = shop.url(name)
        if SERVICES[name].has_database:
            say(f"  {name:<9} {url:<{width}}   API docs: {url}/docs")
        else:
            say(f"  {name:<9} {url:<{width}}   <- open this in your browser")
    say("")
    if "users" in shop.services:
        if shop.mail_by_smtp():
            say("  mail:     sent by SMTP (USERS_SMTP_*)")
        else:
            say(f"  mail:     written to {shop.mail_dir()} (.eml files; links in the log)")
    if admin_password is None:
        say(f"  admin login: {admin_email} (password from PASAR_ADMIN_PASSWORD)")
    else:
        say(f"  admin login: {admin_email} / {admin_password}")
    say("  Ctrl-C stops everything.")
    say("")


class Supervisor:
    def __init__(self, children: list[Child], shop: Shop) -> None:
        self.children = children
        self.shop = shop
        self.stopping = False

    def request_stop(self, signum: int, _frame: Any) -> None:
        self.stopping = True

    def start_all(self) -> None:
        for child in self.children:
            child.start()
            wait_ready(self.shop.url(child.name), child)

    def watch(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if child.alive():
                    if now - child.started_at > 60:
                        child.backoff = 1.0  # it stayed up: forget past crashes
                    continue
                if child.next_start == 0.0:
                    code = child.process.returncode if child.process else "?"
                    say(
                        f"pasar: {child.name} exited with code {code}; "
                        f"restarting in {child.backoff:.0f}s"
                    )
                    child.next_start = now + child.backoff
                    child.backoff = min(child.backoff * 2, 30.0)
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    child.start()
                    say(f"pasar: {child.name} restarted (restart #{child.restarts})")
            time.sleep(0.2)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()


def serve_command(name: str, port: int, host: str) -> list[str]:
    return [
        sys.executable, "-m", "pasar_cli.main", "serve", name,
        "--host", host, "--port", str(port), "--no-migrate",
    ]  # fmt: skip
