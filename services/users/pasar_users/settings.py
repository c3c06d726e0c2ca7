"""Configuration of the users service (environment variables prefixed ``USERS_``)."""

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

    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    login_lockout_seconds: int = Field(default=300, ge=1)

    workers_enabled: bool = True
    # Expired refresh-token families and old login failures are deleted this often.
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
