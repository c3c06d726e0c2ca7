"""Configuration of the User-Service (environment variables prefixed ``USERS_``)."""

from __future__ import annotations

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
        return secrets
