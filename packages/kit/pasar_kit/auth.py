"""JWT access tokens: signing keys, the JWKS, offline verification, and FastAPI guards.

The User-Service signs with an Ed25519 key (``EdDSA``); every service verifies against
the JWKS it publishes, cached and refetched once when a token names an unknown ``kid``.
The algorithm is pinned, and ``iss``, ``aud``, ``exp``, ``iat`` and ``sub`` are required.

A token stays valid until it expires, so a user who is demoted or deactivated would keep
their powers for the rest of its lifetime. The User-Service therefore publishes, for each
such user, the moment before which their tokens no longer count
(``GET /internal/token-revocations``); ``PolledRevocations`` keeps that list in memory,
refreshed every few seconds, and ``TokenVerifier`` refuses a token issued before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Protocol

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pasar_kit.http import ClientCredentials, ServiceClient
from pasar_kit.problems import DependencyUnavailable, Forbidden, Unauthorized
from pasar_kit.settings import ServiceSettings

ALGORITHM = "EdDSA"
REVOCATIONS_PATH = "/internal/token-revocations"
log = logging.getLogger("pasar.auth")


@dataclass(frozen=True)
class SigningKey:
    """A private Ed25519 key with its key id."""

    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=uuid.uuid4().hex[:16], private_key=Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, kid: str, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key")
        return cls(kid=kid, private_key=key)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_jwk(self) -> dict[str, Any]:
        """The public half only: the JWKS never carries private material."""
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    @cached_property
    def verifying_key(self) -> jwt.PyJWK:
        """The public half as PyJWT verifies with, built once: building it costs more
        than checking a token's signature."""
        return jwt.PyJWK(self.public_jwk())

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(
            dict(claims), self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid}
        )


def access_claims(
    subject: str,
    *,
    issuer: str,
    audience: str,
    ttl_seconds: int,
    role: str | None = None,
    scope: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of a pasar access token: a user's carries ``role``, a service's ``scope``.

    ``now`` is kept as given, fractions of a second included, so a token issued just after
    a revocation (same second) is told apart from one issued just before it; without it,
    ``iat`` is whole seconds as before.
    """
    issued = now if now is not None else int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if role is not None:
        claims["role"] = role
    else:
        claims["client_id"] = subject
        claims["scope"] = scope or ""
    return claims


def jwks_document(keys: Iterable[SigningKey]) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in keys]}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (with a role) or a service client (with scopes)."""

    subject: str
    role: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_service(self) -> bool:
        return self.role is None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class KeySource(Protocol):
    async def get(self, kid: str) -> jwt.PyJWK | None: ...


class StaticKeys:
    """Keys known in-process (the User-Service verifying its own tokens)."""

    def __init__(self, keys: Callable[[], Iterable[SigningKey]]) -> None:
        self._keys = keys

    async def get(self, kid: str) -> jwt.PyJWK | None:
        for key in self._keys():
            if key.kid == kid:
                return key.verifying_key
        return None


class RemoteJWKS:
    """The User-Service's JWKS, fetched over HTTP and cached.

    An unknown ``kid`` triggers one refetch (a rotated key), but at most one every
    ``min_refetch_seconds`` so forged kids cannot turn into a request flood. When the JWKS
    cannot be fetched at all, a token with a key we do not hold is answered 503, not 401:
    the token may be perfectly good, we just cannot tell yet.
    """

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300,
        min_refetch_seconds: float = 5,
        timeout: float = 3.0,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self.timeout = timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._reachable = False
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> jwt.PyJWK | None:
        now = time.monotonic()
        stale = now - self._fetched_at > self.cache_seconds
        if kid in self._keys and not stale:
            return self._keys[kid]
        # After a failed fetch, try again sooner: the User-Service may just be starting.
        # Holding no key at all, every token is worth a try (the lock and the 50 ms
        # de-duplication in _refresh keep that to one fetch at a time): a replica whose
        # start-up fetch failed must not answer 503 for a whole interval once users is up.
        if not self._keys:
            interval = 0.0
        elif self._reachable:
            interval = self.min_refetch_seconds
        else:
            interval = min(1.0, self.min_refetch_seconds)
        if stale or now - self._fetched_at > interval:
            await self._refresh()
        if kid not in self._keys and not self._reachable:
            raise DependencyUnavailable(
                "The signing keys cannot be fetched from the User-Service.", retry_after=1
            )
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < 0.05:
                return  # someone else just did it
            try:
                timeout = aiohttp.ClientTimeout(total=self.timeout)
                async with (
                    aiohttp.ClientSession(timeout=timeout) as session,
                    session.get(self.url) as response,
                ):
                    response.raise_for_status()
                    document = await response.json()
                keys = {}
                for entry in document.get("keys", []):
                    if entry.get("kid") and entry.get("alg", ALGORITHM) == ALGORITHM:
                        keys[entry["kid"]] = jwt.PyJWK(entry)
            except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWKError):
                # Keep serving the keys we had: tokens already issued still verify.
                self._fetched_at = time.monotonic()
                self._reachable = False
                return
            self._keys = keys
            self._fetched_at = time.monotonic()
            self._reachable = True


class RevocationSource(Protocol):
    async def not_before(self, subject: str) -> float | None:
        """The moment (epoch seconds) before which ``subject``'s tokens are void, if any."""
        ...


class TokenVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway: float = 10,
        revocations: RevocationSource | None = None,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.revocations = revocations

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("The access token is malformed.") from exc
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not kid:
            raise Unauthorized("The access token is not signed the way pasar signs tokens.")
        key = await self.keys.get(kid)
        if key is None:
            raise Unauthorized("The access token was signed by an unknown key.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired.") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("The access token is invalid.") from exc
        role = claims.get("role")
        scope = claims.get("scope", "")
        if role is not None and role not in ("customer", "admin"):
            raise Unauthorized("The access token carries an unknown role.")
        if not isinstance(scope, str):
            raise Unauthorized("The access token's scope is malformed.")
        subject = str(claims["sub"])
        if self.revocations is not None:
            not_before = await self.revocations.not_before(subject)
            # No leeway here: iat and not_before both come from the User-Service's clock.
            if not_before is not None and float(claims["iat"]) < not_before:
                raise Unauthorized("The access token has been revoked; sign in again.")
        return Principal(
            subject=subject,
            role=role,
            scopes=frozenset(scope.split()),
            claims=claims,
        )


class PolledRevocations:
    """The User-Service's token revocations, fetched every ``poll_seconds`` and kept in
    memory, so verifying a token never calls the User-Service.

    When the User-Service cannot be asked, the last list is kept and tokens keep being
    verified against it (fail open, logged once per outage), as with the JWKS: refusing
    every token while users is down would stop the shop, and a revocation is at most one
    access-token lifetime away from mattering anyway.
    """

    def __init__(
        self, client: ServiceClient, *, poll_seconds: float = 2.0, path: str = REVOCATIONS_PATH
    ) -> None:
        self.client = client
        self.poll_seconds = poll_seconds
        self.path = path
        self._not_before: dict[str, float] = {}
        self.fetched_at: float | None = None  # monotonic time of the last good answer
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_service(
        cls,
        *,
        users_url: str,
        client_id: str | None,
        client_secret: str | None,
        poll_seconds: float = 2.0,
        timeout: float = 3.0,
        connect_timeout: float = 1.0,
    ) -> PolledRevocations | None:
        """Revocations fetched with this service's client credentials (scope
        ``users:read``); ``None`` when the service has no credentials configured."""
        if not client_id or not client_secret:
            return None
        base = users_url.rstrip("/")
        credentials = ClientCredentials(
            f"{base}/auth/token", client_id, client_secret, scope="users:read", timeout=timeout
        )
        # One attempt per poll: the next poll is the retry, and a short timeout keeps a
        # hanging User-Service from stretching the interval.
        client = ServiceClient(
            "users",
            base,
            connect_timeout=connect_timeout,
            timeout=min(timeout, max(1.0, poll_seconds)),
            retries=0,
            credentials=credentials,
        )
        return cls(client, poll_seconds=poll_seconds)

    @classmethod
    def from_settings(
        cls, settings: ServiceSettings, *, users_url: str
    ) -> PolledRevocations | None:
        """``for_service`` with the service's own credentials, poll interval and timeouts."""
        secret = settings.client_secret.get_secret_value() if settings.client_secret else None
        return cls.for_service(
            users_url=users_url,
            client_id=settings.client_id,
            client_secret=secret,
            poll_seconds=settings.revocation_poll_seconds,
            timeout=settings.http_timeout,
            connect_timeout=settings.http_connect_timeout,
        )

    async def not_before(self, subject: str) -> float | None:
        return self._not_before.get(subject)

    async def refresh(self) -> bool:
        """Fetch the list once; True when it was replaced, False when the old one stays."""
        try:
            reply = await self.client.request("GET", self.path)
            if reply.status != 200:
                raise ValueError(f"HTTP {reply.status}")
            revoked = _parse_revocations(reply.body)
        except (DependencyUnavailable, ValueError) as exc:
            if not self._failing:
                log.warning(
                    "cannot fetch token revocations from users (%s); keeping the last list "
                    "of %d and verifying against it until users answers again",
                    exc,
                    len(self._not_before),
                )
            self._failing = True
            return False
        if self._failing:
            log.info("token revocations fetched again (%d entries)", len(revoked))
        self._failing = False
        self._not_before = revoked
        self.fetched_at = time.monotonic()
        return True

    async def start(self) -> None:
        """Fetch once now (best effort), then keep polling in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="token-revocations")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.client.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.refresh()
            except Exception:  # a bug must not end the polling for good
                log.exception("polling token revocations failed")


def _parse_revocations(body: Any) -> dict[str, float]:
    """``{"revocations": [{"user_id", "not_before"}], ...}`` as ``{user_id: not_before}``;
    anything else raises ValueError (and the previous list stays)."""
    entries = body.get("revocations") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise ValueError("the revocations document has no list")
    revoked: dict[str, float] = {}
    for entry in entries:
        user_id = entry.get("user_id") if isinstance(entry, dict) else None
        moment = entry.get("not_before") if isinstance(entry, dict) else None
        if (
            not isinstance(user_id, str)
            or isinstance(moment, bool)
            or not isinstance(moment, int | float)
            or not math.isfinite(moment)
        ):
            raise ValueError("a revocation entry is malformed")
        revoked[user_id] = max(float(moment), revoked.get(user_id, float("-inf")))
    return revoked


_bearer = HTTPBearer(auto_error=False, description="An access token from POST /auth/token")


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("A bearer access token is required.")
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify(credentials.credentials)


async def _user(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if principal.is_service:
        raise Forbidden("This endpoint is for users, not services.")
    return principal


async def _admin(principal: Annotated[Principal, Depends(_user)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("Only an admin may do this.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
CurrentUser = Annotated[Principal, Depends(_user)]
Admin = Annotated[Principal, Depends(_admin)]


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only a service token granted ``scope``."""

    async def _service(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if not principal.is_service or scope not in principal.scopes:
            raise Forbidden(f"This endpoint needs a service token with scope {scope!r}.")
        return principal

    return _service


def require_any_scope(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    async def _service(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if not principal.is_service or not principal.scopes.intersection(scopes):
            raise Forbidden(f"This endpoint needs a service token with one of {sorted(scopes)}.")
        return principal

    return _service
