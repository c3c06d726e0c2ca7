"""Idempotency keys for order placement, per user.

The key is claimed by inserting its row first: the primary key (user_id, key) decides
between concurrent duplicates, so exactly one request does the work. Others get 409
``idempotency_key_in_flight`` while it runs, and its stored answer once it is done.

What is stored: the 201 (written in the same transaction as the order) and final 4xx
answers (out of stock, unknown product, inactive user), as Stripe does. A 503 or an
unexpected error frees the key, so the client's retry really tries again; so does 409
``too_many_unpaid_orders``, which is about the customer's other orders, not this
request: once one is paid or cancelled, the same checkout with the same key goes
through. A claim left ``in_flight`` by a crashed process can be taken over once it is
older than the placement deadline. Keys live at least ``idempotency_ttl_seconds`` (24 h by default).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, retrying
from pasar_kit.problems import Problem
from pasar_orders.problems import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    TooManyUnpaidOrders,
)
from pasar_orders.tables import idempotency_keys as keys

IN_FLIGHT = "in_flight"
DONE = "done"


@dataclass(frozen=True)
class Replay:
    """The stored answer of an earlier request with the same key and body."""

    status: int
    body: dict[str, Any]


def validate_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or not all(" " <= char <= "~" for char in key):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 printable ASCII characters.")
    return key


def fingerprint(body: BaseModel) -> str:
    """sha256 of the request's canonical JSON: same meaning, same fingerprint."""
    canonical = json.dumps(
        body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _this(user_id: str, key: str) -> Any:
    return (keys.c.user_id == user_id) & (keys.c.key == key)


# Every placement's two statements, built once (see ``pasar_kit.db``): the claim, and
# the answer stored (executed with the columns to set).
_CLAIM = insert(keys)
_STORE_ANSWER = update(keys).where(keys.c.user_id == bindparam("uid"), keys.c.key == bindparam("k"))


async def claim(
    *,
    db: Database,
    user_id: str,
    key: str,
    fingerprint: str,
    now: datetime,
    stale_after: timedelta,
    also: Callable[[AsyncConnection], Awaitable[None]] | None = None,
) -> Replay | None:
    """None when this request now owns the key; a ``Replay`` when it was answered before.

    ``also`` runs in the transaction that gives this request the key, so the first write
    of the work it guards costs no transaction of its own.
    """

    async def insert_claim() -> None:
        async with db.write() as conn:
            await conn.execute(
                _CLAIM,
                {
                    "user_id": user_id,
                    "key": key,
                    "fingerprint": fingerprint,
                    "state": IN_FLIGHT,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if also is not None:
                await also(conn)

    for _ in range(3):  # the row may vanish (purged, freed) between insert and read
        try:
            await retrying(insert_claim)
            return None
        except IntegrityError:
            pass
        async with db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        keys.c.fingerprint,
                        keys.c.state,
                        keys.c.response_status,
                        keys.c.response_body,
                        keys.c.updated_at,
                    ).where(_this(user_id, key))
                )
            ).first()
        if row is None:
            continue
        if row.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request body."
            )
        if row.state == DONE:
            return Replay(status=int(row.response_status), body=json.loads(row.response_body))
        if row.updated_at < now - stale_after and await _take_over(
            db=db, user_id=user_id, key=key, seen=row.updated_at, now=now, also=also
        ):
            return None
        raise IdempotencyKeyInFlight(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            headers={"Retry-After": "1"},
        )
    raise IdempotencyKeyInFlight(headers={"Retry-After": "1"})


async def _take_over(
    *,
    db: Database,
    user_id: str,
    key: str,
    seen: datetime,
    now: datetime,
    also: Callable[[AsyncConnection], Awaitable[None]] | None,
) -> bool:
    """Claim a key whose owner died mid-request; one taker wins (and runs ``also``)."""
    async with db.write() as conn:
        result = await conn.execute(
            update(keys)
            .where(_this(user_id, key), keys.c.state == IN_FLIGHT, keys.c.updated_at == seen)
            .values(updated_at=now)
        )
        won = result.rowcount == 1
        if won and also is not None:
            await also(conn)
    return won


async def complete(
    conn: AsyncConnection,
    *,
    user_id: str,
    key: str,
    status: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    """Store the final answer, inside the transaction that produced it."""
    await conn.execute(
        _STORE_ANSWER,
        {
            "uid": user_id,
            "k": key,
            "state": DONE,
            "response_status": status,
            "response_body": json.dumps(body, separators=(",", ":")),
            "updated_at": now,
        },
    )


async def settle_failure(
    *, db: Database, user_id: str, key: str, problem: Problem | None, now: datetime
) -> None:
    """A failed placement: keep a final 4xx answer; free the key after anything else."""
    async with db.write() as conn:
        if (
            problem is not None
            and 400 <= problem.status < 500
            and not isinstance(problem, TooManyUnpaidOrders)
        ):
            await complete(
                conn, user_id=user_id, key=key, status=problem.status, body=problem.body(), now=now
            )
        else:
            await conn.execute(delete(keys).where(_this(user_id, key), keys.c.state == IN_FLIGHT))


async def purge_idempotency_keys(*, db: Database, older_than: datetime) -> int:
    async with db.write() as conn:
        result = await conn.execute(delete(keys).where(keys.c.created_at < older_than))
    return result.rowcount
