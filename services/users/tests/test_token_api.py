"""POST /auth/token (all three grants), POST /auth/logout and GET /.well-known/jwks.json."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from testdata import ORDERS_SECRET, PASSWORD
from users_support import UsersApi

from pasar_users.tables import refresh_families, users


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    problem: dict[str, Any] = response.json()
    assert problem["code"] == error
    assert problem["error"] == error
    assert problem["status"] == status
    return problem


async def token(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/auth/token", data=form)


async def jwk_for(client: httpx.AsyncClient, access_token: str) -> jwt.PyJWK:
    kid = jwt.get_unverified_header(access_token)["kid"]
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    (entry,) = [key for key in keys if key["kid"] == kid]
    return jwt.PyJWK(entry)


# --- password grant ---------------------------------------------------------------


async def test_password_grant_issues_an_eddsa_user_token(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    user = await users_api.register("dewi@example.com")
    response = await users_api.login("DEWI@example.com ")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert len(body["refresh_token"]) >= 43
    assert "scope" not in body
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA" and header["kid"]
    claims = jwt.decode(
        body["access_token"],
        await jwk_for(users_client, body["access_token"]),
        algorithms=["EdDSA"],
        audience="pasar",
        issuer="pasar-users",
    )
    assert claims["sub"] == user["id"]
    assert claims["role"] == "customer"
    assert 899 < claims["exp"] - claims["iat"] <= 900 + 1e-3  # iat has a fraction
    assert claims["jti"]
    assert "scope" not in claims


async def test_unknown_email_and_wrong_password_answer_identically(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    await users_api.register("dewi@example.com")
    wrong = await users_api.login("dewi@example.com", "wrong password")
    unknown = await users_api.login("nobody@example.com", PASSWORD)
    assert_oauth_error(wrong, 400, "invalid_grant")
    assert_oauth_error(unknown, 400, "invalid_grant")
    assert wrong.json() == unknown.json()
    assert {k: v for k, v in wrong.headers.items() if k != "x-request-id"} == {
        k: v for k, v in unknown.headers.items() if k != "x-request-id"
    }


@pytest.mark.parametrize(
    ("form", "error", "status"),
    [
        ({}, "invalid_request", 400),
        ({"grant_type": "password"}, "invalid_request", 400),
        ({"grant_type": "password", "username": "a@b.c"}, "invalid_request", 400),
        ({"grant_type": "refresh_token"}, "invalid_request", 400),
        ({"grant_type": "client_credentials", "client_id": "orders"}, "invalid_request", 400),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type", 400),
        ({"grant_type": "implicit"}, "unsupported_grant_type", 400),
    ],
)
async def test_malformed_token_requests(
    users_client: httpx.AsyncClient, form: dict[str, str], error: str, status: int
) -> None:
    assert_oauth_error(await token(users_client, **form), status, error)


async def test_json_body_is_not_a_token_request(users_client: httpx.AsyncClient) -> None:
    response = await users_client.post(
        "/auth/token", json={"grant_type": "password", "username": "a", "password": "b"}
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_login_rehashes_when_parameters_changed(
    users_app: FastAPI, users_api: UsersApi
) -> None:
    from pasar_users.passwords import Passwords

    user = await users_api.register("dewi@example.com")
    db = users_app.state.db
    stronger = Passwords(time_cost=2, memory_kib=64, parallelism=1)
    old_hash = await stronger.hash(PASSWORD)
    async with db.write() as conn:
        await conn.execute(
            update(users).where(users.c.id == user["id"]).values(password_hash=old_hash)
        )
    assert (await users_api.login("dewi@example.com")).status_code == 200
    async with db.read() as conn:
        new_hash = await conn.scalar(select(users.c.password_hash).where(users.c.id == user["id"]))
    assert new_hash != old_hash
    assert "t=1" in new_hash and not users_app.state.runtime.passwords.needs_rehash(new_hash)
    assert (await users_api.login("dewi@example.com")).status_code == 200


# --- refresh grant ----------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    first = account.refresh_token
    rotated = await token(users_client, grant_type="refresh_token", refresh_token=first)
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    second = rotated.json()["refresh_token"]
    assert second != first
    assert (
        jwt.decode(rotated.json()["access_token"], options={"verify_signature": False})["sub"]
        == account.id
    )

    replay = await token(users_client, grant_type="refresh_token", refresh_token=first)
    assert_oauth_error(replay, 400, "invalid_grant")
    after = await token(users_client, grant_type="refresh_token", refresh_token=second)
    assert_oauth_error(after, 400, "invalid_grant")


async def test_refresh_with_garbage_is_invalid_grant(users_client: httpx.AsyncClient) -> None:
    response = await token(users_client, grant_type="refresh_token", refresh_token="x" * 43)
    assert_oauth_error(response, 400, "invalid_grant")


async def test_refresh_after_absolute_expiry_is_refused(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    from datetime import timedelta

    from pasar_kit.db import utcnow

    account = await users_api.account()
    async with users_app.state.db.write() as conn:
        await conn.execute(
            update(refresh_families).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = await token(
        users_client, grant_type="refresh_token", refresh_token=account.refresh_token
    )
    assert_oauth_error(response, 400, "invalid_grant")


async def test_refresh_family_expiry_is_the_configured_ttl(
    users_app: FastAPI, users_api: UsersApi
) -> None:
    await users_api.account()
    async with users_app.state.db.read() as conn:
        row = (
            await conn.execute(select(refresh_families.c.created_at, refresh_families.c.expires_at))
        ).one()
    assert (row.expires_at - row.created_at).total_seconds() == 30 * 24 * 3600


# --- logout -----------------------------------------------------------------------


async def test_logout_revokes_the_family(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    rotated = await token(
        users_client, grant_type="refresh_token", refresh_token=account.refresh_token
    )
    latest = rotated.json()["refresh_token"]
    response = await users_client.post("/auth/logout", json={"refresh_token": latest})
    assert response.status_code == 204
    refused = await token(users_client, grant_type="refresh_token", refresh_token=latest)
    assert_oauth_error(refused, 400, "invalid_grant")


async def test_logout_of_one_device_keeps_the_others(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    account = await users_api.account()
    other = (await users_api.login(account.email)).json()["refresh_token"]
    assert (
        await users_client.post("/auth/logout", json={"refresh_token": account.refresh_token})
    ).status_code == 204
    still = await token(users_client, grant_type="refresh_token", refresh_token=other)
    assert still.status_code == 200


async def test_logout_with_an_unknown_token_is_still_204(users_client: httpx.AsyncClient) -> None:
    response = await users_client.post("/auth/logout", json={"refresh_token": "unknown"})
    assert response.status_code == 204


async def test_logout_needs_a_refresh_token(users_client: httpx.AsyncClient) -> None:
    assert (await users_client.post("/auth/logout", json={})).status_code == 422


# --- client credentials -----------------------------------------------------------


async def test_client_credentials_grants_every_allowed_scope_by_default(
    users_client: httpx.AsyncClient,
) -> None:
    response = await token(
        users_client,
        grant_type="client_credentials",
        client_id="orders",
        client_secret=ORDERS_SECRET,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert body["scope"] == "notifications:write stock:reserve users:read"
    claims = jwt.decode(
        body["access_token"],
        await jwk_for(users_client, body["access_token"]),
        algorithms=["EdDSA"],
        audience="pasar",
    )
    assert claims["sub"] == "orders" and claims["client_id"] == "orders"
    assert set(claims["scope"].split()) == {"users:read", "notifications:write", "stock:reserve"}
    assert "role" not in claims


async def test_client_credentials_narrows_to_the_requested_scope(
    users_client: httpx.AsyncClient,
) -> None:
    response = await token(
        users_client,
        grant_type="client_credentials",
        client_id="orders",
        client_secret=ORDERS_SECRET,
        scope="users:read",
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "users:read"


async def test_client_credentials_refuses_a_scope_not_allowed(
    users_client: httpx.AsyncClient,
) -> None:
    response = await token(
        users_client,
        grant_type="client_credentials",
        client_id="orders",
        client_secret=ORDERS_SECRET,
        scope="users:read admin:everything",
    )
    assert_oauth_error(response, 400, "invalid_scope")


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("orders", "wrong-secret"), ("nobody", ORDERS_SECRET), ("orders", ORDERS_SECRET + "x")],
)
async def test_bad_client_credentials_are_invalid_client(
    users_client: httpx.AsyncClient, client_id: str, secret: str
) -> None:
    response = await token(
        users_client, grant_type="client_credentials", client_id=client_id, client_secret=secret
    )
    assert_oauth_error(response, 401, "invalid_client")


async def test_client_credentials_in_a_basic_header(users_client: httpx.AsyncClient) -> None:
    basic = base64.b64encode(f"orders:{ORDERS_SECRET}".encode()).decode()
    response = await users_client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text
    bad = base64.b64encode(b"orders:nope").decode()
    response = await users_client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {bad}"},
    )
    assert_oauth_error(response, 401, "invalid_client")


async def test_client_with_a_hashed_secret(users_database_url: str) -> None:
    from argon2 import PasswordHasher

    from pasar_kit.testing import lifespan_of
    from pasar_users.app import create_app
    from pasar_users.settings import Settings

    hashed = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash("s3cret-s3cret-s3cret")
    settings = Settings(
        database_url=users_database_url,
        workers_enabled=False,
        service_clients=[{"client_id": "web", "secret_hash": hashed, "scopes": ["users:read"]}],
    )
    app = create_app(settings)
    async with (
        lifespan_of(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://u") as client,
    ):
        good = await token(
            client,
            grant_type="client_credentials",
            client_id="web",
            client_secret="s3cret-s3cret-s3cret",
        )
        assert good.status_code == 200
        bad = await token(
            client, grant_type="client_credentials", client_id="web", client_secret="nope"
        )
        assert_oauth_error(bad, 401, "invalid_client")


# --- JWKS -------------------------------------------------------------------------


async def test_jwks_publishes_public_keys_only(users_client: httpx.AsyncClient) -> None:
    response = await users_client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert key["kid"] and key["use"] == "sig"
    assert "d" not in key
    assert "PRIVATE" not in response.text


async def test_jwks_follows_a_rotation_and_tokens_of_both_keys_verify(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    from pasar_kit.db import utcnow
    from pasar_users.keys import rotate_signing_key

    before = await users_api.account()
    new_kid = await rotate_signing_key(db=users_app.state.db, now=utcnow())
    keys = (await users_client.get("/.well-known/jwks.json")).json()["keys"]
    assert len(keys) == 2 and keys[0]["kid"] == new_kid
    after = await users_api.account()
    assert jwt.get_unverified_header(after.access_token)["kid"] == new_kid
    for account in (before, after):
        assert (await users_client.get("/users/me", headers=account.headers)).status_code == 200


# --- RFC 6749 section 5.2 ---------------------------------------------------------


async def test_bad_user_credentials_are_400_invalid_grant_without_a_challenge(
    users_api: UsersApi,
) -> None:
    await users_api.register("dewi@example.com")
    response = await users_api.login("dewi@example.com", "wrong password")
    assert_oauth_error(response, 400, "invalid_grant")
    assert "www-authenticate" not in response.headers


async def test_bad_client_credentials_in_a_basic_header_are_challenged_with_basic(
    users_client: httpx.AsyncClient,
) -> None:
    for value in (base64.b64encode(b"orders:nope").decode(), "not base64!", "b3JkZXJz"):
        response = await users_client.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {value}"},
        )
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"] == 'Basic realm="pasar"'


async def test_bad_client_credentials_in_the_form_are_401_invalid_client(
    users_client: httpx.AsyncClient,
) -> None:
    response = await token(
        users_client, grant_type="client_credentials", client_id="orders", client_secret="no"
    )
    assert_oauth_error(response, 401, "invalid_client")
    # Every 401 names a scheme the client may use (RFC 9110 section 11.6.1).
    assert response.headers["www-authenticate"] == 'Basic realm="pasar"'


async def test_access_tokens_carry_a_sub_second_iat(users_api: UsersApi) -> None:
    account = await users_api.account()
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    assert isinstance(claims["iat"], float)  # JSON 1795650388.123456, not 1795650388
    assert 899 < claims["exp"] - claims["iat"] <= 900 + 1e-3
    service = jwt.decode(await users_api.service_token(), options={"verify_signature": False})
    assert isinstance(service["iat"], float)
