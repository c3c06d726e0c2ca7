"""Configuration of the Order-Service, read from ``ORDERS_*`` environment variables."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from pasar_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/orders.db"
    users_url: str = "http://127.0.0.1:8001"
    products_url: str = "http://127.0.0.1:8002"
    client_id: str | None = "orders"
    currency: str = "IDR"

    # none: no online payment; test: the test cards (development); midtrans, xendit: the
    # gateways, paid asynchronously and confirmed by their notifications (docs/payments.md).
    payment_provider: Literal["none", "test", "midtrans", "xendit"] = "none"
    # Midtrans: the server key of the account (sandbox keys start "SB-Mid-server-"); Snap
    # makes the hosted payment page, the core API answers status queries and refunds.
    midtrans_server_key: SecretStr | None = None
    midtrans_snap_url: str = "https://app.sandbox.midtrans.com"
    midtrans_api_url: str = "https://api.sandbox.midtrans.com"
    # Xendit: the secret API key, and the callback verification token of the dashboard.
    xendit_secret_key: SecretStr | None = None
    xendit_callback_token: SecretStr | None = None
    xendit_api_url: str = "https://api.xendit.co"
    # Where a gateway's hosted page sends the customer back after paying (optional).
    payment_return_url: str | None = None
    # A gateway payment still pending this long after it was made is asked about by the
    # status job (a lost notification costs this, not the order); then every interval.
    payment_check_after_seconds: float = Field(default=120, ge=0)
    payment_check_interval_seconds: float = Field(default=60, gt=0)
    # How long an order may wait in pending_payment before it is cancelled; its stock is
    # held 300 s longer. 15 minutes is what Indonesian gateways give a QRIS code or an
    # e-wallet push, and ample for a card with 3-D Secure; a shop taking bank transfers
    # to a virtual account (usually 24 h) raises it. At most 86,100 s: the hold (window
    # + 300 s) must fit the Product-Service's longest reservation, 86,400 s.
    payment_window_seconds: int = Field(default=900, ge=60, le=86_100)
    # How many orders one customer may have waiting for payment (each holds stock) at
    # once; one more is 409 too_many_unpaid_orders, refused before anything is held.
    max_unpaid_orders: int = Field(default=3, ge=1, le=100)
    # Refuse orders (403 email_not_verified) from accounts whose email address is not
    # verified yet. Off by default, so the demo and older clients keep working.
    require_verified_email: bool = False
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

    @model_validator(mode="after")
    def _gateway_keys_present(self) -> Self:
        if self.payment_provider == "midtrans" and self.midtrans_server_key is None:
            raise ValueError("ORDERS_MIDTRANS_SERVER_KEY is required with the midtrans provider")
        if self.payment_provider == "xendit" and (
            self.xendit_secret_key is None or self.xendit_callback_token is None
        ):
            raise ValueError(
                "ORDERS_XENDIT_SECRET_KEY and ORDERS_XENDIT_CALLBACK_TOKEN are required "
                "with the xendit provider"
            )
        return self

    def _secrets(self) -> list[tuple[str, str | None]]:
        keys = {
            "midtrans": [("midtrans_server_key", self.midtrans_server_key)],
            "xendit": [
                ("xendit_secret_key", self.xendit_secret_key),
                ("xendit_callback_token", self.xendit_callback_token),
            ],
        }.get(self.payment_provider, [])
        return [
            *super()._secrets(),
            *((name, value.get_secret_value() if value else None) for name, value in keys),
        ]

    @property
    def effective_jwks_url(self) -> str:
        return self.jwks_url or self.users_url.rstrip("/") + "/.well-known/jwks.json"

    @property
    def token_url(self) -> str:
        return self.users_url.rstrip("/") + "/auth/token"

    @property
    def payments_enabled(self) -> bool:
        return self.payment_provider != "none"
