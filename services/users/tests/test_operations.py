"""Health, readiness, metrics, request ids, settings and a configured signing key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import ValidationError
from users_support import UsersApi

from pasar_kit.auth import SigningKey
from pasar_kit.testing import lifespan_of
from pasar_users.app import create_app
from pasar_users.settings import Settings


async def test_health_ready_and_metrics(users_client: httpx.AsyncClient) -> None:
    assert (await users_client.get("/healthz")).json() == {"status": "ok", "service": "users"}
    ready = await users_client.get("/readyz")
    assert ready.status_code == 200, ready.text
    metrics = await users_client.get("/metrics")
    assert metrics.status_code == 200
    assert "http_requests_total" in metrics.text


async def test_request_id_is_echoed(users_client: httpx.AsyncClient) -> None:
    response = await users_client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert (await users_client.get("/healthz")).headers["x-request-id"]


async def test_openapi_declares_operation_ids_and_problems(users_client: httpx.AsyncClient) -> None:
    spec = (await users_client.get("/openapi.json")).json()
    token = spec["paths"]["/auth/token"]["post"]
    assert token["operationId"] == "token"
    assert {"400", "401", "429"} <= set(token["responses"])
    assert "409" in spec["paths"]["/users/{user_id}"]["patch"]["responses"]
    operation_ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))


async def test_not_ready_without_a_database_schema(tmp_path: Path) -> None:
    # An empty database (migrations not run): the service starts, says not ready,
    # and refuses to issue tokens rather than failing obscurely.
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", workers_enabled=False
    )
    app = create_app(settings)
    async with (
        lifespan_of(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://u") as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        login = await client.post(
            "/auth/token", data={"grant_type": "password", "username": "a@b.co", "password": "x"}
        )
        assert login.status_code == 503
        assert login.json()["code"] == "signing_key_unavailable"
        assert (await client.get("/.well-known/jwks.json")).status_code == 503


async def test_configured_signing_key_is_the_only_one(
    users_database_url: str, users_api: UsersApi
) -> None:
    key = SigningKey.generate()
    settings = Settings(
        database_url=users_database_url,
        workers_enabled=False,
        argon2_time_cost=1,
        argon2_memory_kib=64,
        argon2_parallelism=1,
        signing_key_pem=key.to_pem().decode(),
        signing_key_id="deploy-key-1",
    )
    app = create_app(settings)
    async with (
        lifespan_of(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://u") as client,
    ):
        keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
        assert [k["kid"] for k in keys] == ["deploy-key-1"]
        assert keys[0]["x"] == key.public_jwk()["x"]
        await client.post(
            "/auth/register",
            json={"email": "pem@example.com", "password": "long enough", "full_name": "P"},
        )
        login = await client.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": "pem@example.com",
                "password": "long enough",
            },
        )
        access = login.json()["access_token"]
        assert jwt.get_unverified_header(access)["kid"] == "deploy-key-1"
        me = await client.get("/users/me", headers={"Authorization": f"Bearer {access}"})
        assert me.status_code == 200
        assert (await client.get("/readyz")).status_code == 200


def test_service_clients_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clients = [{"client_id": "orders", "secret": "s" * 32, "scopes": ["users:read"]}]
    monkeypatch.setenv("USERS_SERVICE_CLIENTS", json.dumps(clients))
    monkeypatch.setenv("USERS_ACCESS_TOKEN_TTL_SECONDS", "600")
    settings = Settings()
    assert settings.service_clients[0].client_id == "orders"
    assert settings.service_clients[0].scopes == ["users:read"]
    assert settings.access_token_ttl_seconds == 600
    assert settings.database_url == "sqlite+aiosqlite:///./var/users.db"


@pytest.mark.parametrize("secret", ["changeme", "short-secret", "password"])
def test_production_refuses_weak_client_secrets(secret: str) -> None:
    with pytest.raises(ValidationError, match="service_clients"):
        Settings(
            environment="production",
            service_clients=[{"client_id": "orders", "secret": secret, "scopes": []}],
        )


def test_production_accepts_strong_client_secrets() -> None:
    settings = Settings(
        environment="production",
        service_clients=[
            {"client_id": "orders", "secret": "a-long-random-secret-0123456789", "scopes": []},
            {"client_id": "web", "secret_hash": "$argon2id$v=19$m=65536,t=3,p=4$x$y", "scopes": []},
        ],
    )
    assert len(settings.service_clients) == 2


@pytest.mark.parametrize(
    "client",
    [
        {"client_id": "x", "scopes": []},
        {"client_id": "x", "secret": "a" * 20, "secret_hash": "h", "scopes": []},
        {"client_id": "", "secret": "a" * 20},
        {"client_id": "x", "secret": "a" * 20, "unknown": 1},
    ],
)
def test_malformed_client_config(client: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(service_clients=[client])


def test_signing_key_needs_an_id() -> None:
    with pytest.raises(ValidationError):
        Settings(signing_key_pem=SigningKey.generate().to_pem().decode())
