"""Login throttling, kept in the database so every replica sees the same counts.

Failures are appended (no shared counter row to contend on). An account, or a client
address, that collected ``max_failures`` within ``window`` is locked for ``lockout``
after the failure that reached the limit. A success clears the account's failures,
not the address's: logging into one's own account must not reset an attacker's count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, utcnow
from pasar_users.problems import TooManyAttempts
from pasar_users.tables import login_failures


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    max_failures_per_address: int = 20
    window_seconds: int = 300
    lockout_seconds: int = 300


def locked_until(
    failures: Sequence[datetime], *, limit: int, window: timedelta, lockout: timedelta
) -> datetime | None:
    """When the lock ends, given failure times in ascending order (None: never locked).

    A lock starts at any failure that is the ``limit``-th within ``window``.
    """
    end: datetime | None = None
    for i in range(limit - 1, len(failures)):
        if failures[i] - failures[i - limit + 1] <= window:
            end = failures[i] + lockout
    return end


async def check(
    *, db: Database, policy: ThrottlePolicy, account: str | None, address: str | None
) -> None:
    """Raise ``TooManyAttempts`` (with the seconds to wait) while either key is locked."""
    now = utcnow()
    window = timedelta(seconds=policy.window_seconds)
    lockout = timedelta(seconds=policy.lockout_seconds)
    since = now - window - lockout
    ends: list[datetime] = []
    async with db.read() as conn:
        for column, value, limit in (
            (login_failures.c.account, account, policy.max_failures),
            (login_failures.c.address, address, policy.max_failures_per_address),
        ):
            if value is None:
                continue
            times = (
                await conn.scalars(
                    select(login_failures.c.failed_at)
                    .where(column == value, login_failures.c.failed_at > since)
                    .order_by(login_failures.c.failed_at)
                )
            ).all()
            end = locked_until(times, limit=limit, window=window, lockout=lockout)
            if end is not None and end > now:
                ends.append(end)
    if ends:
        raise TooManyAttempts(retry_after=max(1, math.ceil((max(ends) - now).total_seconds())))


async def record_failure(*, db: Database, account: str | None, address: str | None) -> None:
    async with db.write() as conn:
        await conn.execute(
            insert(login_failures).values(account=account, address=address, failed_at=utcnow())
        )


async def clear_account(conn: AsyncConnection, *, account: str) -> None:
    """A successful login resets the account's count (in the caller's transaction)."""
    await conn.execute(delete(login_failures).where(login_failures.c.account == account))


async def purge(*, db: Database, policy: ThrottlePolicy) -> int:
    """Forget failures too old to matter any more."""
    horizon = utcnow() - timedelta(seconds=policy.window_seconds + policy.lockout_seconds)
    async with db.write() as conn:
        result = await conn.execute(
            delete(login_failures).where(login_failures.c.failed_at < horizon)
        )
        return result.rowcount
