"""The three grants of the OAuth 2.0 token endpoint.

A user's access token is issued from the user's row as read *under a row lock* inside
the transaction that starts or rotates the refresh token, and its ``iat`` is taken after
that read. A role change, deactivation or password change locks the same row and stamps
``tokens_not_before`` under it; so either the change committed first (we read the new
role, and our ``iat`` is later than its stamp) or it waits for us (and stamps a later
instant than our ``iat``, revoking the token we issue). No token carries a stale role
past a change.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from pasar_kit.db import Clock, Database, retrying
from pasar_users import tokens
from pasar_users.accounts import normalize_email
from pasar_users.clients import ServiceClients, granted_scope
from pasar_users.keys import KeyRing
from pasar_users.passwords import Passwords
from pasar_users.problems import (
    HashingBusy,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    SigningKeyUnavailable,
)
from pasar_users.tables import EMAIL_LENGTH, users
from pasar_users.throttle import Throttle
from pasar_users.tokens import TokenGrant, TokenPolicy

WRONG_CREDENTIALS = "Wrong email or password."


@dataclass(frozen=True)
class Authority:
    """Everything the token endpoint needs, wired once at startup."""

    db: Database
    passwords: Passwords
    keys: KeyRing
    policy: TokenPolicy
    throttle: Throttle
    clients: ServiceClients


async def password_grant(
    *, authority: Authority, username: str, password: str, address: str, clock: Clock
) -> TokenGrant:
    """Log a user in. Unknown email, wrong password and deactivated account all answer
    the same ``invalid_grant``, after the same argon2 work. The login's refresh family
    starts at an instant read from ``clock`` after the user's row is locked."""
    _require_key(authority)
    db = authority.db
    email = normalize_email(username)
    if len(email) > EMAIL_LENGTH:  # normalising can lengthen (NFC, IDNA mappings)
        raise InvalidRequest("username is too long.")
    attempt = await authority.throttle.login_attempt(account=email, address=address)
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(users.c.id, users.c.password_hash).where(users.c.email == email)
            )
        ).first()
    try:
        matches = await authority.passwords.verify(row.password_hash if row else None, password)
    except HashingBusy:
        await authority.throttle.forget(attempt)  # never checked: not a guess
        raise
    if row is None or not matches:
        raise InvalidGrant(WRONG_CREDENTIALS)  # the attempt stays: a failure
    new_hash = None
    if authority.passwords.needs_rehash(row.password_hash):
        # Under load an upgrade can wait for the next login; the login cannot.
        with contextlib.suppress(HashingBusy):
            new_hash = await authority.passwords.hash(password)

    async def sign_in() -> tuple[str, str, float]:
        async with db.write() as conn:
            current = (
                await conn.execute(
                    select(users.c.role, users.c.active, users.c.password_hash)
                    .where(users.c.id == row.id)
                    .with_for_update()
                )
            ).one()
            issued_at = time.time()
            if not current.active or current.password_hash != row.password_hash:
                # Deactivated, or the password changed since we checked it.
                raise InvalidGrant(WRONG_CREDENTIALS)
            await authority.throttle.login_succeeded(conn, account=email, address=address)
            if new_hash is not None:
                await conn.execute(
                    update(users).where(users.c.id == row.id).values(password_hash=new_hash)
                )
            refresh_token = await tokens.start_family(
                conn,
                user_id=row.id,
                ttl_seconds=authority.policy.refresh_ttl_seconds,
                now=clock(),
            )
            return refresh_token, current.role, issued_at

    refresh_token, role, issued_at = await retrying(sign_in)
    return _user_grant(
        authority, user_id=row.id, role=role, refresh_token=refresh_token, issued_at=issued_at
    )


async def refresh_grant(*, authority: Authority, refresh_token: str, now: datetime) -> TokenGrant:
    """Rotate ``refresh_token`` at ``now`` and issue an access token with it."""
    _require_key(authority)
    rotation = await tokens.rotate(db=authority.db, token=refresh_token, now=now)
    return _user_grant(
        authority,
        user_id=rotation.user_id,
        role=rotation.role,
        refresh_token=rotation.refresh_token,
        issued_at=rotation.issued_at,
    )


async def client_credentials_grant(
    *,
    authority: Authority,
    client_id: str,
    client_secret: str,
    scope: str | None,
    address: str,
) -> TokenGrant:
    """A service's token: its scopes, no refresh token (it simply asks again).

    Wrong secrets are throttled per (client id, address) in a throttle of their own:
    no number of failed *password* logins, from anywhere, can refuse a service its token.
    """
    throttle = authority.throttle
    failures = await throttle.client_check(client_id=client_id, address=address)
    try:
        client = await authority.clients.authenticate(client_id, client_secret)
    except InvalidClient:
        await throttle.client_failed(client_id=client_id, address=address)
        raise
    if failures:
        await throttle.client_succeeded(client_id=client_id, address=address)
    granted = granted_scope(client, scope)
    access_token = tokens.sign_access_token(
        keys=authority.keys, policy=authority.policy, subject=client.client_id, scope=granted
    )
    return TokenGrant(
        access_token=access_token,
        expires_in=authority.policy.access_ttl_seconds,
        scope=granted,
    )


def _require_key(authority: Authority) -> None:
    # Checked before anything is written: a login must not consume a refresh token
    # and then fail to sign.
    if not authority.keys.loaded:
        raise SigningKeyUnavailable()


def _user_grant(
    authority: Authority, *, user_id: str, role: str, refresh_token: str, issued_at: float
) -> TokenGrant:
    access_token = tokens.sign_access_token(
        keys=authority.keys,
        policy=authority.policy,
        subject=user_id,
        role=role,
        issued_at=issued_at,
    )
    return TokenGrant(
        access_token=access_token,
        expires_in=authority.policy.access_ttl_seconds,
        refresh_token=refresh_token,
    )
