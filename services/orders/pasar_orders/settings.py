"""Configuration of the Order-Service, read from ``ORDERS_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pasar_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/orders.db"
    users_url: str = "http://127.0.0.1:8001"
    products_url: str = "http://127.0.0.1:8002"
    client_id: str | None = "orders"
    currency: str = "IDR"

    payment_provider: Literal["none", "test"] = "none"
    # How long an order may wait in pending_payment before it is cancelled; its stock is
    # held 300 s longer. 15 minutes is what Indonesian gateways give a QRIS code or an
    # e-wallet push, and ample for a card with 3-D Secure; a shop taking bank transfers
    # to a virtual account (usually 24 h) raises it. At most 86,100 s: the hold (window
    # + 300 s) must fit the Product-Service's longest reservation, 86,400 s.
    payment_window_seconds: int = Field(default=900, ge=60, le=86_100)
    # How many orders one customer may have waiting for payment (each holds stock) at
    # once; one more is 409 too_many_unpaid_orders, refused before anything is held.
    max_unpaid_orders: int = Field(default=3, ge=1, le=100)
    # A placement still "placing" after this long is considered crashed and recovered.
    placing_deadline_seconds: int = 60
    # Idempotency keys are kept at least this long (the contract says 24 hours).
    idempotency_ttl_seconds: int = 86_400

    outbox_interval_seconds: float = 1.0
    outbox_batch_size: int = 100
    outbox_backoff_base_seconds: float = 0.5
    outbox_backoff_max_seconds: float = 60.0
    recovery_interval_seconds: float = 10.0
    workers_enabled: bool = True

    @property
    def effective_jwks_url(self) -> str:
        return self.jwks_url or self.users_url.rstrip("/") + "/.well-known/jwks.json"

    @property
    def token_url(self) -> str:
        return self.users_url.rstrip("/") + "/auth/token"

    @property
    def payments_enabled(self) -> bool:
        return self.payment_provider != "none"
