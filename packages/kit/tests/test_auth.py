"""Token verification: the forged-token cases every service relies on the kit to refuse."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable

import pytest
from fastapi import FastAPI, Form, Header, Response

from pasar_kit.auth import (
    SigningKey,
    StaticKeys,
    TokenVerifier,
    access_claims,
    jwks_document,
)
from pasar_kit.problems import Unauthorized

ISS, AUD = "pasar-users", "pasar"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def verifier(key: SigningKey) -> TokenVerifier:
    return TokenVerifier(StaticKeys(lambda: [key]), issuer=ISS, audience=AUD)


def user_token(key: SigningKey, **overrides: object) -> str:
    claims = access_claims("u-1", issuer=ISS, audience=AUD, ttl_seconds=60, role="customer")
    claims.update(overrides)
    return key.sign(claims)


async def test_valid_user_token(key: SigningKey, verifier: TokenVerifier) -> None:
    principal = await verifier.verify(user_token(key))
    assert principal.subject == "u-1"
    assert principal.role == "customer"
    assert not principal.is_service


async def test_service_token_carries_scopes(key: SigningKey, verifier: TokenVerifier) -> None:
    claims = access_claims("orders", issuer=ISS, audience=AUD, ttl_seconds=60, scope="a:b c:d")
    principal = await verifier.verify(key.sign(claims))
    assert principal.is_service
    assert principal.scopes == {"a:b", "c:d"}


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "case",
    [
        "alg_none",
        "tampered",
        "wrong_key",
        "wrong_aud",
        "wrong_iss",
        "expired",
        "no_exp",
        "unknown_kid",
        "hs256_with_public_key",
        "garbage",
        "bad_role",
    ],
)
async def test_forged_tokens_are_refused(
    case: str, key: SigningKey, verifier: TokenVerifier
) -> None:
    good = user_token(key)
    header, payload, signature = good.split(".")
    if case == "alg_none":
        token = _b64({"alg": "none", "kid": key.kid}) + "." + payload + "."
    elif case == "tampered":
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["role"] = "admin"
        token = f"{header}.{_b64(claims)}.{signature}"
    elif case == "wrong_key":
        other = SigningKey(kid=key.kid, private_key=SigningKey.generate().private_key)
        token = user_token(other)
    elif case == "wrong_aud":
        token = user_token(key, aud="someone-else")
    elif case == "wrong_iss":
        token = user_token(key, iss="evil")
    elif case == "expired":
        token = user_token(key, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    elif case == "no_exp":
        claims = access_claims("u-1", issuer=ISS, audience=AUD, ttl_seconds=60, role="customer")
        del claims["exp"]
        token = key.sign(claims)
    elif case == "unknown_kid":
        token = user_token(SigningKey.generate())
    elif case == "hs256_with_public_key":
        # The classic confusion attack: HMAC keyed with the published public key.
        public = json.dumps(key.public_jwk()).encode()
        claims = access_claims("u-1", issuer=ISS, audience=AUD, ttl_seconds=60, role="admin")
        signing_input = f"{_b64({'alg': 'HS256', 'kid': key.kid})}.{_b64(claims)}"
        mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    elif case == "bad_role":
        token = user_token(key, role="root")
    else:
        token = "not.a.token"
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


def test_jwks_has_no_private_material(key: SigningKey) -> None:
    document = jwks_document([key])
    (entry,) = document["keys"]
    assert entry["kid"] == key.kid
    assert entry["alg"] == "EdDSA"
    assert "d" not in entry


async def test_remote_jwks_verifies_and_refuses_unknown_kids(key: SigningKey) -> None:
    from fastapi import FastAPI

    from pasar_kit.auth import RemoteJWKS
    from pasar_kit.testing import serve

    users = FastAPI()

    @users.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, object]:
        return jwks_document([key])

    async with serve(users) as url:
        source = RemoteJWKS(f"{url}/.well-known/jwks.json")
        verifier = TokenVerifier(source, issuer=ISS, audience=AUD)
        assert (await verifier.verify(user_token(key))).subject == "u-1"
        with pytest.raises(Unauthorized):
            await verifier.verify(user_token(SigningKey.generate()))


async def test_unreachable_jwks_is_503_not_401(key: SigningKey) -> None:
    from pasar_kit.auth import RemoteJWKS
    from pasar_kit.problems import DependencyUnavailable

    verifier = TokenVerifier(
        RemoteJWKS("http://127.0.0.1:1/.well-known/jwks.json", timeout=1),
        issuer=ISS,
        audience=AUD,
    )
    with pytest.raises(DependencyUnavailable):
        await verifier.verify(user_token(key))


async def test_a_failed_first_fetch_is_retried_with_the_next_token(key: SigningKey) -> None:
    """A replica that started while users was slow must verify as soon as users answers,
    not 503 for the rest of a refetch interval."""
    from fastapi import FastAPI

    from pasar_kit.auth import RemoteJWKS
    from pasar_kit.problems import DependencyUnavailable
    from pasar_kit.testing import serve

    users = FastAPI()
    up = False

    @users.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, object]:
        if not up:
            raise RuntimeError("not yet")  # a 500: the fetch fails
        return jwks_document([key])

    async with serve(users) as url:
        source = RemoteJWKS(f"{url}/.well-known/jwks.json", min_refetch_seconds=60)
        with pytest.raises(DependencyUnavailable):
            await source.get("")  # the start-up fetch fails
        up = True
        await asyncio.sleep(0.06)  # past the de-duplication of concurrent refreshes
        verifier = TokenVerifier(source, issuer=ISS, audience=AUD)
        assert (await verifier.verify(user_token(key))).subject == "u-1"


# --- Revocations: a demoted or deactivated user's old tokens stop working within seconds --


class Revoked:
    """An in-memory revocation source: {user id: not_before}."""

    def __init__(self, entries: dict[str, float]) -> None:
        self.entries = entries

    async def not_before(self, subject: str) -> float | None:
        return self.entries.get(subject)


def test_access_claims_keep_a_fractional_now() -> None:
    claims = access_claims(
        "u-1", issuer=ISS, audience=AUD, ttl_seconds=60, role="customer", now=1000.25
    )
    assert claims["iat"] == 1000.25 and claims["exp"] == 1060.25
    default = access_claims("u-1", issuer=ISS, audience=AUD, ttl_seconds=60, role="customer")
    assert isinstance(default["iat"], int) and default["exp"] - default["iat"] == 60


async def test_a_token_issued_before_the_revocation_is_refused(key: SigningKey) -> None:
    now = time.time()
    revoked = Revoked({"u-1": now - 0.5})
    verifier = TokenVerifier(
        StaticKeys(lambda: [key]), issuer=ISS, audience=AUD, revocations=revoked
    )

    def token(subject: str, issued: float) -> str:
        return key.sign(
            access_claims(
                subject, issuer=ISS, audience=AUD, ttl_seconds=60, role="admin", now=issued
            )
        )

    with pytest.raises(Unauthorized, match="revoked"):
        await verifier.verify(token("u-1", now - 0.6))  # the same second, just before
    assert (await verifier.verify(token("u-1", now - 0.4))).subject == "u-1"  # just after
    assert (await verifier.verify(token("u-2", now - 0.6))).subject == "u-2"  # someone else


def stand_in_users(state: dict[str, object]) -> FastAPI:
    """A stand-in for the User-Service's side of the contract: the client-credentials
    grant and ``GET /internal/token-revocations`` (scope users:read)."""
    users = FastAPI()

    @users.post("/auth/token")
    async def token(
        grant_type: str = Form(),
        client_id: str = Form(),
        client_secret: str = Form(),
        scope: str = Form(""),
    ) -> dict[str, object]:
        grants = state.setdefault("grants", [])
        assert isinstance(grants, list)
        grants.append((grant_type, client_id, scope))
        return {"access_token": f"svc-{client_id}-{client_secret}", "expires_in": 300}

    @users.get("/internal/token-revocations")
    async def revocations(response: Response, authorization: str = Header("")) -> dict[str, object]:
        state["polls"] = int(state.get("polls", 0)) + 1  # type: ignore[call-overload]
        if authorization != "Bearer svc-products-s3cret":
            response.status_code = 401
            return {"code": "unauthorized"}
        if state.get("broken"):
            response.status_code = 503
            return {"code": "unavailable"}
        return state["document"]  # type: ignore[return-value]

    return users


async def test_revocations_are_polled_and_kept_when_users_fails(key: SigningKey) -> None:
    from pasar_kit.auth import PolledRevocations
    from pasar_kit.testing import serve

    state: dict[str, object] = {
        "document": {"revocations": [{"user_id": "u-1", "not_before": 5.5}], "horizon_seconds": 900}
    }
    async with serve(stand_in_users(state)) as url:
        source = PolledRevocations.for_service(
            users_url=url, client_id="products", client_secret="s3cret", poll_seconds=0.05
        )
        assert source is not None
        await source.start()
        try:
            assert await source.not_before("u-1") == 5.5
            assert await source.not_before("u-2") is None
            assert state["grants"] == [("client_credentials", "products", "users:read")]

            state["document"] = {
                "revocations": [
                    {"user_id": "u-1", "not_before": 5.5},
                    {"user_id": "u-2", "not_before": 7},
                ],
                "horizon_seconds": 900,
            }

            async def sees_u2() -> bool:
                return await source.not_before("u-2") == 7.0

            await _eventually(sees_u2)

            # users fails, then answers garbage: the last good list stays in force.
            state["broken"] = True
            polls = int(state["polls"])  # type: ignore[call-overload]
            await _eventually(lambda: _true(int(state["polls"]) > polls + 2))  # type: ignore[call-overload]
            assert await source.not_before("u-2") == 7.0
            state["broken"] = False
            state["document"] = {"revocations": [{"user_id": "u-3"}]}
            polls = int(state["polls"])  # type: ignore[call-overload]
            await _eventually(lambda: _true(int(state["polls"]) > polls + 2))  # type: ignore[call-overload]
            assert await source.not_before("u-2") == 7.0
            assert await source.not_before("u-3") is None
        finally:
            await source.stop()


async def test_revocations_fail_open_when_users_is_unreachable(key: SigningKey) -> None:
    from pasar_kit.auth import PolledRevocations

    source = PolledRevocations.for_service(
        users_url="http://127.0.0.1:1", client_id="products", client_secret="s3cret"
    )
    assert source is not None
    await source.start()  # does not raise: the service starts without the list
    try:
        verifier = TokenVerifier(
            StaticKeys(lambda: [key]), issuer=ISS, audience=AUD, revocations=source
        )
        assert (await verifier.verify(user_token(key))).subject == "u-1"
    finally:
        await source.stop()
    assert (
        PolledRevocations.for_service(
            users_url="http://127.0.0.1:1", client_id="products", client_secret=None
        )
        is None
    )


async def _true(value: bool) -> bool:
    return value


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.02)
