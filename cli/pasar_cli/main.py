"""The `pasar` command: `up` runs the whole shop; the rest serve and administer it."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from pasar_cli.services import DATABASE_SERVICES, SERVICES, START_ORDER, installed
from pasar_cli.supervisor import (
    Child,
    Shop,
    StartupError,
    Supervisor,
    acquire_lock,
    check_ports,
    child_environment,
    load_secrets,
    print_table,
    say,
    serve_command,
)

app = typer.Typer(
    help="pasar: a small e-commerce backend as Python microservices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataDir = Annotated[Path, typer.Option(help="Where the SQLite databases and secrets live.")]
BasePort = Annotated[
    int, typer.Option(help="web = base, users = base+1, products = base+2, orders = base+3.")
]
DEFAULT_ADMIN_EMAIL = "admin@pasar.local"
DEMO_CUSTOMER = ("demo@pasar.local", "demo-pass-123", "Demo Customer")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"pasar: {message}", err=True)
    return typer.Exit(code=1)


def _available() -> tuple[str, ...]:
    return tuple(name for name in START_ORDER if installed(name))


def _migrate(name: str, url: str) -> None:
    from pasar_kit.migrations import upgrade

    try:
        upgrade(url, SERVICES[name].migrations)
    except Exception as exc:  # a database we cannot reach or migrate: say which and why
        raise StartupError(f"cannot migrate the {name} database ({url}): {exc}") from exc


async def _ensure_admin(url: str, email: str, password: str) -> str:
    from pasar_kit.db import Database, utcnow
    from pasar_users.accounts import ensure_admin
    from pasar_users.passwords import Passwords
    from pasar_users.settings import Settings

    db = Database(url)
    # Hashed as the User-Service is configured to (USERS_ARGON2_*).
    passwords = Passwords.from_settings(Settings())
    try:
        return await ensure_admin(
            db=db, email=email, password=password, passwords=passwords, clock=utcnow
        )
    finally:
        passwords.close()
        await db.dispose()


async def _seed_catalogue(url: str, image_dir: str) -> int:
    from pasar_kit.db import Database
    from pasar_products.seed import seed_demo_catalogue
    from pasar_products.storage import LocalImageStore

    db = Database(url)
    try:
        return await seed_demo_catalogue(db=db, store=LocalImageStore(Path(image_dir)))
    finally:
        await db.dispose()


async def _seed_customer(url: str) -> bool:
    """Register the demo customer; False when the account is already there."""
    from pasar_kit.db import Database, utcnow
    from pasar_users.accounts import register
    from pasar_users.passwords import Passwords
    from pasar_users.problems import EmailTaken
    from pasar_users.settings import Settings

    db = Database(url)
    email, password, full_name = DEMO_CUSTOMER
    try:
        passwords = Passwords.from_settings(Settings())
        await register(
            db=db,
            passwords=passwords,
            email=email,
            password=password,
            full_name=full_name,
            now=utcnow(),
        )
    except EmailTaken:
        return False
    finally:
        await db.dispose()
    return True


@app.command()
def up(
    data_dir: DataDir = Path("var"),
    base_port: BasePort = 8000,
    seed: Annotated[bool, typer.Option(help="Load the demo catalogue on first start.")] = True,
) -> None:
    """Start the whole shop (every service as its own process) and keep it running."""
    shop = Shop(data_dir=data_dir, base_port=base_port, services=_available())
    try:
        lock = acquire_lock(data_dir)
        check_ports(shop)
        secret = load_secrets(data_dir)
        env = child_environment(shop, secret)
        for name in shop.services:
            if SERVICES[name].has_database:
                _migrate(name, env[name][f"{SERVICES[name].env_prefix}DATABASE_URL"])
        admin_email = os.environ.get("PASAR_ADMIN_EMAIL", DEFAULT_ADMIN_EMAIL)
        given_password = os.environ.get("PASAR_ADMIN_PASSWORD")
        asyncio.run(
            _ensure_admin(
                env["users"]["USERS_DATABASE_URL"],
                admin_email,
                given_password or secret["admin_password"],
            )
        )
        if seed and "products" in shop.services:
            added = asyncio.run(
                _seed_catalogue(
                    env["products"]["PRODUCTS_DATABASE_URL"], env["products"]["PRODUCTS_IMAGE_DIR"]
                )
            )
            if added:
                say(f"pasar: seeded the demo catalogue ({added} products)")
    except StartupError as exc:
        raise _fail(str(exc)) from None

    children = [
        Child(name, serve_command(name, shop.port(name), shop.host), env[name])
        for name in shop.services
    ]
    supervisor = Supervisor(children, shop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    try:
        supervisor.start_all()
        print_table(shop, admin_email, None if given_password else secret["admin_password"])
        supervisor.watch()
    except StartupError as exc:
        supervisor.stop_all()
        raise _fail(str(exc)) from None
    supervisor.stop_all()
    lock.close()
    say("pasar: stopped")


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="web, users, products or orders")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Default: 8000 + the service's offset.")] = None,
    migrate: Annotated[bool, typer.Option(help="Run migrations before serving.")] = True,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            envvar="FORWARDED_ALLOW_IPS",
            help="Proxies (addresses or networks, comma separated) whose X-Forwarded-For "
            "names the client, e.g. for login throttling. Default: none; never '*' unless "
            "only proxies can reach this port.",
        ),
    ] = None,
) -> None:
    """Run one service, configured from its environment variables (what a container runs)."""
    import uvicorn

    from pasar_kit.observability import configure_logging
    from pasar_kit.server import GracefulServer, server_options
    from pasar_kit.tracing import configure_tracing

    if service not in SERVICES:
        raise _fail(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}")
    spec = SERVICES[service]
    try:
        settings = spec.settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{spec.env_prefix}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise _fail(f"invalid configuration for {service}: {problems}") from None
    configure_logging(service, level=settings.log_level, json_format=settings.log_json)
    configure_tracing(
        service, endpoint=settings.otlp_endpoint, sample_ratio=settings.trace_sample_ratio
    )
    if migrate and spec.has_database:
        try:
            _migrate(service, settings.database_url)
        except StartupError as exc:
            raise _fail(str(exc)) from None
    config = uvicorn.Config(
        spec.factory,
        factory=True,
        host=host,
        port=port or 8000 + spec.port_offset,
        log_config=None,
        access_log=False,
        **server_options(
            forwarded_allow_ips=forwarded_allow_ips,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
        ),
    )
    # SIGTERM: /readyz says 503, in-flight requests and the jobs' current batch finish,
    # and the process exits within the grace period (``pasar_kit.server.GracefulServer``).
    GracefulServer(
        config, grace=settings.shutdown_grace_seconds, delay=settings.shutdown_delay_seconds
    ).run()


def _database_url(name: str, data_dir: Path) -> str:
    spec = SERVICES[name]
    return Shop(data_dir=data_dir, base_port=8000).database_url(spec)


@app.command()
def migrate(
    services: Annotated[list[str] | None, typer.Argument(help="Default: every service.")] = None,
    data_dir: DataDir = Path("var"),
) -> None:
    """Bring each service's database to the newest schema (uses *_DATABASE_URL when set)."""
    for name in services or [n for n in _available() if n in DATABASE_SERVICES]:
        if name not in DATABASE_SERVICES:
            raise _fail(f"unknown service {name!r}; one of {', '.join(DATABASE_SERVICES)}")
        try:
            _migrate(name, _database_url(name, data_dir))
        except StartupError as exc:
            raise _fail(str(exc)) from None
        say(f"pasar: {name} migrated")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str | None, typer.Option(help="Prompted for when omitted.")] = None,
    data_dir: DataDir = Path("var"),
) -> None:
    """Create an admin account, or promote and reactivate an existing one."""
    secret = password or getpass.getpass("Password: ")
    url = _database_url("users", data_dir)
    try:
        _migrate("users", url)
        user_id = asyncio.run(_ensure_admin(url, email, secret))
    except (StartupError, ValueError) as exc:
        raise _fail(str(exc)) from None
    say(f"pasar: {email} is an admin (id {user_id})")


@app.command()
def seed(data_dir: DataDir = Path("var")) -> None:
    """Load the demo catalogue and the demo customer (safe to run again)."""
    try:
        products_url = _database_url("products", data_dir)
        users_url = _database_url("users", data_dir)
        _migrate("products", products_url)
        _migrate("users", users_url)
        image_dir = Shop(data_dir=data_dir, base_port=8000).image_dir()
        added = asyncio.run(_seed_catalogue(products_url, image_dir))
        created = asyncio.run(_seed_customer(users_url))
    except StartupError as exc:
        raise _fail(str(exc)) from None
    say(f"pasar: {added} products added; demo customer {DEMO_CUSTOMER[0]} / {DEMO_CUSTOMER[1]}"
        + (" created" if created else " already there"))  # fmt: skip


@app.command("rotate-key")
def rotate_key(data_dir: DataDir = Path("var")) -> None:
    """Start signing tokens with a new key; the old one stays published until tokens expire."""
    from pasar_kit.db import Database, utcnow
    from pasar_users.keys import rotate_signing_key

    async def run() -> str:
        db = Database(_database_url("users", data_dir))
        try:
            return await rotate_signing_key(db=db, now=utcnow())
        finally:
            await db.dispose()

    say(f"pasar: new signing key {asyncio.run(run())}")


@app.command()
def config(
    services: Annotated[list[str] | None, typer.Argument(help="Default: every service.")] = None,
) -> None:
    """List every environment variable a service reads, with its default."""
    import importlib

    for name in services or list(_available()):
        spec = SERVICES[name]
        settings_class = importlib.import_module(f"{spec.package}.settings").Settings
        say(f"# {name}")
        for field_name, info in settings_class.model_fields.items():
            default = (
                "(required)" if info.is_required() else info.get_default(call_default_factory=True)
            )
            if "secret" in field_name and default not in (None, "(required)"):
                default = "***"
            say(f"{spec.env_prefix}{field_name.upper()}={_shown(default)}")


def _shown(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return "" if value is None else str(value)


@app.command()
def status(base_port: BasePort = 8000, host: str = "127.0.0.1") -> None:
    """Show each service's health."""
    worst = 0
    for name in START_ORDER:
        url = f"http://{host}:{base_port + SERVICES[name].port_offset}"
        state = _probe(f"{url}/readyz")
        worst = max(worst, 0 if state == "ready" else 1)
        say(f"  {name:<9} {url:<24} {state}")
    raise typer.Exit(code=worst)


def _probe(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            body: Any = json.loads(response.read())
            return str(body.get("status", "ready"))
    except urllib.error.HTTPError as exc:
        return f"not ready ({exc.code})"
    except (urllib.error.URLError, OSError):
        return "down"


if __name__ == "__main__":
    app()
