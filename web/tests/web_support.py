"""The storefront against the three real services.

Users, products and orders are served over real HTTP on their own fresh databases
(``PASAR_TEST_DB`` picks SQLite, MariaDB or PostgreSQL), exactly as in production; the
storefront app is driven in-process through ASGI by a client that keeps its cookies
like a browser and fills in the CSRF token of the page a form came from.
"""

from __future__ import annotations

import html
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from email import parser as email_parser
from email import policy as email_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from fastapi import FastAPI
from testdata import ORDERS_SECRET, PASSWORD

from pasar_kit.db import utcnow
from pasar_kit.migrations import upgrade
from pasar_kit.testing import clear_tables, fresh_database, lifespan_of, serve
from pasar_orders.app import MIGRATIONS as ORDERS_MIGRATIONS
from pasar_orders.app import create_app as create_orders_app
from pasar_orders.outbox import relay_outbox
from pasar_orders.settings import Settings as OrdersSettings
from pasar_orders.tables import metadata as orders_metadata
from pasar_products.app import MIGRATIONS as PRODUCTS_MIGRATIONS
from pasar_products.app import create_app as create_products_app
from pasar_products.seed import seed_demo_catalogue
from pasar_products.settings import Settings as ProductsSettings
from pasar_products.tables import metadata as products_metadata
from pasar_users.accounts import ensure_admin
from pasar_users.app import MIGRATIONS as USERS_MIGRATIONS
from pasar_users.app import create_app as create_users_app
from pasar_users.settings import Settings as UsersSettings
from pasar_users.tables import metadata as users_metadata
from pasar_web.app import create_app as create_web_app
from pasar_web.settings import Settings as WebSettings

SESSION_SECRET = "web-session-secret-for-tests-only"
ADMIN_EMAIL = "owner@example.com"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Databases:
    users: str
    products: str
    orders: str


@pytest.fixture(scope="session")
def web_databases(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory: Path = tmp_path_factory.mktemp("web-suite")
    with (
        fresh_database("web_users", directory) as users_url,
        fresh_database("web_products", directory) as products_url,
        fresh_database("web_orders", directory) as orders_url,
    ):
        upgrade(users_url, USERS_MIGRATIONS)
        upgrade(products_url, PRODUCTS_MIGRATIONS)
        upgrade(orders_url, ORDERS_MIGRATIONS)
        yield Databases(users=users_url, products=products_url, orders=orders_url)


class Served:
    """One service over real HTTP; a test may stop it and start it again on its port."""

    def __init__(self, factory: Callable[[], FastAPI]) -> None:
        self.factory = factory
        self.app: FastAPI | None = None
        self.port = 0
        self._serving: AbstractAsyncContextManager[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.app = self.factory()
        self._serving = serve(self.app, port=self.port)
        self.port = urlparse(await self._serving.__aenter__()).port or 0

    async def stop(self) -> None:
        if self._serving is not None:
            serving, self._serving = self._serving, None
            await serving.__aexit__(None, None, None)


def text(page: str) -> str:
    """A page's visible text, whitespace folded (for assertions on what a person reads)."""
    body = page.split("<body", 1)[-1].split(">", 1)[-1]
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return " ".join(html.unescape(_TAG.sub(" ", body)).replace("\xa0", " ").split())


def by_testid(page: str, name: str) -> str:
    """The visible text inside the element marked ``data-testid=name`` (nesting allowed)."""
    start = re.search(rf'<([a-z0-9]+)[^>]*data-testid="{name}"[^>]*>', page)
    assert start is not None, f"no {name!r} on the page"
    tag, depth, position = start.group(1), 1, start.end()
    for match in re.finditer(rf"<(/?){tag}\b[^>]*>", page[position:]):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            inner = page[position : position + match.start()]
            return " ".join(html.unescape(_TAG.sub(" ", inner)).replace("\xa0", " ").split())
    raise AssertionError(f"{name!r} is not closed")


class Browser:
    """An httpx client on the storefront that behaves like a browser with one tab."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.last: httpx.Response | None = None

    async def get(self, path: str, **params: Any) -> httpx.Response:
        self.last = await self.client.get(path, params=params or None)
        return self.last

    async def submit(
        self,
        form_page: str,
        action: str,
        data: dict[str, Any] | None = None,
        *,
        follow: bool = True,
    ) -> httpx.Response:
        """Open ``form_page``, then post ``data`` to ``action`` with that page's CSRF token."""
        page = await self.client.get(form_page)
        match = _CSRF.search(page.text)
        assert match is not None, f"{form_page} has no form token"
        return await self.post(
            action, {"csrf_token": match.group(1), **(data or {})}, follow=follow
        )

    async def post(
        self, action: str, data: dict[str, Any], *, follow: bool = True
    ) -> httpx.Response:
        response = await self.client.post(action, data=data)
        if follow and response.status_code == 303:
            response = await self.client.get(response.headers["location"])
        self.last = response
        return response

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = await self.submit("/login", "/login", {"email": email, "password": password})
        assert response.status_code == 200, text(response.text)
        return response

    async def register(self, email: str | None = None, name: str = "Siti Pembeli") -> str:
        email = email or f"buyer-{secrets.token_hex(4)}@example.com"
        response = await self.submit(
            "/register", "/register", {"full_name": name, "email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, text(response.text)
        return email

    async def add_to_cart(self, product_id: str, quantity: int = 1) -> httpx.Response:
        return await self.submit(
            f"/products/{product_id}",
            "/cart/items",
            {"product_id": product_id, "quantity": str(quantity)},
        )


# Where the users service's mail links point: this storefront, as the browsers see it.
STOREFRONT = "http://shop.test"


@dataclass
class Shop:
    """The three services, the storefront, and shortcuts over the services' own APIs."""

    dbs: Databases
    users: Served
    products: Served
    orders: Served
    web: FastAPI
    http: httpx.AsyncClient
    mail_dir: Path
    browsers: list[httpx.AsyncClient] = field(default_factory=list)
    _admin_token: str | None = None

    @asynccontextmanager
    async def browser(self, language: str | None = "en") -> AsyncIterator[Browser]:
        """A new visitor. Pages are read in English unless ``language`` says otherwise
        (None sends no Accept-Language: the shop's default, Indonesian)."""
        transport = httpx.ASGITransport(app=self.web, client=("203.0.113.7", 50000))
        headers = {"Accept-Language": language} if language else {}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://shop.test", headers=headers, timeout=30
        ) as client:
            yield Browser(client)

    async def admin_token(self) -> str:
        if self._admin_token is None:
            assert self.users.app is not None
            await ensure_admin(
                db=self.users.app.state.db,
                email=ADMIN_EMAIL,
                password=PASSWORD,
                passwords=self.users.app.state.runtime.passwords,
                clock=self.users.app.state.runtime.clock,
            )
            self._admin_token = await self.token(ADMIN_EMAIL)
        return self._admin_token

    async def token(self, email: str, password: str = PASSWORD) -> str:
        response = await self.http.post(
            f"{self.users.url}/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def product(
        self, *, stock: int = 10, price: int = 92_000, **fields: Any
    ) -> dict[str, Any]:
        body = {
            "sku": f"T-{uuid.uuid4().hex[:10]}",
            "name": f"Kopi Test {uuid.uuid4().hex[:4]}",
            "price": price,
            "stock": stock,
            "category": "Test",
            **fields,
        }
        response = await self.http.post(
            f"{self.products.url}/products",
            json=body,
            headers={"Authorization": f"Bearer {await self.admin_token()}"},
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def adjust(self, product_id: str, delta: int) -> None:
        response = await self.http.post(
            f"{self.products.url}/products/{product_id}/stock-adjustments",
            json={"delta": delta, "reason": "test"},
            headers={"Authorization": f"Bearer {await self.admin_token()}"},
        )
        assert response.status_code == 200, response.text

    async def patch_product(self, product_id: str, changes: dict[str, Any]) -> None:
        response = await self.http.patch(
            f"{self.products.url}/products/{product_id}",
            json=changes,
            headers={"Authorization": f"Bearer {await self.admin_token()}"},
        )
        assert response.status_code == 200, response.text

    async def upload_image(
        self, product_id: str, data: bytes, *, main: bool = False
    ) -> dict[str, Any]:
        response = await self.http.post(
            f"{self.products.url}/products/{product_id}/images",
            files={"file": ("picture.png", data, "image/png")},
            data={"main": "true" if main else "false"},
            headers={"Authorization": f"Bearer {await self.admin_token()}"},
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def stock(self, product_id: str) -> int:
        response = await self.http.get(f"{self.products.url}/products/{product_id}")
        return int(response.json()["stock"])

    async def orders_of(self, token: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{self.orders.url}/orders", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def seed(self) -> int:
        assert self.products.app is not None
        runtime = self.products.app.state.runtime
        return await seed_demo_catalogue(db=runtime.db, store=runtime.images)

    async def me(self, token: str) -> dict[str, Any]:
        response = await self.http.get(
            f"{self.users.url}/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def mailed_token(self, email: str, page: str) -> str | None:
        """The token of the newest link to ``page`` (e.g. ``reset-password``) mailed to
        ``email``, after the mail sender ran once (as its job would); None if none was."""
        assert self.users.app is not None
        await self.users.app.state.runtime.sender.send_due()
        pattern = re.compile(rf"{re.escape(STOREFRONT)}/{page}\?token=([A-Za-z0-9_-]+)")
        for path in sorted(self.mail_dir.glob("*.eml"), reverse=True):
            message = email_parser.BytesParser(policy=email_policy.default).parsebytes(
                path.read_bytes()
            )
            if message["To"] != email:
                continue
            body = message.get_body(preferencelist=("plain",))
            found = pattern.search(body.get_content() if body is not None else "")
            if found:
                return found.group(1)
        return None

    async def relay(self) -> int:
        """Deliver the orders outbox once (as its background job would)."""
        assert self.orders.app is not None
        runtime = self.orders.app.state.runtime
        return await relay_outbox(db=runtime.db, users=runtime.users, now=utcnow(), batch_size=100)


ShopFactory = Callable[..., AbstractAsyncContextManager[Shop]]


@pytest.fixture
async def web_shop_factory(web_databases: Databases, tmp_path: Path) -> AsyncIterator[ShopFactory]:
    dbs = web_databases
    image_dir = tmp_path / "images"
    mail_dir = tmp_path / "mail"

    @asynccontextmanager
    async def make(
        *,
        orders_overrides: dict[str, Any] | None = None,
        users_overrides: dict[str, Any] | None = None,
        **web_overrides: Any,
    ) -> AsyncIterator[Shop]:
        users = Served(
            lambda: create_users_app(
                UsersSettings(
                    environment="test",
                    database_url=dbs.users,
                    workers_enabled=False,
                    mail_dir=str(mail_dir),
                    storefront_url=STOREFRONT,
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
                    **(users_overrides or {}),
                )
            )
        )
        products = Served(
            lambda: create_products_app(
                ProductsSettings(
                    environment="test",
                    database_url=dbs.products,
                    jwks_url=f"{users.url}/.well-known/jwks.json",
                    workers_enabled=False,
                    list_total_cache_seconds=0,
                    image_dir=image_dir,
                )
            )
        )
        orders = Served(
            lambda: create_orders_app(
                OrdersSettings(
                    environment="test",
                    database_url=dbs.orders,
                    users_url=users.url,
                    products_url=products.url,
                    client_id="orders",
                    client_secret=ORDERS_SECRET,
                    workers_enabled=False,
                    http_connect_timeout=0.5,
                    # Generous: a loaded machine's slow moment (MariaDB stalls for seconds
                    # while a test drops its databases) is not a dead service.
                    http_timeout=10.0,
                    http_retries=1,
                    **(orders_overrides or {}),
                )
            )
        )
        await users.start()
        try:
            await products.start()
            await orders.start()
            web = create_web_app(
                WebSettings(
                    environment="test",
                    users_url=users.url,
                    products_url=products.url,
                    orders_url=orders.url,
                    session_secret=SESSION_SECRET,
                    http_connect_timeout=0.5,
                    http_timeout=10.0,
                    http_retries=1,
                    circuit_failure_threshold=3,
                    circuit_reset_seconds=0.5,
                    **web_overrides,
                )
            )
            async with lifespan_of(web), httpx.AsyncClient(timeout=30) as http:
                yield Shop(
                    dbs=dbs,
                    users=users,
                    products=products,
                    orders=orders,
                    web=web,
                    http=http,
                    mail_dir=mail_dir,
                )
        finally:
            await orders.stop()
            await products.stop()
            await users.stop()
            await clear_tables(dbs.orders, orders_metadata)
            await clear_tables(dbs.products, products_metadata)
            await clear_tables(dbs.users, users_metadata)

    yield make


@pytest.fixture
async def web_shop(web_shop_factory: ShopFactory) -> AsyncIterator[Shop]:
    async with web_shop_factory() as shop:
        yield shop
