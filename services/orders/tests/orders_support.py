"""Support for the Order-Service suite (fixtures are re-exported by conftest.py).

Every API test runs the three real services: the User-Service and the Product-Service
apps served over real HTTP with ``pasar_kit.testing.serve`` (each on its own database
from ``fresh_database``), and the Order-Service served the same way. No fakes of our own
services; only the payment gateway (the test provider) and the clock are ours to fake.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from fastapi import FastAPI, Request
from testdata import ADDRESS, ORDERS_SECRET, PASSWORD

from pasar_kit.db import Database, utcnow
from pasar_kit.migrations import upgrade
from pasar_kit.testing import clear_tables, fresh_database, serve
from pasar_orders.app import MIGRATIONS as ORDERS_MIGRATIONS
from pasar_orders.app import create_app as create_orders_app
from pasar_orders.bootstrap import Runtime
from pasar_orders.outbox import relay_outbox
from pasar_orders.settings import Settings as OrdersSettings
from pasar_orders.settlement import settle_cancelled_orders
from pasar_orders.tables import metadata as orders_metadata
from pasar_products.app import MIGRATIONS as PRODUCTS_MIGRATIONS
from pasar_products.app import create_app as create_products_app
from pasar_products.settings import Settings as ProductsSettings
from pasar_products.tables import metadata as products_metadata
from pasar_users.accounts import ensure_admin
from pasar_users.app import MIGRATIONS as USERS_MIGRATIONS
from pasar_users.app import create_app as create_users_app
from pasar_users.settings import Settings as UsersSettings
from pasar_users.tables import metadata as users_metadata


@dataclass(frozen=True)
class Databases:
    users: str
    products: str
    orders: str


@pytest.fixture(scope="session")
def orders_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    directory: Path = tmp_path_factory.mktemp("orders-suite")
    with (
        fresh_database("ord_users", directory) as users_url,
        fresh_database("ord_products", directory) as products_url,
        fresh_database("orders", directory) as orders_url,
    ):
        upgrade(users_url, USERS_MIGRATIONS)
        upgrade(products_url, PRODUCTS_MIGRATIONS)
        upgrade(orders_url, ORDERS_MIGRATIONS)
        yield Databases(users=users_url, products=products_url, orders=orders_url)


class Served:
    """One app served over real HTTP, which a test may stop and start again on the
    same port (a service going down and coming back)."""

    def __init__(self, factory: Callable[[], FastAPI]) -> None:
        self.factory = factory
        self.app: FastAPI | None = None
        self.port = 0
        self._serving: AbstractAsyncContextManager[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        self.app = self.factory()
        self._serving = serve(self.app, port=self.port)
        url = await self._serving.__aenter__()
        self.port = urlparse(url).port or 0
        return url

    async def stop(self) -> None:
        if self._serving is not None:
            serving, self._serving = self._serving, None
            await serving.__aexit__(None, None, None)


@dataclass
class Account:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Shop:
    """The three services, and shortcuts over their real HTTP APIs."""

    dbs: Databases
    users_service: Served
    products_service: Served
    orders_service: Served
    http: httpx.AsyncClient
    admin: Account | None = None
    counter: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def runtime(self) -> Runtime:
        assert self.orders_service.app is not None
        runtime: Runtime = self.orders_service.app.state.runtime
        return runtime

    @property
    def orders_url(self) -> str:
        return self.orders_service.url

    async def customer(self) -> Account:
        email = f"buyer-{secrets.token_hex(4)}@example.com"
        response = await self.http.post(
            f"{self.users_service.url}/auth/register",
            json={"email": email, "password": PASSWORD, "full_name": "Siti Pembeli"},
        )
        assert response.status_code == 201, response.text
        return await self._login(response.json()["id"], email)

    async def make_admin(self) -> Account:
        if self.admin is None:
            assert self.users_service.app is not None
            email = f"admin-{secrets.token_hex(4)}@example.com"
            user_id = await ensure_admin(
                db=self.users_service.app.state.db,
                email=email,
                password=PASSWORD,
                passwords=self.users_service.app.state.runtime.passwords,
                clock=self.users_service.app.state.runtime.clock,
            )
            self.admin = await self._login(user_id, email)
        return self.admin

    async def _login(self, user_id: str, email: str) -> Account:
        response = await self.http.post(
            f"{self.users_service.url}/auth/token",
            data={"grant_type": "password", "username": email, "password": PASSWORD},
        )
        assert response.status_code == 200, response.text
        return Account(id=user_id, email=email, token=response.json()["access_token"])

    async def deactivate(self, account: Account) -> None:
        admin = await self.make_admin()
        response = await self.http.patch(
            f"{self.users_service.url}/users/{account.id}",
            json={"active": False},
            headers=admin.headers,
        )
        assert response.status_code == 200, response.text

    async def product(self, *, stock: int = 10, price: int = 1_500_000) -> dict[str, Any]:
        admin = await self.make_admin()
        self.counter += 1
        response = await self.http.post(
            f"{self.products_service.url}/products",
            json={
                "sku": f"SKU-{uuid.uuid4().hex[:10]}",
                "name": f"Batik shirt {self.counter}",
                "price": price,
                "stock": stock,
                "category": "Clothing",
            },
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
        product: dict[str, Any] = response.json()
        return product

    async def stock(self, product_id: str) -> int:
        response = await self.http.get(f"{self.products_service.url}/products/{product_id}")
        assert response.status_code == 200, response.text
        return int(response.json()["stock"])

    async def reservation(self, reservation_id: str) -> httpx.Response:
        token = await self.runtime.products.client.credentials.token()  # type: ignore[union-attr]
        return await self.http.get(
            f"{self.products_service.url}/internal/reservations/{reservation_id}",
            headers={"Authorization": f"Bearer {token}"},
        )

    async def place(
        self,
        account: Account,
        items: list[tuple[str, int]] | None = None,
        *,
        key: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        payload = body or {
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in items or []],
            "shipping_address": ADDRESS,
        }
        headers = dict(account.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.http.post(f"{self.orders_url}/orders", json=payload, headers=headers)

    async def get(self, account: Account, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(
            f"{self.orders_url}{path}", headers=account.headers, params=params
        )

    async def post(
        self, account: Account, path: str, json: dict[str, Any] | None = None
    ) -> httpx.Response:
        return await self.http.post(f"{self.orders_url}{path}", json=json, headers=account.headers)

    async def notifications(self, account: Account) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{self.users_service.url}/users/me/notifications",
            headers=account.headers,
            params={"limit": 100},
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def relay(self, now: datetime | None = None) -> int:
        """Run the outbox relay once, as the background job does."""
        return await relay_outbox(
            db=self.runtime.db, users=self.runtime.users, now=now or utcnow(), batch_size=100
        )

    async def release(self, now: datetime | None = None) -> int:
        """Run the settlement job once: release (and refund) cancelled orders."""
        return await settle_cancelled_orders(
            db=self.runtime.db,
            products=self.runtime.products,
            payments=self.runtime.refunds,
            now=now or utcnow(),
        )

    @property
    def db(self) -> Database:
        return self.runtime.db


def orders_settings(
    dbs: Databases, users_url: str, products_url: str, **overrides: Any
) -> OrdersSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": dbs.orders,
        "users_url": users_url,
        "products_url": products_url,
        "client_id": "orders",
        "client_secret": ORDERS_SECRET,
        "workers_enabled": False,
        # A refused connection is a 503 at once. A request's own timeout is generous, so
        # a slow moment of a loaded machine is not taken for a dead service; the tests of
        # hanging services set a short one (HANGING_TIMEOUTS).
        "http_connect_timeout": 0.5,
        "http_timeout": 5.0,
        "http_retries": 1,
        "circuit_failure_threshold": 50,
        "circuit_reset_seconds": 0.5,
        "outbox_backoff_base_seconds": 0.05,
        "outbox_backoff_max_seconds": 0.2,
        **overrides,
    }
    return OrdersSettings(**values)


ShopFactory = Callable[..., AbstractAsyncContextManager[Shop]]
# For a dependency that hangs: give up after a second.
HANGING_TIMEOUTS: dict[str, Any] = {"http_timeout": 1.0}


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 10.0) -> None:
    """Poll until ``check`` holds (background work finishing); fail after ``within`` s."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def orders_shop_factory(orders_databases: Databases) -> AsyncIterator[ShopFactory]:
    dbs = orders_databases

    @asynccontextmanager
    async def make(
        *, products_factory: Callable[[], FastAPI] | None = None, **overrides: Any
    ) -> AsyncIterator[Shop]:
        users = Served(
            lambda: create_users_app(
                UsersSettings(
                    environment="test",
                    database_url=dbs.users,
                    workers_enabled=False,
                    argon2_time_cost=1,
                    argon2_memory_kib=64,
                    argon2_parallelism=1,
                    service_clients=[
                        {
                            "client_id": "orders",
                            "secret": ORDERS_SECRET,
                            "scopes": ["users:read", "notifications:write", "stock:reserve"],
                        }
                    ],
                )
            )
        )
        await users.start()
        products = Served(
            products_factory
            or (
                lambda: create_products_app(
                    ProductsSettings(
                        environment="test",
                        database_url=dbs.products,
                        jwks_url=f"{users.url}/.well-known/jwks.json",
                        workers_enabled=False,
                    )
                )
            )
        )
        orders: Served | None = None
        try:
            await products.start()
            orders = Served(
                lambda: create_orders_app(
                    orders_settings(dbs, users.url, products.url, **overrides)
                )
            )
            await orders.start()
            async with httpx.AsyncClient(timeout=30) as http:
                yield Shop(
                    dbs=dbs,
                    users_service=users,
                    products_service=products,
                    orders_service=orders,
                    http=http,
                )
        finally:
            if orders is not None:
                await orders.stop()
            await products.stop()
            await users.stop()
            await clear_tables(dbs.orders, orders_metadata)
            await clear_tables(dbs.products, products_metadata)
            await clear_tables(dbs.users, users_metadata)

    yield make


@pytest.fixture
async def orders_shop(orders_shop_factory: ShopFactory) -> AsyncIterator[Shop]:
    async with orders_shop_factory() as shop:
        yield shop


def hanging_app(gate: asyncio.Event) -> FastAPI:
    """A dependency that accepts connections and never answers (until ``gate`` opens)."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def hang(path: str, request: Request) -> dict[str, str]:
        await gate.wait()
        return {"path": path}

    return app


def minutes_later(minutes: float) -> datetime:
    return utcnow() + timedelta(minutes=minutes)


class FaultyProxy:
    """A stand-in in front of the real Product-Service that forwards every call except
    those a test breaks: ``hang`` (never answers until released) or ``garbage``
    (the real call is made, then its answer replaced by HTML)."""

    def __init__(self, upstream: Callable[[], str]) -> None:
        self.upstream = upstream
        self.faults: dict[str, str] = {}  # path suffix -> "hang" | "garbage"
        self.gate = asyncio.Event()
        self.seen: list[str] = []

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "DELETE"])
        async def forward(path: str, request: Request) -> Any:
            from fastapi.responses import Response

            self.seen.append(f"{request.method} /{path}")
            fault = next((f for suffix, f in self.faults.items() if path.endswith(suffix)), None)
            if fault == "hang":
                await self.gate.wait()
            headers = {
                k: v
                for k, v in request.headers.items()
                if k.lower() in ("authorization", "content-type", "x-request-id")
            }
            async with httpx.AsyncClient() as client:
                upstream = await client.request(
                    request.method,
                    f"{self.upstream()}/{path}",
                    content=await request.body(),
                    headers=headers,
                    params=dict(request.query_params),
                )
            if fault == "garbage":
                return Response("<html>oops</html>", media_type="text/html")
            return Response(
                upstream.content,
                status_code=upstream.status_code,
                media_type=upstream.headers.get("content-type"),
            )

        return app
