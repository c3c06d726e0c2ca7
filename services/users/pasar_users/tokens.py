"""Access tokens (JWT) and rotating refresh tokens.

A refresh token is opaque and stored only as its sha256. Each login starts a family;
every use rotates the token, marking the old one used with a single conditional UPDATE,
so of two concurrent uses only one can win. Presenting an already used token means it
was stolen or replayed: the whole family is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.auth import access_claims
from pasar_kit.db import Database, retrying
from pasar_users.keys import KeyRing
from pasar_users.problems import InvalidGrant, SigningKeyUnavailable
from pasar_users.tables import refresh_families, refresh_tokens, users


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str
    audience: str
    access_ttl_seconds: int
    refresh_ttl_seconds: int

    @property
    def revocation_horizon_seconds(self) -> int:
        """How far back revocations still matter: a token issued earlier has expired
        (plus a minute for clocks and the verifiers' leeway)."""
        return self.access_ttl_seconds + 60


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint answers."""

    access_token: str
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None


def sign_access_token(
    *,
    keys: KeyRing,
    policy: TokenPolicy,
    subject: str,
    role: str | None = None,
    scope: str | None = None,
    issued_at: float | None = None,
) -> str:
    """An access token; ``iat`` is ``issued_at`` (default now) with its fraction of a
    second (RFC 7519 allows a non-integer NumericDate), so a token issued just after a
    revocation is never taken for one issued before it, even in the same second."""
    key = keys.signing
    if key is None:
        raise SigningKeyUnavailable()
    issued = time.time() if issued_at is None else issued_at
    claims = access_claims(
        subject,
        issuer=policy.issuer,
        audience=policy.audience,
        ttl_seconds=policy.access_ttl_seconds,
        role=role,
        scope=scope,
        now=issued,
    )
    claims["iat"] = issued  # whatever the helper rounds to
    return key.sign(claims)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _add_token(conn: AsyncConnection, *, family_id: str, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    await conn.execute(
        insert(refresh_tokens).values(
            token_hash=hash_refresh_token(token), family_id=family_id, created_at=now
        )
    )
    return token


async def start_family(
    conn: AsyncConnection, *, user_id: str, ttl_seconds: int, now: datetime
) -> str:
    """A new login at ``now``: a new family and its first refresh token (in the caller's
    transaction)."""
    family_id = str(uuid.uuid4())
    await conn.execute(
        insert(refresh_families).values(
            id=family_id,
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    return await _add_token(conn, family_id=family_id, now=now)


@dataclass(frozen=True)
class Rotation:
    user_id: str
    role: str
    refresh_token: str
    # Taken after the user's row was read under lock: see grants.py.
    issued_at: float


async def rotate(*, db: Database, token: str, now: datetime) -> Rotation:
    """Exchange a refresh token for a new one of the same family at ``now``;
    ``InvalidGrant`` when it is unknown, expired, revoked, reused, or its user is
    deactivated."""
    return await retrying(lambda: _rotate(db=db, token=token, now=now))


async def _rotate(*, db: Database, token: str, now: datetime) -> Rotation:
    token_hash = hash_refresh_token(token)
    async with db.write() as conn:
        row = (
            await conn.execute(
                select(
                    refresh_tokens.c.family_id,
                    refresh_tokens.c.used_at,
                    refresh_families.c.user_id,
                    refresh_families.c.expires_at,
                    refresh_families.c.revoked_at,
                    users.c.role,
                    users.c.active,
                )
                .join(refresh_families, refresh_families.c.id == refresh_tokens.c.family_id)
                .join(users, users.c.id == refresh_families.c.user_id)
                .where(refresh_tokens.c.token_hash == token_hash)
                # Locks the user's row too: a role change waits for us, or we see it.
                .with_for_update()
            )
        ).first()
        issued_at = time.time()
        if row is None or row.revoked_at is not None or row.expires_at <= now or not row.active:
            raise InvalidGrant("The refresh token is invalid or expired.")
        won = False
        if row.used_at is None:
            claimed = await conn.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None)
                )
                .values(used_at=now)
            )
            won = claimed.rowcount == 1
        if won:
            new_token = await _add_token(conn, family_id=row.family_id, now=now)
            return Rotation(
                user_id=row.user_id, role=row.role, refresh_token=new_token, issued_at=issued_at
            )
        # Already rotated (earlier, or a concurrent use just won): a replay.
        await _revoke_families(conn, refresh_families.c.id == row.family_id, now=now)
    # Raised after the block so the revocation is committed.
    raise InvalidGrant("The refresh token was already used; every token of its login is revoked.")


async def _revoke_families(
    conn: AsyncConnection, condition: ColumnElement[bool], *, now: datetime
) -> int:
    result = await conn.execute(
        update(refresh_families)
        .where(condition, refresh_families.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount


async def revoke_family_of(*, db: Database, token: str, now: datetime) -> bool:
    """Logout: the family of ``token`` stops working (revoked at ``now``). False when the
    token is unknown."""
    async with db.write() as conn:
        family_id = await conn.scalar(
            select(refresh_tokens.c.family_id).where(
                refresh_tokens.c.token_hash == hash_refresh_token(token)
            )
        )
        if family_id is None:
            return False
        await _revoke_families(conn, refresh_families.c.id == family_id, now=now)
        return True


async def revoke_user_families(conn: AsyncConnection, *, user_id: str, now: datetime) -> int:
    """Every refresh token of the user stops working (password change, deactivation),
    revoked at ``now`` (in the caller's transaction)."""
    return await _revoke_families(conn, refresh_families.c.user_id == user_id, now=now)


async def purge_expired(*, db: Database, now: datetime) -> int:
    """Delete families past their absolute expiry at ``now`` (their tokens go with them)."""
    async with db.write() as conn:
        expired = select(refresh_families.c.id).where(refresh_families.c.expires_at < now)
        await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.family_id.in_(expired)))
        result = await conn.execute(
            delete(refresh_families).where(refresh_families.c.expires_at < now)
        )
        return result.rowcount
