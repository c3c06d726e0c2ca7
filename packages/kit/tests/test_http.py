"""The resilient client against a real local server: retries, circuit, timeouts, ids."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request, Response

from pasar_kit.http import CircuitBreaker, ServiceClient
from pasar_kit.observability import request_id_var
from pasar_kit.problems import DependencyUnavailable
from pasar_kit.testing import serve


class Flaky:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.failures_left = 0
        self.seen_request_ids: list[str | None] = []


def build(state: Flaky) -> FastAPI:
    app = FastAPI()

    def count(name: str) -> None:
        state.calls[name] = state.calls.get(name, 0) + 1

    @app.get("/flaky")
    async def flaky(request: Request) -> Response:
        count("flaky")
        state.seen_request_ids.append(request.headers.get("x-request-id"))
        if state.failures_left > 0:
            state.failures_left -= 1
            return Response(status_code=503)
        return Response('{"ok": true}', media_type="application/json")

    @app.post("/write")
    async def write() -> Response:
        count("write")
        return Response(status_code=500)

    @app.get("/hang")
    async def hang() -> None:
        count("hang")
        await asyncio.sleep(30)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        form = await request.form() if "form" in request.headers.get("content-type", "") else {}
        return {
            "authorization": request.headers.get("authorization"),
            "query": dict(request.query_params),
            "form": dict(form),
        }

    @app.get("/throttled")
    async def throttled() -> Response:
        count("throttled")
        return Response(
            '{"code": "too_many_attempts"}', status_code=429, headers={"Retry-After": "60"}
        )

    @app.get("/garbage")
    async def garbage() -> Response:
        return Response("<html>oops", media_type="text/html")

    @app.get("/missing")
    async def missing() -> Response:
        return Response('{"code": "not_found"}', status_code=404, media_type="application/json")

    return app


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Flaky]]:
    state = Flaky()
    async with serve(build(state)) as url:
        yield url, state


async def test_idempotent_call_is_retried_until_success(server: tuple[str, Flaky]) -> None:
    url, state = server
    state.failures_left = 2
    client = ServiceClient("flaky", url, retries=2)
    reply = await client.request("GET", "/flaky")
    await client.close()
    assert reply.status == 200 and reply.body == {"ok": True}
    assert state.calls["flaky"] == 3


async def test_non_idempotent_call_is_not_retried(server: tuple[str, Flaky]) -> None:
    url, state = server
    client = ServiceClient("flaky", url, retries=3)
    with pytest.raises(DependencyUnavailable) as caught:
        await client.request("POST", "/write", json={})
    await client.close()
    assert state.calls["write"] == 1
    assert caught.value.headers["Retry-After"].isdigit()


async def test_client_errors_are_answers_not_failures(server: tuple[str, Flaky]) -> None:
    url, _ = server
    client = ServiceClient("flaky", url)
    reply = await client.request("GET", "/missing")
    await client.close()
    assert reply.status == 404 and reply.body == {"code": "not_found"}
    assert client.breaker.failures == 0


async def test_hanging_dependency_times_out(server: tuple[str, Flaky]) -> None:
    url, state = server
    client = ServiceClient("flaky", url, timeout=0.2, retries=1)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable):
        await client.request("GET", "/hang")
    await client.close()
    assert state.calls["hang"] == 2
    assert time.monotonic() - started < 5  # bounded, not a hang (generous: not a timing test)


async def test_garbage_answer_is_a_failure(server: tuple[str, Flaky]) -> None:
    url, _ = server
    client = ServiceClient("flaky", url, retries=0)
    with pytest.raises(DependencyUnavailable):
        await client.request("GET", "/garbage")
    await client.close()


async def test_circuit_opens_and_then_lets_a_trial_through(server: tuple[str, Flaky]) -> None:
    url, state = server
    breaker = CircuitBreaker(threshold=2, reset_seconds=0.3)
    client = ServiceClient("flaky", url, retries=0, breaker=breaker)
    state.failures_left = 100
    for _ in range(2):
        with pytest.raises(DependencyUnavailable):
            await client.request("GET", "/flaky")
    calls_when_opened = state.calls["flaky"]
    with pytest.raises(DependencyUnavailable):
        await client.request("GET", "/flaky")
    assert state.calls["flaky"] == calls_when_opened  # open: no call made
    await asyncio.sleep(0.35)
    state.failures_left = 0
    reply = await client.request("GET", "/flaky")
    await client.close()
    assert reply.ok and breaker.opened_at is None


async def test_connection_refused_is_dependency_unavailable() -> None:
    client = ServiceClient("nobody", "http://127.0.0.1:1", retries=1)
    with pytest.raises(DependencyUnavailable):
        await client.request("GET", "/anything")
    await client.close()


async def test_request_id_travels(server: tuple[str, Flaky]) -> None:
    url, state = server
    client = ServiceClient("flaky", url)
    token = request_id_var.set("trace-me-1")
    try:
        await client.request("GET", "/flaky")
    finally:
        request_id_var.reset(token)
        await client.close()
    assert state.seen_request_ids[-1] == "trace-me-1"


async def test_a_call_carries_given_headers_query_and_form(server: tuple[str, Flaky]) -> None:
    url, _ = server
    client = ServiceClient("flaky", url)
    reply = await client.request(
        "POST",
        "/echo",
        form={"grant_type": "password", "username": "siti@example.com"},
        params=[("limit", 5), ("q", "kopi gayo")],
        headers={"Authorization": "Bearer shopper-token"},
    )
    await client.close()
    assert reply.body == {
        "authorization": "Bearer shopper-token",
        "query": {"limit": "5", "q": "kopi gayo"},
        "form": {"grant_type": "password", "username": "siti@example.com"},
    }


async def test_a_429_is_a_failure_between_services_and_an_answer_for_a_storefront(
    server: tuple[str, Flaky],
) -> None:
    url, state = server
    between_services = ServiceClient("flaky", url, retries=1)
    with pytest.raises(DependencyUnavailable):
        await between_services.request("GET", "/throttled")
    await between_services.close()
    assert state.calls["throttled"] == 2  # backed off and tried again

    storefront = ServiceClient("flaky", url, retries=1, throttling_is_failure=False)
    reply = await storefront.request("GET", "/throttled")
    await storefront.close()
    assert reply.status == 429 and reply.headers["Retry-After"] == "60"
    assert storefront.breaker.failures == 0
