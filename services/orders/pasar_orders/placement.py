"""Placing an order: the saga (docs/architecture.md tells it with a diagram).

1. (route) the token is verified locally;
2. the Idempotency-Key is claimed, or its earlier answer replayed;
3. an internal ``placing`` row is written (crash safety: recovery finds it), in the
   key's claim when there is one; with payments on it takes one of the customer's
   unpaid-order slots in a transaction of its own, or the placement is refused (409
   ``too_many_unpaid_orders``) before anything is reserved;
4. the User-Service confirms the user exists and is active, and, when the shop asks for
   it, that their email is verified (if not, the row goes);
5. the Product-Service reserves the stock, keyed by the order id; without a payment
   provider the same call commits it (``commit: true``), with one the hold lasts
   through the payment window;
6. the lines are priced from the reservation's answer, never from the client;
7. one transaction writes the price snapshot, totals, status, first history entry and
   the ``order.created`` event, and stores the idempotent answer.

Any failure leaves no visible order and no held stock: a shortage or unknown product
reserved nothing; a dependency failure releases best-effort, and what could not be
released is left to ``recovery.recover_stuck_placements``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, retrying
from pasar_kit.problems import DependencyUnavailable, Problem
from pasar_orders import idempotency
from pasar_orders.problems import (
    EmailNotVerified,
    OrderTotalTooLarge,
    TooManyOfOneProduct,
    TooManyUnpaidOrders,
    UserInactive,
)
from pasar_orders.remote import ProductsApi, Reservation, ReservationGone, UsersApi
from pasar_orders.schemas import (
    MAX_ORDER_TOTAL,
    OrderCreate,
    OrderLineIn,
    OrderLinePublic,
    OrderPublic,
    ShippingAddress,
    StatusEntryPublic,
)
from pasar_orders.status import PLACING, OrderStatus, initial_status
from pasar_orders.tables import order_lines, orders
from pasar_orders.tracking import record_change

log = logging.getLogger("pasar.orders.placement")

MAX_UNITS_PER_PRODUCT = 1000

# The statements every placement runs, built once (see ``pasar_kit.db``).
_ADD_ORDER = insert(orders)
_ADD_LINES = insert(order_lines)
# Executed with the columns to set: a placing row becomes the order.
_FINISH = update(orders).where(orders.c.id == bindparam("oid"), orders.c.status == PLACING)


@dataclass(frozen=True)
class PlacementPolicy:
    payments_enabled: bool
    # None: the Product-Service's default hold time (the hold is committed at once).
    reservation_ttl_seconds: int | None
    # An unfinished claim on an Idempotency-Key older than this belongs to a dead request.
    stale_claim_after: timedelta
    # How many orders a customer may have holding stock unpaid; None: no cap (orders
    # are not paid online, so none waits for a payment).
    max_unpaid_orders: int | None = None
    # Only accounts with a verified email may order (403 email_not_verified).
    require_verified_email: bool = False


@dataclass(frozen=True)
class Placed:
    status: int
    body: dict[str, Any]
    replayed: bool = False


# What an order asks for: each product once, with its quantity, in first-seen order.
Wanted = dict[str, int]


def merge_lines(items: list[OrderLineIn]) -> Wanted:
    """One line per product, first-seen order kept, quantities added up."""
    merged: dict[str, int] = {}
    for item in items:
        merged[item.product_id] = merged.get(item.product_id, 0) + item.quantity
    for product_id, quantity in merged.items():
        if quantity > MAX_UNITS_PER_PRODUCT:
            raise TooManyOfOneProduct(
                f"At most {MAX_UNITS_PER_PRODUCT} units of one product per order.",
                product_id=product_id,
                requested=quantity,
            )
    return merged


def price_lines(reservation: Reservation, wanted: Wanted) -> list[OrderLinePublic]:
    """The price snapshot, from the Product-Service's answer and never the client's.

    The answer must cover exactly the lines asked for; anything else is garbage.
    """
    by_product = {line.product_id: line for line in reservation.items}
    if len(by_product) != len(wanted) or len({line.currency for line in reservation.items}) != 1:
        raise DependencyUnavailable("The Product-Service answered an unexpected reservation.")
    priced: list[OrderLinePublic] = []
    for product_id, quantity in wanted.items():
        line = by_product.get(product_id)
        if line is None or line.quantity != quantity or line.unit_price < 0:
            raise DependencyUnavailable("The Product-Service answered an unexpected reservation.")
        priced.append(
            OrderLinePublic(
                product_id=line.product_id,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line.unit_price * line.quantity,
            )
        )
    # The Product-Service refuses such a reservation already; checked again because a
    # total past BIGINT would fail the final insert after the stock was taken.
    if sum(line.line_total for line in priced) > MAX_ORDER_TOTAL:
        raise OrderTotalTooLarge(
            f"An order may be worth at most {MAX_ORDER_TOTAL}.", limit=MAX_ORDER_TOTAL
        )
    return priced


async def place_order(
    *,
    db: Database,
    users: UsersApi,
    products: ProductsApi,
    policy: PlacementPolicy,
    user_id: str,
    request: OrderCreate,
    idempotency_key: str | None,
    now: datetime,
) -> Placed:
    wanted = merge_lines(request.items)
    draft = _Draft(
        order_id=str(uuid.uuid4()),
        user_id=user_id,
        address=request.shipping_address,
        note=request.note,
        now=now,
    )
    # Without an unpaid-order cap the ``placing`` row goes into the transaction that
    # claims the key: one transaction fewer per placement.
    started = idempotency_key is not None and policy.max_unpaid_orders is None
    if idempotency_key is not None:
        replay = await idempotency.claim(
            db=db,
            user_id=user_id,
            key=idempotency_key,
            fingerprint=idempotency.fingerprint(request),
            now=now,
            stale_after=policy.stale_claim_after,
            also=_placing_row(draft) if started else None,
        )
        if replay is not None:
            return Placed(status=replay.status, body=replay.body, replayed=True)
    try:
        body = await _saga(
            db=db,
            users=users,
            products=products,
            policy=policy,
            draft=draft,
            started=started,
            wanted=wanted,
            idempotency_key=idempotency_key,
        )
    except Exception as exc:
        if idempotency_key is not None:
            await idempotency.settle_failure(
                db=db,
                user_id=user_id,
                key=idempotency_key,
                problem=exc if isinstance(exc, Problem) else None,
                now=now,
            )
        raise
    return Placed(status=201, body=body)


@dataclass(frozen=True)
class _Draft:
    """An order being placed: what is known before the stock is held."""

    order_id: str
    user_id: str
    address: ShippingAddress
    note: str | None
    now: datetime


async def _saga(
    *,
    db: Database,
    users: UsersApi,
    products: ProductsApi,
    policy: PlacementPolicy,
    draft: _Draft,
    started: bool,
    wanted: Wanted,
    idempotency_key: str | None,
) -> dict[str, Any]:
    if not started:
        await _start(db=db, policy=policy, draft=draft)
    try:
        user = await users.user(draft.user_id)
        if user is None or not user.active:
            raise UserInactive("This account is unknown or deactivated.")
        if policy.require_verified_email and not user.email_verified:
            raise EmailNotVerified("Verify your email address first; we can send a new link.")
    except Exception:
        await _drop(db=db, order_id=draft.order_id)
        raise
    reservation, lines = await _hold(
        db=db, products=products, policy=policy, order_id=draft.order_id, wanted=wanted
    )
    status = initial_status(payments_enabled=policy.payments_enabled)
    currency = reservation.items[0].currency
    # The outbox insert can deadlock with a relay's claim (MariaDB gap locks): the
    # transaction rolled back whole, so running it again is safe.
    return await retrying(
        lambda: _finish(
            db=db,
            draft=draft,
            status=status,
            lines=lines,
            currency=currency,
            idempotency_key=idempotency_key,
        )
    )


def _placing(draft: _Draft) -> dict[str, Any]:
    """The internal ``placing`` row: recovery finds the placement by it if we crash."""
    return {
        "id": draft.order_id,
        "user_id": draft.user_id,
        "status": PLACING,
        "total": 0,
        "currency": "",
        "shipping_address": draft.address.model_dump(),
        "note": draft.note,
        "created_at": draft.now,
        "updated_at": draft.now,
    }


def _placing_row(draft: _Draft) -> Callable[[AsyncConnection], Awaitable[None]]:
    """Writes the ``placing`` row inside another transaction (the key's claim)."""

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(_ADD_ORDER, _placing(draft))

    return write


async def _start(*, db: Database, policy: PlacementPolicy, draft: _Draft) -> None:
    """Write the ``placing`` row in a transaction of its own (in a free unpaid-order
    slot of the customer when there is a cap)."""
    row = _placing(draft)
    if policy.max_unpaid_orders is not None:
        await _start_unpaid(db=db, row=row, user_id=draft.user_id, limit=policy.max_unpaid_orders)
        return
    write = _placing_row(draft)

    async def start() -> None:
        async with db.write() as conn:
            await write(conn)

    # Inserts can deadlock with the workers' locking scans (MariaDB gap locks).
    await retrying(start)


async def _hold(
    *,
    db: Database,
    products: ProductsApi,
    policy: PlacementPolicy,
    order_id: str,
    wanted: Wanted,
) -> tuple[Reservation, list[OrderLinePublic]]:
    """Reserve the stock and price the lines (the reservation committed in the same call
    when no payment will follow); on any failure nothing stays held and the ``placing``
    row goes."""
    commit = not policy.payments_enabled
    try:
        reservation = await products.reserve(
            reservation_id=order_id,
            items=wanted,
            ttl_seconds=policy.reservation_ttl_seconds,
            commit=commit,
        )
    except DependencyUnavailable:
        await _abandon(db=db, products=products, order_id=order_id)
        raise
    except Problem:
        # Out of stock, unknown product, worth too much: all or nothing, nothing is held.
        await _drop(db=db, order_id=order_id)
        raise
    try:
        if reservation.status != ("committed" if commit else "held"):
            # A replay of a reservation that lapsed or was released meanwhile.
            raise ReservationGone(reservation.status)
        lines = price_lines(reservation, wanted)
    except ReservationGone as exc:
        await _abandon(db=db, products=products, order_id=order_id)
        raise DependencyUnavailable("The stock reservation lapsed; please try again.") from exc
    except (DependencyUnavailable, OrderTotalTooLarge):
        await _abandon(db=db, products=products, order_id=order_id)
        raise
    return reservation, lines


async def _finish(
    *,
    db: Database,
    draft: _Draft,
    status: OrderStatus,
    lines: list[OrderLinePublic],
    currency: str,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """One transaction: the order's final state, lines, first history entry and
    notification, and the stored idempotent answer; returns the answer's body."""
    order_id, user_id, now = draft.order_id, draft.user_id, draft.now
    total = sum(line.line_total for line in lines)
    async with db.write() as conn:
        result = await conn.execute(
            _FINISH,
            {
                "oid": order_id,
                "status": status.value,
                "total": total,
                "currency": currency,
                "updated_at": now,
            },
        )
        if result.rowcount != 1:
            # Too slow: recovery already claimed it and releases the stock.
            raise DependencyUnavailable("Placing the order took too long; please try again.")
        await conn.execute(
            _ADD_LINES,
            [
                {"order_id": order_id, "line_no": no, **line.model_dump()}
                for no, line in enumerate(lines, 1)
            ],
        )
        await record_change(
            conn,
            order_id=order_id,
            user_id=user_id,
            status=status.value,
            by=user_id,
            note=None,
            at=now,
            created=True,
        )
        # The answer, stored for idempotent replays: the same OrderPublic that reading
        # the order back gives (queries._hydrate), as JSON.
        body = OrderPublic(
            id=order_id,
            user_id=user_id,
            status=status,
            items=lines,
            total=total,
            currency=currency,
            shipping_address=draft.address,
            note=draft.note,
            created_at=now,
            updated_at=now,
            status_history=[StatusEntryPublic(status=status, at=now, by=user_id, note=None)],
        ).model_dump(mode="json")
        if idempotency_key is not None:
            await idempotency.complete(
                conn, user_id=user_id, key=idempotency_key, status=201, body=body, now=now
            )
    return body


async def _start_unpaid(*, db: Database, row: dict[str, Any], user_id: str, limit: int) -> None:
    """Write the ``placing`` row in a free unpaid-order slot of the customer, or refuse.

    The unique index on (user_id, unpaid_slot) decides races: of two placements that
    both saw a slot free, one insert fails and that placement looks again, so the cap
    holds across any number of replicas. Slots come free when an order leaves
    ``pending_payment`` (``tracking.apply_transition``) or its row is dropped.
    """

    async def take_a_slot() -> None:
        async with db.write() as conn:
            taken = set(
                (
                    await conn.execute(
                        select(orders.c.unpaid_slot).where(
                            orders.c.user_id == user_id, orders.c.unpaid_slot.is_not(None)
                        )
                    )
                ).scalars()
            )
            if len(taken) >= limit:
                raise TooManyUnpaidOrders(
                    f"You have {len(taken)} orders waiting for payment; pay or cancel one "
                    "before placing another.",
                    limit=limit,
                )
            slot = min(set(range(1, limit + 1)) - taken)
            await conn.execute(insert(orders).values(**row, unpaid_slot=slot))

    # Each lost race means another placement took a slot, so the cap is reached after at
    # most ``limit`` of them (unless slots keep coming free meanwhile: not worth chasing).
    for _ in range(limit + 2):
        try:
            # retrying: a deadlock with a concurrent insert (MariaDB gap locks).
            await retrying(take_a_slot)
            return
        except IntegrityError:
            continue  # a concurrent placement took that slot first: look again
    raise TooManyUnpaidOrders(
        "Too many orders are being placed at once; pay or cancel one before placing another.",
        limit=limit,
    )


async def _drop(*, db: Database, order_id: str) -> None:
    async with db.write() as conn:
        await conn.execute(
            delete(orders).where(orders.c.id == order_id, orders.c.status == PLACING)
        )


async def _abandon(*, db: Database, products: ProductsApi, order_id: str) -> None:
    """Best-effort release, then drop. If the release cannot be confirmed the placing row
    stays for the recovery job, which retries the release until it succeeds."""
    try:
        await products.release(order_id, retry=False)
    except DependencyUnavailable:
        log.warning(
            "could not release %s after a failed placement; recovery will",
            order_id,
            extra={"order_id": order_id},
        )
        return
    await _drop(db=db, order_id=order_id)
