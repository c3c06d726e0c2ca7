"""Configuration of the storefront (environment variables prefixed ``WEB_``)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from pasar_kit.settings import ProcessSettings

Language = Literal["id", "en"]


class Settings(ProcessSettings):
    model_config = SettingsConfigDict(env_prefix="WEB_", extra="ignore")

    users_url: str = "http://127.0.0.1:8001"
    products_url: str = "http://127.0.0.1:8002"
    orders_url: str = "http://127.0.0.1:8003"
    # A placement calls two services itself, so it may take longer than a page read.
    orders_timeout: float = Field(default=10.0, gt=0)
    # Logging in, registering and password changes hash with argon2id (deliberately slow,
    # slower still on a busy machine): they get longer than a page read.
    password_timeout: float = Field(default=15.0, gt=0)
    # An image upload sends megabytes that the products service then decodes and resizes.
    upload_timeout: float = Field(default=30.0, gt=0)
    # The largest image file the admin pages pass on (the products service has its own
    # limit, PRODUCTS_IMAGE_MAX_BYTES, and says so beyond it).
    image_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)

    # Encrypts and signs the session cookie. Several replicas must share it. Unset in
    # development, a random one is made per process (sessions end on restart).
    session_secret: SecretStr | None = None
    # Secrets of the past, still accepted for reading, so a rotation logs nobody out.
    previous_session_secrets: list[SecretStr] = Field(default_factory=list)
    session_max_age_seconds: int = Field(default=30 * 86_400, ge=60)
    # Secure (HTTPS-only) cookies; by default on in production, off otherwise.
    cookie_secure: bool | None = None

    default_language: Language = "id"
    # Dates and "today" on the dashboard are shown in the shop's time zone.
    timezone: str = "Asia/Jakarta"
    # Below this many units a product is "almost gone" on its card and on the dashboard.
    low_stock_threshold: int = Field(default=5, ge=0)
    # Extra origins product images may come from (CSP img-src), space separated: the
    # products service's PRODUCTS_PUBLIC_URL, if it is not https (`pasar up` adds it).
    image_origins: str = "https:"

    @model_validator(mode="after")
    def _session_secret_in_production(self) -> Self:
        if self.environment == "production" and self.session_secret is None:
            raise ValueError("session_secret is required in production")
        return self

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment == "production"

    def _secrets(self) -> list[tuple[str, str | None]]:
        secret = self.session_secret.get_secret_value() if self.session_secret else None
        return [*super()._secrets(), ("session_secret", secret)]
