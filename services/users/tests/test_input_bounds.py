"""Every field is bounded before it reaches a query: an over-long value is a clear 4xx,
never a 500 (PostgreSQL refuses a value longer than its column) and never stored."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select
from testdata import ORDERS_SECRET
from users_support import ClientFrom, UsersApi

from pasar_users.tables import attempts


def assert_invalid_request(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "u" * 255 + "@example.com", "password": "x"},
        {"grant_type": "password", "username": "u" * 900_000, "password": "x"},
        {"grant_type": "password", "username": "a@example.com", "password": "p" * 1025},
        {"grant_type": "refresh_token", "refresh_token": "r" * 513},
        {"grant_type": "client_credentials", "client_id": "c" * 101, "client_secret": "s"},
        {"grant_type": "client_credentials", "client_id": "orders", "client_secret": "s" * 1025},
        {
            "grant_type": "client_credentials",
            "client_id": "orders",
            "client_secret": ORDERS_SECRET,
            "scope": "users:read " * 100,
        },
        {"grant_type": "g" * 65},
    ],
    ids=[
        "username",
        "username-0.9MB",
        "password",
        "refresh_token",
        "client_id",
        "client_secret",
        "scope",
        "grant_type",
    ],
)
async def test_over_long_token_fields_are_invalid_request(
    users_app: FastAPI, users_client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    assert_invalid_request(await users_client.post("/auth/token", data=form))
    async with users_app.state.db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(attempts)) == 0


async def test_a_username_that_normalises_too_long_is_invalid_request(
    users_client: httpx.AsyncClient,
) -> None:
    # U+FB03 (the "ffi" ligature) is one character that IDNA maps to three.
    username = "a" * 30 + "@" + ".".join(["\ufb03" * 20] * 4) + ".id"
    assert len(username) <= 254
    response = await users_client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": "x"}
    )
    assert_invalid_request(response)


async def test_over_long_basic_credentials_are_invalid_client(
    users_client: httpx.AsyncClient,
) -> None:
    import base64

    basic = base64.b64encode(b"o" * 101 + b":" + ORDERS_SECRET.encode()).decode()
    response = await users_client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("host", ["not-an-ip", "1" * 10_000, "203.0.113.7, 10.0.0.1"])
async def test_a_client_address_that_is_no_ip_is_refused_before_any_query(
    users_app: FastAPI, client_from: ClientFrom, host: str
) -> None:
    async with client_from(users_app, host) as client:
        login = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "a@example.com", "password": "x"},
        )
        assert_invalid_request(login)
        register = await client.post(
            "/auth/register",
            json={"email": "a@example.com", "password": "long enough", "full_name": "A"},
        )
        assert register.status_code == 400
        assert register.json()["code"] == "invalid_client_address"
    async with users_app.state.db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(attempts)) == 0


async def test_a_forwarded_address_from_a_trusted_proxy_is_checked(users_app: FastAPI) -> None:
    """Through uvicorn itself: with a trusted proxy, X-Forwarded-For becomes the client
    address whatever it says."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        users_app,
        lifespan="off",
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        form = {"grant_type": "password", "username": "a@example.com", "password": "x"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for forwarded in ("x" * 5000, "<script>"):
                response = await client.post(
                    "/auth/token", data=form, headers={"X-Forwarded-For": forwarded}
                )
                assert_invalid_request(response)
            ok = await client.post(
                "/auth/token", data=form, headers={"X-Forwarded-For": "2001:db8::7"}
            )
            assert ok.status_code == 400 and ok.json()["error"] == "invalid_grant"
    finally:
        server.should_exit = True
        await task
        sock.close()
    async with users_app.state.db.read() as conn:
        stored = (await conn.scalars(select(attempts.c.address))).all()
    assert stored == ["2001:db8::/64"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/internal/users/{long}"),
        ("PATCH", "/users/{long}"),
        ("POST", "/users/me/notifications/{long}/read"),
    ],
)
async def test_ids_outside_the_id_rule_are_404_without_echo(
    users_client: httpx.AsyncClient, users_api: UsersApi, method: str, path: str
) -> None:
    # As in products and orders: such an id names nothing, so it is the route's own 404,
    # answered without a query and without repeating the id; a caller without a token
    # still hears 401 first.
    admin = await users_api.account(admin=True)
    service = await users_api.service_token()
    headers = {
        "Authorization": f"Bearer {service if path.startswith('/internal') else admin.access_token}"
    }
    body = {"active": True} if method == "PATCH" else None
    for bad in ("i" * 5000, "i" * 37, "ab$c", "\u0661\u0662"):
        response = await users_client.request(
            method, path.format(long=bad), headers=headers, json=body
        )
        assert response.status_code == 404, response.text
        assert response.json()["code"] in ("user_not_found", "notification_not_found")
        assert bad not in response.text
        anonymous = await users_client.request(method, path.format(long=bad), json=body)
        assert anonymous.status_code == 401, anonymous.text
