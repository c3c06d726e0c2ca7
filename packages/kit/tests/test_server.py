"""The server every process runs in, over real sockets: bounded request heads (431) and
forwarding headers believed only from proxies the operator names."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from pasar_kit.testing import serve

MAX_HEADER_BYTES = 32_768
MAX_HEADER_COUNT = 100


def build() -> FastAPI:
    app = FastAPI()

    @app.get("/who")
    async def who(request: Request) -> dict[str, object]:
        return {"client": request.client.host if request.client else None}

    return app


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with serve(build()) as base:
        yield base


async def _exchange(url: str, head: bytes, *, stream_bytes: int = 0) -> tuple[bytes, int]:
    """Send ``head`` (then ``stream_bytes`` more of one endless header value) on a raw
    connection; returns what the server answered and how many bytes it let us send."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    sent = 0
    try:
        writer.write(head)
        await writer.drain()
        chunk = b"a" * 65_536
        while sent < stream_bytes:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        if stream_bytes:
            writer.write(b"\r\n\r\n")
            await writer.drain()
    except ConnectionError:
        pass  # refused mid-stream: the server closed the connection
    try:
        answer = await asyncio.wait_for(reader.read(4096), timeout=30)
    except ConnectionError:
        answer = b""
    writer.close()
    return answer, sent


def _problem(answer: bytes) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), head
    assert b"content-type: application/problem+json" in head.lower()
    return dict(json.loads(body))


async def test_an_endless_header_is_refused_without_being_read(url: str) -> None:
    # A single 48 MB header was once read into memory in full and answered 200.
    huge = 48 * 1024 * 1024
    answer, sent = await _exchange(
        url, b"GET /who HTTP/1.1\r\nHost: t\r\nX-Big: ", stream_bytes=huge
    )
    # The server stops reading past the limit: the rest never leaves the client's
    # buffers (the refusal may be lost to the reset, which is as good).
    assert sent < 16 * 1024 * 1024
    if answer:
        assert _problem(answer)["code"] == "header_fields_too_large"


async def test_a_head_just_over_the_limit_gets_a_431_problem(url: str) -> None:
    head = b"GET /who HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n"
    answer, _ = await _exchange(url, head)
    problem = _problem(answer)
    assert problem["status"] == 431 and problem["code"] == "header_fields_too_large"


async def test_too_many_header_fields_get_a_431_problem(url: str) -> None:
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(MAX_HEADER_COUNT + 1))
    answer, _ = await _exchange(url, b"GET /who HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n")
    assert _problem(answer)["code"] == "header_fields_too_large"


async def test_heads_within_the_limits_are_served(url: str) -> None:
    headers = {f"X-F{i}": "v" for i in range(MAX_HEADER_COUNT - 10)}
    headers["Cookie"] = "c=" + "x" * 8_000
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/who", headers=headers)
        # The connection stays usable after a refusal on another one.
        again = await client.get(f"{url}/who")
    assert response.status_code == 200 and again.status_code == 200


async def test_forwarded_for_is_believed_from_nobody_by_default(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uvicorn's own default (and FORWARDED_ALLOW_IPS) would believe 127.0.0.1, the address
    # every client of `pasar up` has.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    async with serve(build()) as other, httpx.AsyncClient() as client:
        for base in (url, other):
            forged = await client.get(f"{base}/who", headers={"X-Forwarded-For": "198.51.100.7"})
            assert forged.json() == {"client": "127.0.0.1"}


async def test_forwarded_for_is_believed_from_a_named_proxy() -> None:
    async with (
        serve(build(), forwarded_allow_ips="127.0.0.1") as url,
        httpx.AsyncClient() as client,
    ):
        forwarded = await client.get(f"{url}/who", headers={"X-Forwarded-For": "198.51.100.7"})
    assert forwarded.json() == {"client": "198.51.100.7"}


def test_servers_keep_idle_connections_longer_than_our_clients() -> None:
    """The client must be the side that closes an idle connection: a server closing first
    races a request sent on it (a dropped connection, seen as a flaky failure)."""
    from pasar_kit import http, server

    keep = server.server_options()["timeout_keep_alive"]
    assert keep == server.KEEPALIVE_SECONDS
    assert keep > http.KEEPALIVE_SECONDS
    expiry = httpx.Limits().keepalive_expiry
    assert expiry is not None and keep > expiry
