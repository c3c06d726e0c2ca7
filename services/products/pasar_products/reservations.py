"""Stock reservations: hold stock for an order, then commit or release it.

The rules that keep stock right under any concurrency and any number of replicas:

* Stock leaves ``products.stock`` only through ``stock = stock - :q WHERE stock >= :q``,
  one statement per product, all inside one transaction: every line matches or the
  whole reservation rolls back.
* Products are always locked in ascending id order (lines merged per product first), so
  two crossed multi-line reservations wait for each other instead of deadlocking; a
  deadlock the database reports anyway is retried with ``retrying``.
* Stock comes back only through ``release_reservations``, whose conditional status
  change (held/committed -> released) only one transaction can win, so it returns once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, retrying, skip_locked
from pasar_products.problems import (
    OutOfStock,
    ReservationConflict,
    ReservationExpired,
    ReservationNotFound,
    ReservationReleased,
    ReservationTotalTooLarge,
    UnknownProduct,
)
from pasar_products.schemas import MAX_MONEY, ReservationItemPublic
from pasar_products.tables import products, reservation_lines, reservations

Status = Literal["held", "committed", "released"]
HELD: Status = "held"
COMMITTED: Status = "committed"
RELEASED: Status = "released"

# Why a reservation was released, kept for operators and for a late commit's answer.
ASKED = "released"
EXPIRED = "expired"


@dataclass(frozen=True)
class Reservation:
    id: str
    status: Status
    expires_at: datetime | None
    created_at: datetime
    lines: tuple[ReservationItemPublic, ...]
    release_reason: str | None = None  # "released" (asked for) or "expired"

    @property
    def unknown(self) -> bool:
        """Released before it was made (see ``release``): to callers, no such reservation."""
        return self.status == RELEASED and not self.lines

    def quantities(self) -> dict[str, int]:
        return {line.product_id: line.quantity for line in self.lines}


@dataclass(frozen=True)
class Reserved:
    reservation: Reservation
    created: bool  # False when this was a replay of an earlier request


def merge_items(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """One quantity per product (duplicate lines summed), in ascending product id order."""
    merged: dict[str, int] = {}
    for product_id, quantity in items:
        merged[product_id] = merged.get(product_id, 0) + quantity
    return dict(sorted(merged.items()))


class _Shortfall(Exception):
    """A guarded decrement matched nothing; the transaction must roll back first."""


# The placement path's statements, built once (see ``pasar_kit.db``).
_HEADER = select(
    reservations.c.status,
    reservations.c.expires_at,
    reservations.c.created_at,
    reservations.c.release_reason,
).where(reservations.c.id == bindparam("rid"))
_HEADER_LOCKED = _HEADER.with_for_update()
_LINES = (
    select(
        reservation_lines.c.product_id,
        reservation_lines.c.sku,
        reservation_lines.c.name,
        reservation_lines.c.quantity,
        reservation_lines.c.unit_price,
        reservation_lines.c.currency,
    )
    .where(reservation_lines.c.reservation_id == bindparam("rid"))
    .order_by(reservation_lines.c.product_id)
)
_CATALOGUE = select(
    products.c.id,
    products.c.sku,
    products.c.name,
    products.c.price,
    products.c.stock,
    products.c.active,
).where(products.c.id.in_(bindparam("ids", expanding=True)))
_ADD_HEADER = insert(reservations)
_ADD_LINES = insert(reservation_lines)
# stock = stock - :qty WHERE stock >= :qty, the one way stock leaves a product.
_TAKE = (
    update(products)
    .where(products.c.id == bindparam("pid"), products.c.stock >= bindparam("qty"))
    .values(stock=products.c.stock - bindparam("qty"))
)


async def _load(
    conn: AsyncConnection, reservation_id: str, *, for_update: bool = False
) -> Reservation | None:
    header = _HEADER_LOCKED if for_update else _HEADER
    found = (await conn.execute(header, {"rid": reservation_id})).first()
    if found is None:
        return None
    lines = await conn.execute(_LINES, {"rid": reservation_id})
    return Reservation(
        id=reservation_id,
        status=cast(Status, found.status),
        expires_at=found.expires_at,
        created_at=found.created_at,
        lines=tuple(ReservationItemPublic.model_validate(row._mapping) for row in lines),
        release_reason=found.release_reason,
    )


def _replay(existing: Reservation, wanted: Mapping[str, int]) -> Reserved:
    if existing.unknown:
        raise ReservationConflict(
            f"Reservation {existing.id!r} was released before it was made; nothing is held."
        )
    if existing.quantities() != dict(wanted):
        raise ReservationConflict(
            f"Reservation {existing.id!r} already exists with other items.",
        )
    return Reserved(reservation=existing, created=False)


async def _availability(db: Database, wanted: Mapping[str, int]) -> dict[str, int]:
    """What is available now of each product, read after the failed transaction."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(products.c.id, products.c.stock).where(products.c.id.in_(list(wanted)))
        )
        available = {row.id: int(row.stock) for row in rows}
    return {pid: available.get(pid, 0) for pid in wanted}


def _shortages(
    wanted: Mapping[str, int], available: Mapping[str, int], *, all_lines: bool = False
) -> list[dict[str, object]]:
    return [
        {"product_id": pid, "requested": qty, "available": available[pid]}
        for pid, qty in wanted.items()
        if all_lines or available[pid] < qty
    ]


async def reserve(
    *,
    db: Database,
    reservation_id: str,
    items: Iterable[tuple[str, int]],
    ttl_seconds: int,
    currency: str,
    client_id: str | None,
    now: datetime,
    commit: bool = False,
) -> Reserved:
    """Hold every line or none (``commit``: held and committed at once, never expiring).
    Replays of the same id and items return the first answer."""
    wanted = merge_items(items)
    status = COMMITTED if commit else HELD
    expires_at = None if commit else now + timedelta(seconds=ttl_seconds)
    header = {
        "id": reservation_id,
        "status": status,
        "client_id": client_id,
        "expires_at": expires_at,
        "created_at": now,
        "updated_at": now,
    }

    async def attempt() -> Reserved:
        async with db.write() as conn:
            existing = await _load(conn, reservation_id)
            if existing is not None:
                return _replay(existing, wanted)
            catalogue = await _priced_catalogue(conn, wanted)
            # The header first: a concurrent request with the same id waits on it here,
            # before touching stock, and then fails its insert (answered as a replay).
            await conn.execute(_ADD_HEADER, header)
            lines = await _take_stock(conn, reservation_id, wanted, catalogue, currency)
        created = Reservation(
            id=reservation_id,
            status=status,
            expires_at=expires_at,
            created_at=now,
            lines=lines,
        )
        return Reserved(reservation=created, created=True)

    available: dict[str, int] = {}
    for _ in range(3):
        try:
            return await retrying(attempt)
        except _Shortfall:
            available = await _availability(db, wanted)
            shortages = _shortages(wanted, available)
            if shortages:
                raise OutOfStock("Not enough stock for every line.", shortages=shortages) from None
            # The stock came back between our decrement and this read: try again.
        except IntegrityError:
            # The same reservation id was created by a concurrent request: a replay.
            async with db.read() as conn:
                existing = await _load(conn, reservation_id)
            if existing is None:
                raise
            return _replay(existing, wanted)
    # Stock this contended keeps slipping away between tries: report every line.
    raise OutOfStock(
        "Not enough stock for every line.",
        shortages=_shortages(wanted, available, all_lines=True),
    )


async def _priced_catalogue(conn: AsyncConnection, wanted: dict[str, int]) -> dict[str, Any]:
    """The wanted products as they are now, refused before any lock is taken if one is
    unknown or archived, the whole is worth too much, or the stock visibly falls short."""
    catalogue = {row.id: row for row in await conn.execute(_CATALOGUE, {"ids": list(wanted)})}
    unknown = [pid for pid in wanted if pid not in catalogue or not catalogue[pid].active]
    if unknown:
        raise UnknownProduct(f"Not in the catalogue: {', '.join(unknown)}.", product_ids=unknown)
    # The value held is the order's total downstream: past the largest amount the API
    # deals in it would overflow a 64-bit column (10 lines of 1000 at the top price).
    if sum(int(catalogue[pid].price) * qty for pid, qty in wanted.items()) > MAX_MONEY:
        raise ReservationTotalTooLarge(
            f"A reservation may be worth at most {MAX_MONEY}.", limit=MAX_MONEY
        )
    if any(catalogue[pid].stock < qty for pid, qty in wanted.items()):
        raise _Shortfall  # fail fast, before taking any lock
    return catalogue


async def _take_stock(
    conn: AsyncConnection,
    reservation_id: str,
    wanted: dict[str, int],
    catalogue: dict[str, Any],
    currency: str,
) -> tuple[ReservationItemPublic, ...]:
    """Decrement every line's stock (or raise ``_Shortfall``) and write the lines with
    the prices of this moment."""
    for pid, qty in wanted.items():  # ascending ids: a consistent lock order
        taken = await conn.execute(_TAKE, {"pid": pid, "qty": qty})
        if taken.rowcount != 1:
            raise _Shortfall
    lines = tuple(
        ReservationItemPublic(
            product_id=pid,
            sku=catalogue[pid].sku,
            name=catalogue[pid].name,
            quantity=qty,
            unit_price=int(catalogue[pid].price),
            currency=currency,
        )
        for pid, qty in wanted.items()
    )
    await conn.execute(
        _ADD_LINES, [{"reservation_id": reservation_id, **line.model_dump()} for line in lines]
    )
    return lines


async def release_reservations(
    conn: AsyncConnection,
    *,
    reservation_ids: Sequence[str],
    now: datetime,
    reason: str,
    only_expired: bool = False,
) -> list[str]:
    """Release each reservation that still holds stock and return that stock, once.

    The one place stock comes back, shared by the release endpoint, commit-after-expiry
    and the expiry worker. Returns the ids this transaction released.
    """
    won: list[str] = []
    for reservation_id in reservation_ids:
        statement = update(reservations).where(reservations.c.id == reservation_id)
        if only_expired:
            statement = statement.where(
                reservations.c.status == HELD, reservations.c.expires_at <= now
            )
        else:
            statement = statement.where(reservations.c.status.in_((HELD, COMMITTED)))
        result = await conn.execute(
            statement.values(
                status=RELEASED, expires_at=None, release_reason=reason, updated_at=now
            )
        )
        if result.rowcount == 1:
            won.append(reservation_id)
    if not won:
        return won
    # Summed per product and applied in ascending id order: the same lock order as
    # reserve(), whatever mix of reservations this batch holds.
    totals = await conn.execute(
        select(reservation_lines.c.product_id, func.sum(reservation_lines.c.quantity))
        .where(reservation_lines.c.reservation_id.in_(won))
        .group_by(reservation_lines.c.product_id)
        .order_by(reservation_lines.c.product_id)
    )
    for product_id, quantity in totals.all():
        await conn.execute(
            update(products)
            .where(products.c.id == product_id)
            .values(stock=products.c.stock + int(quantity))
        )
    return won


async def get_reservation(*, db: Database, reservation_id: str) -> Reservation:
    async with db.read() as conn:
        reservation = await _load(conn, reservation_id)
    if reservation is None or reservation.unknown:
        raise ReservationNotFound(f"No reservation has id {reservation_id!r}.")
    return reservation


async def commit(*, db: Database, reservation_id: str, now: datetime) -> Reservation:
    """Held -> committed (it no longer expires). Idempotent.

    A held reservation past its expiry that the worker has not swept yet is treated as
    expired: released here, then refused.
    """

    async def attempt() -> tuple[Reservation, bool]:
        async with db.write() as conn:
            reservation = await _load(conn, reservation_id, for_update=True)
            if reservation is None or reservation.unknown:
                raise ReservationNotFound(f"No reservation has id {reservation_id!r}.")
            if reservation.status == RELEASED and reservation.release_reason == EXPIRED:
                raise ReservationExpired(f"Reservation {reservation_id!r} expired.")
            if reservation.status == RELEASED:
                raise ReservationReleased(f"Reservation {reservation_id!r} was released.")
            if reservation.status == COMMITTED:
                return reservation, False
            assert reservation.expires_at is not None
            if reservation.expires_at <= now:
                await release_reservations(
                    conn,
                    reservation_ids=[reservation_id],
                    now=now,
                    reason=EXPIRED,
                    only_expired=True,
                )
                return reservation, True
            await conn.execute(
                update(reservations)
                .where(reservations.c.id == reservation_id, reservations.c.status == HELD)
                .values(status=COMMITTED, expires_at=None, updated_at=now)
            )
            committed = await _load(conn, reservation_id)
        assert committed is not None
        return committed, False

    reservation, expired = await retrying(attempt)
    if expired:  # raised only now, so that the release above is committed
        raise ReservationExpired(f"Reservation {reservation_id!r} expired before its commit.")
    return reservation


async def release(*, db: Database, reservation_id: str, now: datetime) -> Reservation:
    """Held or committed -> released; the stock returns exactly once. Idempotent.

    An unknown id is 404, and remembered as released with no lines: a caller that gave
    up on a reservation whose request is still on its way (a stalled replica, a slow
    network) releases it first, and the late request then holds nothing (409
    ``reservation_conflict``). A committed-at-once reservation would otherwise never
    come back.
    """

    async def attempt() -> Reservation | None:
        async with db.write() as conn:
            reservation = await _load(conn, reservation_id, for_update=True)
            if reservation is None:
                await conn.execute(
                    insert(reservations).values(
                        id=reservation_id,
                        status=RELEASED,
                        expires_at=None,
                        release_reason=ASKED,
                        created_at=now,
                        updated_at=now,
                    )
                )
                return None
            if reservation.status == RELEASED:
                return reservation
            await release_reservations(
                conn, reservation_ids=[reservation_id], now=now, reason=ASKED
            )
            released = await _load(conn, reservation_id)
        assert released is not None
        return released

    try:
        released = await retrying(attempt)
    except IntegrityError:
        # The reservation itself was being made meanwhile: it exists now, release it.
        released = await retrying(attempt)
    if released is None or released.unknown:
        raise ReservationNotFound(f"No reservation has id {reservation_id!r}.")
    return released


async def expire_reservations(*, db: Database, now: datetime, batch_size: int) -> int:
    """Release up to ``batch_size`` held reservations past their expiry; how many it did.

    Several workers may run at once: on MariaDB/PostgreSQL each claims rows the others
    have not locked (SKIP LOCKED); on SQLite writes are serialised. Either way the
    conditional status change in ``release_reservations`` returns each stock once.
    """

    async def attempt() -> int:
        async with db.write() as conn:
            due = await conn.execute(
                select(reservations.c.id)
                .where(reservations.c.status == HELD, reservations.c.expires_at <= now)
                .order_by(reservations.c.expires_at)
                .limit(batch_size)
                .with_for_update(**skip_locked(db.dialect))
            )
            ids = list(due.scalars())
            if not ids:
                return 0
            released = await release_reservations(
                conn, reservation_ids=ids, now=now, reason=EXPIRED, only_expired=True
            )
            return len(released)

    return await retrying(attempt)
