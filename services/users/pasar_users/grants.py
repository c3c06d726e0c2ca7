"""The three grants of the OAuth 2.0 token endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from pasar_kit.db import Database, retrying
from pasar_users import throttle, tokens
from pasar_users.accounts import normalize_email
from pasar_users.clients import ServiceClients, granted_scope
from pasar_users.keys import KeyRing
from pasar_users.passwords import Passwords
from pasar_users.problems import InvalidClient, InvalidGrant, SigningKeyUnavailable
from pasar_users.tables import users
from pasar_users.throttle import ThrottlePolicy
from pasar_users.tokens import TokenGrant, TokenPolicy


@dataclass(frozen=True)
class Authority:
    """Everything the token endpoint needs, wired once at startup."""

    db: Database
    passwords: Passwords
    keys: KeyRing
    policy: TokenPolicy
    throttle: ThrottlePolicy
    clients: ServiceClients


async def password_grant(
    *, authority: Authority, username: str, password: str, address: str | None
) -> TokenGrant:
    """Log a user in. Unknown email, wrong password and deactivated account all answer
    the same ``invalid_grant``, after the same argon2 work."""
    _require_key(authority)
    db = authority.db
    email = normalize_email(username)
    await throttle.check(db=db, policy=authority.throttle, account=email, address=address)
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(users.c.id, users.c.password_hash, users.c.role, users.c.active).where(
                    users.c.email == email
                )
            )
        ).first()
    matches = await authority.passwords.verify(row.password_hash if row else None, password)
    if row is None or not matches:
        await throttle.record_failure(db=db, account=email, address=address)
        raise InvalidGrant("Wrong email or password.")
    if not row.active:
        raise InvalidGrant("Wrong email or password.")
    new_hash = None
    if authority.passwords.needs_rehash(row.password_hash):
        new_hash = await authority.passwords.hash(password)

    async def sign_in() -> str:
        async with db.write() as conn:
            await throttle.clear_account(conn, account=email)
            if new_hash is not None:
                # Conditional: a password changed meanwhile is not overwritten.
                await conn.execute(
                    update(users)
                    .where(users.c.id == row.id, users.c.password_hash == row.password_hash)
                    .values(password_hash=new_hash)
                )
            return await tokens.start_family(
                conn, user_id=row.id, ttl_seconds=authority.policy.refresh_ttl_seconds
            )

    refresh_token = await retrying(sign_in)
    return _user_grant(authority, user_id=row.id, role=row.role, refresh_token=refresh_token)


async def refresh_grant(*, authority: Authority, refresh_token: str) -> TokenGrant:
    _require_key(authority)
    rotation = await tokens.rotate(db=authority.db, token=refresh_token)
    return _user_grant(
        authority,
        user_id=rotation.user_id,
        role=rotation.role,
        refresh_token=rotation.refresh_token,
    )


async def client_credentials_grant(
    *,
    authority: Authority,
    client_id: str,
    client_secret: str,
    scope: str | None,
    address: str | None,
) -> TokenGrant:
    """A service's token: its scopes, no refresh token (it simply asks again)."""
    db = authority.db
    # Throttled by address only: locking a client id would let anyone who knows the
    # name "orders" lock the orders service out with wrong secrets.
    await throttle.check(db=db, policy=authority.throttle, account=None, address=address)
    try:
        client = await authority.clients.authenticate(client_id, client_secret)
    except InvalidClient:
        await throttle.record_failure(db=db, account=f"client:{client_id}", address=address)
        raise
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


def _user_grant(authority: Authority, *, user_id: str, role: str, refresh_token: str) -> TokenGrant:
    access_token = tokens.sign_access_token(
        keys=authority.keys, policy=authority.policy, subject=user_id, role=role
    )
    return TokenGrant(
        access_token=access_token,
        expires_in=authority.policy.access_ttl_seconds,
        refresh_token=refresh_token,
    )
