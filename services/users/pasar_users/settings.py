"""Configuration of the User-Service (environment variables prefixed ``USERS_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from pasar_kit.settings import ServiceSettings


class ServiceClientConfig(BaseModel):
    """One service allowed the client-credentials grant."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=100)
    secret: SecretStr | None = None
    # An argon2 hash of the secret, so the plain secret need not sit in this config.
    secret_hash: str | None = None
    scopes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_secret(self) -> ServiceClientConfig:
        if (self.secret is None) == (self.secret_hash is None):
            raise ValueError(f"client {self.client_id!r} needs exactly one of secret, secret_hash")
        return self


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/users.db"

    # JSON list: [{"client_id": "orders", "secret": "...", "scopes": ["users:read"]}]
    service_clients: list[ServiceClientConfig] = Field(default_factory=list)

    access_token_ttl_seconds: int = Field(default=900, ge=10)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)

    # A fixed key from the deployment; otherwise keys live in the database.
    signing_key_pem: SecretStr | None = None
    signing_key_id: str | None = None
    # How often a replica re-reads the keys table (picks up a rotation made elsewhere).
    key_reload_seconds: float = Field(default=30, gt=0)

    # argon2id; the defaults are argon2-cffi's (RFC 9106 low-memory profile), above
    # OWASP's minimum. Tests lower them.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    # Each computation holds argon2_memory_kib and runs argon2_parallelism threads: at
    # most this many at once (default: cores // argon2_parallelism, at least 1), this
    # many more queued (logins ahead of registrations), none queued longer than this;
    # the rest are answered 503 hashing_busy with Retry-After.
    argon2_concurrency: int | None = Field(default=None, ge=1)
    argon2_max_waiting: int = Field(default=32, ge=0)
    argon2_max_wait_seconds: float = Field(default=5.0, gt=0)

    # The login throttle (throttle.py). Failures count for login_window_seconds.
    login_window_seconds: int = Field(default=3600, ge=1)
    # One account from one address: this many failures free, then a delay before each
    # next attempt, from login_base_delay_seconds doubling up to the maximum.
    login_pair_free_failures: int = Field(default=5, ge=1)
    login_base_delay_seconds: float = Field(default=1.0, gt=0)
    login_pair_max_delay_seconds: int = Field(default=900, ge=1)
    # One account from all addresses: past this many failures an address that has
    # failed on it waits too (doubling up to the maximum); a fresh address never does.
    login_account_soft_limit: int = Field(default=20, ge=1)
    login_account_max_delay_seconds: int = Field(default=60, ge=1)
    # One address over all accounts: a hard ceiling, high enough for a NAT or a proxy.
    login_address_max_failures: int = Field(default=200, ge=1)
    # Registrations from one address per window (the storefront registers shoppers
    # from its own address unless it forwards theirs, so not too low).
    registrations_per_address: int = Field(default=50, ge=1)
    registration_window_seconds: int = Field(default=3600, ge=1)
    # Verification emails an account may ask for: at most one per this many seconds and
    # this many a day (the one sent on registration or an email change counts).
    verification_resend_seconds: int = Field(default=60, ge=1)
    verification_emails_per_day: int = Field(default=5, ge=1)
    # Password-reset requests per window: per email (beyond it the answer is still 202
    # but nothing is sent) and per client address over any emails (beyond it: 429).
    password_resets_per_email: int = Field(default=5, ge=1)
    password_resets_per_address: int = Field(default=30, ge=1)
    password_reset_window_seconds: int = Field(default=3600, ge=1)

    workers_enabled: bool = True
    # Expired refresh-token families and old throttle rows are deleted this often.
    purge_interval_seconds: float = Field(default=3600, gt=0)

    # Mail: the outbox sender (mail/sender.py) and where its messages go. ``file`` writes
    # each message as an .eml file under mail_dir and logs its links (no mail server
    # needed); ``smtp`` hands it to a mail server.
    mail_transport: Literal["file", "smtp"] = "file"
    mail_dir: str = "./var/mail"
    mail_from: str = Field(default="pasar <toko@localhost>", min_length=3, max_length=300)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # starttls: upgrade a plain connection (port 587); tls: TLS from the start (port
    # 465); none: plain text (a relay on localhost, tests).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    # The sender polls this often; enqueuing code nudges it, so mail leaves at once.
    mail_poll_seconds: float = Field(default=2, gt=0)
    mail_batch_size: int = Field(default=50, ge=1, le=1000)
    # Messages of one batch handed to the transport at once.
    mail_concurrency: int = Field(default=8, ge=1, le=100)
    # Temporary failures retry with exponential backoff (plus jitter) from the base up to
    # the maximum; after mail_max_attempts the delivery is failed.
    mail_max_attempts: int = Field(default=10, ge=1)
    mail_retry_base_seconds: float = Field(default=5, gt=0)
    mail_retry_max_seconds: float = Field(default=900, gt=0)
    # Sent, dropped and failed deliveries are deleted from the ledger after this long.
    mail_retention_days: int = Field(default=90, ge=1)
    # Where the links in mail point: the storefront (`pasar up` serves it on port 8000).
    storefront_url: str = "http://127.0.0.1:8000"
    shop_name: str = Field(default="pasar", min_length=1, max_length=100)
    # Every active admin gets a short mail for each new order.
    admin_order_emails: bool = True
    email_verification_ttl_seconds: int = Field(default=48 * 3600, ge=60)
    password_reset_ttl_seconds: int = Field(default=1800, ge=60)

    @model_validator(mode="after")
    def _key_with_id(self) -> Settings:
        if self.signing_key_pem is not None and not self.signing_key_id:
            raise ValueError("signing_key_id is required with signing_key_pem")
        return self

    def _secrets(self) -> list[tuple[str, str | None]]:
        secrets = super()._secrets()
        for client in self.service_clients:
            if client.secret is not None:
                secrets.append(
                    (
                        f"service_clients[{client.client_id}].secret",
                        client.secret.get_secret_value(),
                    )
                )
        if self.smtp_password is not None:
            secrets.append(("smtp_password", self.smtp_password.get_secret_value()))
        return secrets
