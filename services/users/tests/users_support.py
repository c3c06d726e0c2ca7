"""What the User-Service suite shares beyond fixtures: its API shortcuts and the types of
its factory fixtures (tests import them from here; conftest.py hands them out)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from testdata import ORDERS_SECRET, PASSWORD

from pasar_kit.db import utcnow
from pasar_users.settings import Settings

AppFactory = Callable[..., AbstractAsyncContextManager[FastAPI]]
# ``client_from(app, address)``: a client of the app seen as coming from ``address``.
ClientFrom = Callable[..., httpx.AsyncClient]


@dataclass
class Account:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class UsersApi:
    """Small conveniences over the real HTTP API."""

    def __init__(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        self.client = client
        self.app = app

    async def register(
        self, email: str | None = None, password: str = PASSWORD, full_name: str = "Siti Test"
    ) -> dict[str, Any]:
        email = email or f"user-{secrets.token_hex(4)}@example.com"
        response = await self.client.post(
            "/auth/register", json={"email": email, "password": password, "full_name": full_name}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.client.post(
            "/auth/token", data={"grant_type": "password", "username": email, "password": password}
        )

    async def account(self, email: str | None = None, *, admin: bool = False) -> Account:
        user = await self.register(email)
        if admin:
            from pasar_users.accounts import ensure_admin

            await ensure_admin(
                db=self.app.state.db,
                email=user["email"],
                password=PASSWORD,
                passwords=self.app.state.runtime.passwords,
                clock=utcnow,
            )
        response = await self.login(user["email"])
        assert response.status_code == 200, response.text
        tokens = response.json()
        return Account(
            id=user["id"],
            email=user["email"],
            password=PASSWORD,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        )

    async def service_token(
        self, client_id: str = "orders", secret: str = ORDERS_SECRET, scope: str | None = None
    ) -> str:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        if scope is not None:
            form["scope"] = scope
        response = await self.client.post("/auth/token", data=form)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def users_test_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": url,
        "workers_enabled": False,
        # Cheap argon2: the tests exercise the logic, not the cost.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
        "argon2_parallelism": 1,
        "service_clients": [
            {
                "client_id": "orders",
                "secret": ORDERS_SECRET,
                "scopes": ["users:read", "notifications:write", "stock:reserve"],
            },
            {"client_id": "reporting", "secret": "reporting-secret-for-tests", "scopes": []},
        ],
        **overrides,
    }
    return Settings(**values)
