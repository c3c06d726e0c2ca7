"""The error contract every service inherits: problem+json with a stable code, never a 500
with internals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from pasar_kit.app import service_app
from pasar_kit.db import Database
from pasar_kit.problems import Problem, problems
from pasar_kit.testing import lifespan_of


class OutOfCheese(Problem):
    status = 409
    code = "out_of_cheese"
    title = "Out of cheese"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def build(tmp_path: object) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = Database(f"sqlite+aiosqlite:///{tmp_path}/kit.db")
        yield
        await app.state.db.dispose()

    app = service_app(
        "kit", title="kit", description="test", lifespan=lifespan, max_body_bytes=1000
    )

    @app.post("/things", responses=problems(409))
    async def create(body: Body) -> dict[str, str]:
        if body.name == "cheese":
            raise OutOfCheese("No cheese left.", shortages=[{"what": "cheese"}])
        return {"name": body.name}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: SELECT * FROM users")

    return app


@pytest.fixture
async def client(tmp_path: object) -> AsyncIterator[httpx.AsyncClient]:
    app = build(tmp_path)
    async with lifespan_of(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    return body  # type: ignore[no-any-return]


async def test_domain_problem_carries_extra_members(client: httpx.AsyncClient) -> None:
    body = assert_problem(
        await client.post("/things", json={"name": "cheese"}), 409, "out_of_cheese"
    )
    assert body["shortages"] == [{"what": "cheese"}]


async def test_validation_error_lists_errors(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/things", json={"nom": 1}), 422, "validation_error")
    assert isinstance(body["errors"], list) and body["errors"]
    assert {"loc", "msg"} <= body["errors"][0].keys()


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/things", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/things", json={"name": "x" * 5000})
    assert_problem(response, 413, "payload_too_large")


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404, "not_found")
    assert_problem(await client.delete("/things"), 405, "method_not_allowed")


async def test_unexpected_error_hides_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom", headers={"X-Request-ID": "req-42"})
    body = assert_problem(response, 500, "internal_error")
    assert "SELECT" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] == "req-42"
    assert body["detail"] == "An unexpected error occurred."


async def test_request_id_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] != "bad id\twith spaces"
    assert len(generated.headers["x-request-id"]) == 32


async def test_health_ready_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).json()["status"] == "ready"
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert (
        'http_requests_total{method="GET",route="/readyz",service="kit",status="200"}'
        in metrics.text
    )


async def test_readyz_is_503_when_database_is_unusable(tmp_path: object) -> None:
    app = build(tmp_path)
    async with lifespan_of(app):
        await app.state.db.dispose()
        # Nothing listens on port 1: the connection is refused at once.
        app.state.db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            assert_problem(await c.get("/readyz"), 503, "service_unavailable")


@pytest.mark.parametrize(
    ("method", "url", "content"),
    [
        ("post", "/things", b'{"name": "a\\u0000b"}'),
        ("post", "/things", b'{"name": "a\x00b"}'),
        ("get", "/healthz?q=a%00b", None),
        ("get", "/things/a%00b", None),
    ],
)
async def test_nul_characters_are_422_not_a_database_error(
    client: httpx.AsyncClient, method: str, url: str, content: bytes | None
) -> None:
    kwargs = (
        {"content": content, "headers": {"content-type": "application/json"}} if content else {}
    )
    response = await client.request(method.upper(), url, **kwargs)
    assert_problem(response, 422, "invalid_characters")
