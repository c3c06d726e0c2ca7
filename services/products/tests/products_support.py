"""What the Product-Service suite shares: its fake clock, token minting and API shortcuts
(the fixtures in conftest.py hand them out; tests import the types from here)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from pasar_kit.auth import SigningKey, access_claims


@dataclass
class Clock:
    """The fake clock the app reads; tests move it instead of sleeping."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Tokens:
    key: SigningKey

    def _sign(self, subject: str, **claims: Any) -> str:
        return self.key.sign(
            access_claims(
                subject, issuer="pasar-users", audience="pasar", ttl_seconds=300, **claims
            )
        )

    def admin(self, user_id: str | None = None) -> dict[str, str]:
        return self.bearer(self._sign(user_id or str(uuid.uuid4()), role="admin"))

    def customer(self, user_id: str | None = None) -> dict[str, str]:
        return self.bearer(self._sign(user_id or str(uuid.uuid4()), role="customer"))

    def service(self, scope: str = "stock:reserve", client_id: str = "orders") -> dict[str, str]:
        return self.bearer(self._sign(client_id, scope=scope))

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@dataclass
class Catalogue:
    """Shortcuts over the real API for arranging a test."""

    client: httpx.AsyncClient
    tokens: Tokens
    counter: int = 0

    async def product(self, **fields: Any) -> dict[str, Any]:
        self.counter += 1
        body = {
            "sku": f"SKU-{uuid.uuid4().hex[:10]}",
            "name": f"Product {self.counter}",
            "price": 1_500_000,
            "stock": 10,
            "category": "General",
            **fields,
        }
        response = await self.client.post("/products", json=body, headers=self.tokens.admin())
        assert response.status_code == 201, response.text
        product: dict[str, Any] = response.json()
        return product

    async def reserve(
        self, items: list[tuple[str, int]], reservation_id: str | None = None, **extra: Any
    ) -> httpx.Response:
        body = {
            "reservation_id": reservation_id or str(uuid.uuid4()),
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in items],
            **extra,
        }
        return await self.client.post(
            "/internal/reservations", json=body, headers=self.tokens.service()
        )

    async def stock(self, product_id: str) -> int:
        response = await self.client.get(f"/products/{product_id}")
        assert response.status_code == 200, response.text
        return int(response.json()["stock"])

    async def audit(self) -> dict[str, Any]:
        response = await self.client.get("/admin/stock-audit", headers=self.tokens.admin())
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result
