"""Who may call what: anonymous, customer, admin, service with and without the scope."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from products_support import Catalogue, Tokens

from pasar_kit.auth import SigningKey, access_claims

ROLES = ("anonymous", "customer", "admin", "service", "service_without_scope")

PUBLIC = {role: 200 for role in ROLES}


def _only(role: str, ok: int) -> dict[str, int]:
    return {
        "anonymous": 401,
        "customer": 403,
        "admin": 403,
        "service": 403,
        "service_without_scope": 403,
        role: ok,
    }


# (method, path template, body, expected status per role)
MATRIX: list[tuple[str, str, Any, dict[str, int]]] = [
    ("GET", "/products", None, PUBLIC),
    ("GET", "/products/{product}", None, PUBLIC),
    ("GET", "/categories", None, PUBLIC),
    (
        "POST",
        "/products",
        {"sku": "NEW-1", "name": "New", "price": 1, "category": "C"},
        _only("admin", 201),
    ),
    ("PATCH", "/products/{product}", {"name": "Renamed"}, _only("admin", 200)),
    ("DELETE", "/products/{product}", None, _only("admin", 204)),
    (
        "POST",
        "/products/{product}/stock-adjustments",
        {"delta": 1, "reason": "r"},
        _only("admin", 200),
    ),
    ("GET", "/products/{product}/stock-adjustments", None, _only("admin", 200)),
    ("GET", "/admin/stock-audit", None, _only("admin", 200)),
    ("GET", "/admin/low-stock", None, _only("admin", 200)),
    (
        "POST",
        "/internal/reservations",
        {"reservation_id": "new-r", "items": [{"product_id": "{product}", "quantity": 1}]},
        _only("service", 201),
    ),
    ("GET", "/internal/reservations/{reservation}", None, _only("service", 200)),
    ("POST", "/internal/reservations/{reservation}/commit", None, _only("service", 200)),
    ("POST", "/internal/reservations/{reservation}/release", None, _only("service", 200)),
]


def _headers(tokens: Tokens, role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    if role == "customer":
        return dict(tokens.customer())
    if role == "admin":
        return dict(tokens.admin())
    if role == "service":
        return dict(tokens.service("stock:reserve"))
    return dict(tokens.service("users:read notifications:write"))


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    MATRIX,
    ids=[f"{m} {p}" for m, p, _, _ in MATRIX],
)
async def test_authorization_matrix(
    products_catalogue: Catalogue,
    role: str,
    method: str,
    path: str,
    body: Any,
    expected: dict[str, int],
) -> None:
    product = await products_catalogue.product(stock=5)
    reservation = await products_catalogue.reserve([(product["id"], 1)])
    ids = {"product": product["id"], "reservation": reservation.json()["reservation_id"]}
    response = await products_catalogue.client.request(
        method,
        _fill(path, ids),
        json=_fill(body, ids),
        headers=_headers(products_catalogue.tokens, role),
    )
    assert response.status_code == expected[role], response.text
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["code"] == "unauthorized"
    if response.status_code == 403:
        assert response.json()["code"] == "forbidden"


def _token(key: SigningKey, **overrides: Any) -> str:
    claims = access_claims(
        str(uuid.uuid4()), issuer="pasar-users", audience="pasar", ttl_seconds=300, role="admin"
    )
    claims.update(overrides)
    return key.sign(claims)


@pytest.mark.parametrize(
    "case",
    ["expired", "wrong_audience", "wrong_issuer", "unknown_key", "garbage", "basic", "bad_role"],
)
async def test_bad_tokens_are_401(
    products_client: httpx.AsyncClient, products_signing_key: SigningKey, case: str
) -> None:
    now = int(time.time())
    authorization = {
        "expired": f"Bearer {_token(products_signing_key, iat=now - 900, exp=now - 600)}",
        "wrong_audience": f"Bearer {_token(products_signing_key, aud='elsewhere')}",
        "wrong_issuer": f"Bearer {_token(products_signing_key, iss='someone-else')}",
        "unknown_key": f"Bearer {_token(SigningKey.generate())}",
        "garbage": "Bearer not.a.token",
        "basic": "Basic dXNlcjpwYXNz",
        "bad_role": f"Bearer {_token(products_signing_key, role='superuser')}",
    }[case]
    response = await products_client.get(
        "/admin/stock-audit", headers={"Authorization": authorization}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
