"""The settings base every service extends (one env prefix per service)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pasar_kit.lifecycle import DEFAULT_GRACE_SECONDS

Environment = Literal["development", "test", "production"]

# Values that must never protect a real deployment.
_UNSAFE_SECRETS = {"", "changeme", "change-me", "secret", "password", "dev", "development"}


class ProcessSettings(BaseSettings):
    """Configuration every pasar process shares: environment, logs, outgoing calls.

    Subclasses set ``model_config = SettingsConfigDict(env_prefix="WEB_")`` and so on.
    """

    model_config = SettingsConfigDict(extra="ignore")

    environment: Environment = "development"

    log_level: str = "INFO"
    log_json: bool = True

    # Outgoing calls.
    http_connect_timeout: float = 1.0
    http_timeout: float = 3.0
    http_retries: int = 2
    circuit_failure_threshold: int = 5
    circuit_reset_seconds: float = 5.0

    max_body_bytes: int = 1_048_576
    # The request line and headers together, and how many header fields: beyond either
    # the server answers 431 before the app sees the request (``pasar_kit.server``).
    max_header_bytes: int = Field(default=32_768, ge=4_096, le=1_048_576)
    max_header_count: int = Field(default=100, ge=16, le=1_000)

    # Shutdown (SIGTERM): ``/readyz`` answers 503 at once; the server keeps serving for
    # ``shutdown_delay_seconds`` (so a balancer notices first; off by default), then takes
    # no new connection, finishes the requests in flight and the background jobs' current
    # batch, and exits within ``shutdown_grace_seconds`` of the signal (delay included).
    # Keep the grace below the orchestrator's own (Kubernetes: 30 s) or it kills first.
    shutdown_grace_seconds: float = Field(default=DEFAULT_GRACE_SECONDS, ge=1, le=600)
    shutdown_delay_seconds: float = Field(default=0.0, ge=0, le=60)

    # Traces (``pasar_kit.tracing``): exported over OTLP/HTTP when an endpoint is set here
    # or in the standard OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    # off, at no cost, otherwise. The base URL of a collector, e.g. http://127.0.0.1:4318.
    otlp_endpoint: str | None = None
    # The share of new traces recorded; a call that arrives traced keeps its caller's choice.
    trace_sample_ratio: float = Field(default=1.0, ge=0, le=1)

    # ``GET /metrics`` wants ``Authorization: Bearer <token>`` when set; unset, it answers
    # loopback callers only.
    metrics_token: SecretStr | None = None

    @model_validator(mode="after")
    def _refuse_unsafe_secrets(self) -> Self:
        if self.environment != "production":
            return self
        for name, value in self._secrets():
            if value is not None and value.lower() in _UNSAFE_SECRETS | {""}:
                raise ValueError(f"{name} is unsafe for production; set a real secret")
            if value is not None and len(value) < 16:
                raise ValueError(f"{name} must be at least 16 characters in production")
        return self

    def _secrets(self) -> list[tuple[str, str | None]]:
        """Secret values to police in production; subclasses extend the list."""
        token = self.metrics_token.get_secret_value() if self.metrics_token else None
        return [("metrics_token", token)]


class ServiceSettings(ProcessSettings):
    """Configuration shared by every service that owns a database.

    Subclasses set ``model_config = SettingsConfigDict(env_prefix="USERS_")`` and so on.
    """

    database_url: str = "sqlite+aiosqlite:///./var/service.db"
    # SQLite file databases want one writer connection; servers take a fixed pool of
    # this many connections per process (a request that finds all busy waits for one).
    database_pool_size: int = Field(default=20, ge=1, le=500)

    # Token verification (every service) and issuance (users).
    jwt_issuer: str = "pasar-users"
    jwt_audience: str = "pasar"
    jwks_url: str | None = None
    jwks_cache_seconds: int = 300
    # How often the list of revoked users (demoted, deactivated) is fetched from the users
    # service; a revoked user's old tokens are refused at most this long after the change.
    revocation_poll_seconds: float = Field(default=2.0, gt=0, le=300)

    # This service's own identity for the client-credentials grant.
    client_id: str | None = None
    client_secret: SecretStr | None = None

    def _secrets(self) -> list[tuple[str, str | None]]:
        secret = self.client_secret.get_secret_value() if self.client_secret else None
        return [*super()._secrets(), ("client_secret", secret)]
