"""Token verification: the forged-token cases every service relies on the kit to refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

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
