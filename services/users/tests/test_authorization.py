"""Who may call what: the matrix over every guarded route, and forged tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from testdata import PASSWORD
from users_support import UsersApi

from pasar_kit.auth import SigningKey, access_claims


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: dict[str, Any] | None
    ok: int


def routes(ctx: dict[str, str]) -> dict[str, Route]:
    return {
        "get_me": Route("GET", "/users/me", None, 200),
        "update_me": Route("PATCH", "/users/me", {"phone": "0812"}, 200),
        "change_password": Route(
            "PUT",
            "/users/me/password",
            {"current_password": PASSWORD, "new_password": "another password"},
            204,
        ),
        "list_notifications": Route("GET", "/users/me/notifications", None, 200),
        "mark_read": Route(
            "POST", f"/users/me/notifications/{ctx['notification']}/read", None, 204
        ),
        "list_users": Route("GET", "/users", None, 200),
        "update_user": Route("PATCH", f"/users/{ctx['customer']}", {"active": True}, 200),
        "internal_user": Route("GET", f"/internal/users/{ctx['customer']}", None, 200),
        "internal_notify": Route(
            "POST",
            "/internal/notifications",
            {
                "event_id": "matrix-1",
                "user_id": ctx["customer"],
                "type": "order.created",
                "message": "hello",
                "occurred_at": "2026-11-25T14:03:00Z",
            },
            202,
        ),
    }


USER_ROUTES = {"get_me", "update_me", "change_password", "list_notifications", "mark_read"}
ADMIN_ROUTES = {"list_users", "update_user"}

# Which callers each route admits; everyone else gets 403 (or 401 when anonymous).
ALLOWED: dict[str, set[str]] = {
    **{route: {"customer", "admin"} for route in USER_ROUTES},
    **{route: {"admin"} for route in ADMIN_ROUTES},
    "internal_user": {"service_all", "service_read"},
    "internal_notify": {"service_all", "service_write"},
}
PRINCIPALS = [
    "anonymous",
    "customer",
    "admin",
    "service_all",
    "service_read",
    "service_write",
    "service_none",
]


@pytest.fixture
async def world(users_api: UsersApi, users_client: httpx.AsyncClient) -> dict[str, Any]:
    customer = await users_api.account("customer@example.com")
    admin = await users_api.account("admin@example.com", admin=True)
    writer = await users_api.service_token(scope="notifications:write")
    tokens = {
        "anonymous": None,
        "customer": customer.access_token,
        "admin": admin.access_token,
        "service_all": await users_api.service_token(),
        "service_read": await users_api.service_token(scope="users:read"),
        "service_write": writer,
        "service_none": await users_api.service_token(
            client_id="reporting", secret="reporting-secret-for-tests"
        ),
    }
    notification: dict[str, str] = {}
    for who, account in (("customer", customer), ("admin", admin)):
        await users_client.post(
            "/internal/notifications",
            json={
                "event_id": f"setup-{who}",
                "user_id": account.id,
                "type": "order.created",
                "message": "hi",
                "occurred_at": "2026-11-25T14:00:00Z",
            },
            headers={"Authorization": f"Bearer {writer}"},
        )
        inbox = await users_client.get("/users/me/notifications", headers=account.headers)
        notification[who] = inbox.json()["items"][0]["id"]
    return {"tokens": tokens, "customer": customer, "notification": notification}


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("name", sorted(ALLOWED))
async def test_authorization_matrix(
    users_client: httpx.AsyncClient, world: dict[str, Any], name: str, principal: str
) -> None:
    own = "admin" if principal == "admin" else "customer"
    route = routes({"customer": world["customer"].id, "notification": world["notification"][own]})[
        name
    ]
    token = world["tokens"][principal]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await users_client.request(
        route.method, route.path, json=route.body, headers=headers
    )
    if principal in ALLOWED[name]:
        assert response.status_code == route.ok, response.text
    elif principal == "anonymous":
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"


# --- forged tokens ----------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forge(case: str, key: SigningKey, subject: str) -> str:
    def claims(**overrides: Any) -> dict[str, Any]:
        base = access_claims(
            subject, issuer="pasar-users", audience="pasar", ttl_seconds=300, role="admin"
        )
        base.update(overrides)
        return base

    if case == "alg_none":
        return f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': key.kid})}.{_b64(claims())}."
    if case == "tampered_payload":
        genuine = key.sign(
            access_claims(
                subject, issuer="pasar-users", audience="pasar", ttl_seconds=300, role="customer"
            )
        )
        header, _, signature = genuine.split(".")
        return f"{header}.{_b64(claims())}.{signature}"
    if case == "wrong_key":
        return SigningKey(kid=key.kid, private_key=SigningKey.generate().private_key).sign(claims())
    if case == "wrong_aud":
        return key.sign(claims(aud="another-shop"))
    if case == "wrong_iss":
        return key.sign(claims(iss="pasar-evil"))
    if case == "expired":
        now = int(time.time())
        return key.sign(claims(iat=now - 3600, exp=now - 1800))
    if case == "missing_exp":
        body = claims()
        del body["exp"]
        return key.sign(body)
    if case == "unknown_kid":
        return SigningKey.generate().sign(claims())
    if case == "injected_kid":
        attacker = SigningKey(kid="' OR 1=1 --", private_key=SigningKey.generate().private_key)
        return attacker.sign(claims())
    if case == "embedded_jwk":
        # The attacker ships their own public key in the header (CVE-2018-0114 style).
        attacker = SigningKey.generate()
        return jwt.encode(
            claims(),
            attacker.private_key,
            algorithm="EdDSA",
            headers={"kid": key.kid, "jwk": attacker.public_jwk()},
        )
    if case == "hs256_public_key":
        secret = json.dumps(key.public_jwk()).encode()
        signing_input = f"{_b64({'alg': 'HS256', 'kid': key.kid})}.{_b64(claims())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    if case == "hs256_public_x":
        public_x = key.public_jwk()["x"].encode()
        signing_input = f"{_b64({'alg': 'HS256', 'kid': key.kid})}.{_b64(claims())}"
        mac = hmac.new(public_x, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    if case == "unknown_role":
        return key.sign(claims(role="superuser"))
    if case == "garbage":
        return "definitely.not.a-jwt"
    raise AssertionError(case)


FORGERIES = [
    "alg_none",
    "tampered_payload",
    "wrong_key",
    "wrong_aud",
    "wrong_iss",
    "expired",
    "missing_exp",
    "unknown_kid",
    "injected_kid",
    "embedded_jwk",
    "hs256_public_key",
    "hs256_public_x",
    "unknown_role",
    "garbage",
]


@pytest.mark.parametrize("case", FORGERIES)
async def test_forged_tokens_are_refused(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_api: UsersApi, case: str
) -> None:
    account = await users_api.account()
    key = users_app.state.runtime.authority.keys.signing
    token = forge(case, key, account.id)
    for path in ("/users/me", "/users"):
        response = await users_client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "unauthorized"


async def test_genuine_control_token_is_accepted(
    users_app: FastAPI, users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    # The forgeries above differ from this only in the named respect.
    account = await users_api.account()
    key = users_app.state.runtime.authority.keys.signing
    token = key.sign(
        access_claims(
            account.id, issuer="pasar-users", audience="pasar", ttl_seconds=300, role="customer"
        )
    )
    response = await users_client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header", ["Bearer", "Basic dXNlcjpwYXNz", "bearer", "Token abc", "Bearer a b"]
)
async def test_malformed_authorization_headers(
    users_client: httpx.AsyncClient, header: str
) -> None:
    response = await users_client.get("/users/me", headers={"Authorization": header})
    assert response.status_code == 401


async def test_a_service_token_cannot_pose_as_a_user(
    users_client: httpx.AsyncClient, users_api: UsersApi
) -> None:
    service = await users_api.service_token()
    response = await users_client.get("/users/me", headers={"Authorization": f"Bearer {service}"})
    assert response.status_code == 403
