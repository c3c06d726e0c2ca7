"""Single-use links mailed to a user: verifying an email address, resetting a password.

A token is 32 random bytes (URL-safe); only its sha256 is stored, with the address it
was mailed to. Issuing a token voids every unused token of the same purpose for that
user, so only the latest link works; a token is consumed by one conditional update, so
two clicks racing cannot both succeed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_users.tables import email_tokens

Purpose = Literal["verify_email", "password_reset"]


@dataclass(frozen=True)
class Redeemed:
    user_id: str
    email: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(
    conn: AsyncConnection,
    *,
    user_id: str,
    purpose: Purpose,
    email: str,
    now: datetime,
    ttl: timedelta,
) -> str:
    """A new token for ``user_id`` (in the caller's transaction); earlier unused ones of
    this purpose stop working. Returns the token itself, which is never stored."""
    await conn.execute(
        update(email_tokens)
        .where(
            email_tokens.c.user_id == user_id,
            email_tokens.c.purpose == purpose,
            email_tokens.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    await conn.execute(
        insert(email_tokens).values(
            token_hash=hash_token(token),
            user_id=user_id,
            purpose=purpose,
            email=email,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


async def redeem(
    conn: AsyncConnection, *, token: str, purpose: Purpose, now: datetime
) -> Redeemed | None:
    """Use ``token`` up (in the caller's transaction): its user and address, or None when
    it is unknown, of another purpose, used, voided or expired."""
    if not token or len(token) > 100:
        return None
    token_hash = hash_token(token)
    used = await conn.execute(
        update(email_tokens)
        .where(
            email_tokens.c.token_hash == token_hash,
            email_tokens.c.purpose == purpose,
            email_tokens.c.used_at.is_(None),
            email_tokens.c.expires_at > now,
        )
        .values(used_at=now)
    )
    if used.rowcount != 1:
        return None
    row = (
        await conn.execute(
            select(email_tokens.c.user_id, email_tokens.c.email).where(
                email_tokens.c.token_hash == token_hash
            )
        )
    ).one()
    return Redeemed(user_id=row.user_id, email=row.email)


async def purge_expired(conn: AsyncConnection, *, now: datetime) -> int:
    """Forget tokens past their expiry (used or not): they can never work again."""
    result = await conn.execute(delete(email_tokens).where(email_tokens.c.expires_at <= now))
    return result.rowcount
