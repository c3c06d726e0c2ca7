"""Paying an order through an asynchronous gateway (Midtrans, Xendit).

The customer asks to pay (``start_payment``): the shop makes one payment at the gateway
for the order's total and answers what the customer needs (the gateway's page, a QRIS
string or a virtual account number when the gateway tells them). The payment completes
later; what the gateway then reports, by a verified notification
(``receive_notification``) or by the status job's query (``check_pending_payments``), is
applied by one function, ``apply_report``, so both paths act alike:

* settled: the payment is marked settled and the order paid, in one transaction; then
  the reservation is committed and the order moves to ``processing``, as a card payment
  does. A payment that lands on a cancelled order marks it for a refund.
* expired or failed: the payment is marked so and the order cancelled (its stock
  released by the settlement job), unless another payment of it is still open.

Every change is a conditional update on the state it saw, so of a notification, its
duplicates, the status job and a customer's cancellation racing on one order exactly one
outcome stands; a repeated report changes nothing (``duplicate``).

Each attempt has its own gateway reference, ``<order id>-<attempt>``: gateways refuse an
order id twice, and a call whose answer was lost may or may not have made a payment
there. Such an attempt stays ``creating``; the status job asks the gateway about it and
settles it if it was paid, or marks it ``abandoned``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, retrying
from pasar_kit.problems import DependencyUnavailable
from pasar_kit.workers import claim_with_lease
from pasar_orders.gateways import (
    Charge,
    ChargeLine,
    Customer,
    Gateway,
    GatewayState,
    NotificationRefused,
    Report,
)
from pasar_orders.payments import PAID, claim_charge, let_go, payable
from pasar_orders.problems import (
    InvalidTransition,
    NotificationMismatch,
    NotificationNotVerified,
    PaymentInProgress,
    PaymentNotFound,
    PaymentProviderNotFound,
    PaymentWindowClosed,
)
from pasar_orders.queries import get_order
from pasar_orders.remote import ProductsApi
from pasar_orders.schemas import OrderPublic, PaymentPublic
from pasar_orders.status import OrderStatus
from pasar_orders.tables import order_lines, orders, payment_notifications, payments
from pasar_orders.tracking import SYSTEM, Actor, apply_transition, change_status

log = logging.getLogger("pasar.orders.payments")

CREATING = "creating"
PENDING = "pending"
SETTLED = "settled"
EXPIRED = "expired"
FAILED = "failed"
ABANDONED = "abandoned"
OPEN = (CREATING, PENDING)
# A stored notification body is cut at this many characters (the request itself is
# bounded by the service's body limit).
NOTIFICATION_BODY_LIMIT = 16_384
# An attempt whose creation answer was lost is given up once the gateway has not heard
# of it this long after it was made.
ABANDON_AFTER = timedelta(minutes=5)
WAIT_FOR_CREATION_SECONDS = 10.0
_POLL_SECONDS = 0.05
_SYSTEM = Actor(id=SYSTEM, is_admin=True)


@dataclass(frozen=True)
class Timing:
    """The payment window (from the order's creation) and when the status job asks."""

    window: timedelta
    check_after: timedelta


def _public(row: Any, provider: str) -> PaymentPublic:
    return PaymentPublic(
        provider=provider,
        status=row.status,
        amount=row.amount,
        currency=row.currency,
        redirect_url=row.redirect_url,
        qr_string=row.qr_string,
        va_number=row.va_number,
        expires_at=row.expires_at,
    )


async def _latest(conn: AsyncConnection, order_id: str) -> Any:
    return (
        await conn.execute(
            select(payments)
            .where(payments.c.order_id == order_id)
            .order_by(payments.c.attempt.desc())
            .limit(1)
        )
    ).first()


async def current_payment(
    *, db: Database, order_id: str, viewer: Actor, provider: str | None
) -> PaymentPublic:
    """The order's latest gateway payment, for its owner or an admin. None yet is 404
    ``payment_not_found`` saying the gateway (``provider``; null when the shop takes
    cards or nothing online), so a client knows whether to offer the gateway or a card."""
    await get_order(db=db, order_id=order_id, viewer_id=viewer.id, viewer_is_admin=viewer.is_admin)
    async with db.read() as conn:
        row = await _latest(conn, order_id)
    if row is None:
        raise PaymentNotFound("This order has no payment at a gateway yet.", provider=provider)
    return _public(row, provider or row.provider)


async def start_payment(
    *,
    db: Database,
    gateway: Gateway,
    order_id: str,
    payer: Actor,
    timing: Timing,
    now: datetime,
    wait_seconds: float = WAIT_FOR_CREATION_SECONDS,
) -> tuple[OrderPublic, PaymentPublic | None]:
    """Make (once) the gateway payment of a pending order; answer it with the order.

    Idempotent: while a payment is open, asking again answers it; concurrent requests
    make one payment (the charge lease of ``payments``) and all answer it. A paid order
    answers as it is.
    """
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + wait_seconds
    claim = now + timedelta(seconds=60)
    while True:
        row = await payable(db=db, order_id=order_id, payer=payer)
        async with db.read() as conn:
            latest = await _latest(conn, order_id)
        shown = _public(latest, gateway.name) if latest is not None else None
        if row.status in PAID or (row.paid_at is not None and row.status != OrderStatus.CANCELLED):
            return await _order(db, order_id, payer), shown
        if row.status != OrderStatus.PENDING_PAYMENT:
            raise InvalidTransition(
                f"An order in {row.status!r} cannot be paid.",
                current_status=row.status,
                requested_status=OrderStatus.PROCESSING.value,
            )
        if (
            latest is not None
            and latest.status == PENDING
            and (latest.expires_at is None or latest.expires_at > now)
        ):
            return await _order(db, order_id, payer), shown
        if await claim_charge(db=db, order_id=order_id, until=claim, now=now):
            try:
                made = await _make(db=db, gateway=gateway, order=row, timing=timing, now=now)
            finally:
                await let_go(db=db, order_id=order_id, until=claim)
            return await _order(db, order_id, payer), made
        if loop.time() >= give_up_at:
            raise PaymentInProgress(
                "The payment of this order is still being made; try again shortly.",
                headers={"Retry-After": "1"},
            )
        await asyncio.sleep(_POLL_SECONDS)


async def _order(db: Database, order_id: str, payer: Actor) -> OrderPublic:
    return await get_order(db=db, order_id=order_id, viewer_id=payer.id, viewer_is_admin=False)


async def _make(
    *, db: Database, gateway: Gateway, order: Any, timing: Timing, now: datetime
) -> PaymentPublic:
    """One new attempt under this request's lease: recorded first (so a lost answer is
    still asked about later), then made at the gateway."""
    left = order.created_at + timing.window - now
    if left < timedelta(minutes=1):
        raise PaymentWindowClosed("The time to pay this order is (nearly) over.")
    async with db.write() as conn:
        attempt = (
            1
            + (
                await conn.execute(
                    select(func.count())
                    .select_from(payments)
                    .where(payments.c.order_id == order.id)
                )
            ).scalar_one()
        )
        reference = f"{order.id}-{attempt}"
        await conn.execute(
            insert(payments).values(
                id=reference,
                order_id=order.id,
                attempt=attempt,
                provider=gateway.name,
                status=CREATING,
                amount=order.total,
                currency=order.currency,
                check_after=now + timing.check_after,
                created_at=now,
                updated_at=now,
            )
        )
        lines = (
            await conn.execute(
                select(
                    order_lines.c.sku,
                    order_lines.c.name,
                    order_lines.c.quantity,
                    order_lines.c.unit_price,
                )
                .where(order_lines.c.order_id == order.id)
                .order_by(order_lines.c.line_no)
            )
        ).all()
    address = order.shipping_address
    instructions = await gateway.create(
        Charge(
            reference=reference,
            order_id=order.id,
            amount=order.total,
            currency=order.currency,
            lines=tuple(ChargeLine(*line) for line in lines),
            customer=Customer(name=address["recipient"], phone=address["phone"]),
            expires_in_seconds=int(left.total_seconds()),
        )
    )
    async with db.write() as conn:
        await conn.execute(
            update(payments)
            .where(payments.c.id == reference, payments.c.status == CREATING)
            .values(
                status=PENDING,
                gateway_id=instructions.gateway_id,
                redirect_url=instructions.redirect_url,
                qr_string=instructions.qr_string,
                va_number=instructions.va_number,
                expires_at=instructions.expires_at,
                updated_at=now,
            )
        )
        made = (await conn.execute(select(payments).where(payments.c.id == reference))).one()
    return _public(made, gateway.name)


async def apply_report(
    *, db: Database, products: ProductsApi, report: Report, now: datetime
) -> tuple[str, Any]:
    """Act on what the gateway says of one payment; returns the outcome and the payment.

    Outcomes: ``paid``, ``refund_due`` (landed on a cancelled order), ``paid_twice``
    (the order was already paid or moved on: an operator refunds), ``cancelled``,
    ``closed`` (failed or expired, another payment still open), ``pending``,
    ``duplicate`` (nothing new), ``abandoned``, ``unknown_payment``, ``amount_mismatch``.
    """
    async with db.read() as conn:
        payment = (
            await conn.execute(select(payments).where(payments.c.id == report.reference))
        ).first()
    if payment is None:
        return "unknown_payment", None
    if report.amount is not None and (
        report.amount != payment.amount or (report.currency or "") != payment.currency
    ):
        log.warning(
            "gateway reports %s %s for payment %s, asked %s %s: refused",
            report.currency,
            report.amount,
            payment.id,
            payment.currency,
            payment.amount,
            extra={"order_id": payment.order_id},
        )
        return "amount_mismatch", payment
    if report.state == GatewayState.SETTLED:
        outcome = await retrying(lambda: _settle(db, payment, report, now))
        if outcome in ("paid", "duplicate"):
            await _move_on(db=db, products=products, order_id=payment.order_id, now=now)
        return outcome, payment
    if report.state in (GatewayState.EXPIRED, GatewayState.FAILED):
        final = EXPIRED if report.state == GatewayState.EXPIRED else FAILED
        return await retrying(lambda: _close(db, payment, final, report, now)), payment
    if report.state == GatewayState.UNKNOWN:
        if payment.status == CREATING and now - payment.created_at >= ABANDON_AFTER:
            async with db.write() as conn:
                await conn.execute(
                    update(payments)
                    .where(payments.c.id == payment.id, payments.c.status == CREATING)
                    .values(status=ABANDONED, check_after=None, updated_at=now)
                )
            return "abandoned", payment
        return "pending", payment
    # What the customer chose on the gateway's page, shown on ours too.
    told: dict[str, Any] = {}
    if report.va_number and report.va_number[:64] != payment.va_number:
        told["va_number"] = report.va_number[:64]
    if report.qr_string and report.qr_string != payment.qr_string:
        told["qr_string"] = report.qr_string
    if report.state == GatewayState.PENDING and told:
        async with db.write() as conn:
            await conn.execute(
                update(payments).where(payments.c.id == payment.id).values(**told, updated_at=now)
            )
    return ("pending" if report.state == GatewayState.PENDING else "duplicate"), payment


async def _settle(db: Database, payment: Any, report: Report, now: datetime) -> str:
    """The payment settled and the order paid, in one transaction: one winner."""
    async with db.write() as conn:
        won = await conn.execute(
            update(payments)
            .where(payments.c.id == payment.id, payments.c.status.in_(OPEN))
            .values(
                status=SETTLED,
                settled_at=now,
                gateway_id=report.gateway_id or payment.gateway_id,
                check_after=None,
                updated_at=now,
            )
        )
        if won.rowcount != 1:
            return "duplicate"
        paid = {
            "paid_at": now,
            "payment_reference": (report.gateway_id or payment.gateway_id or payment.id)[:64],
            "updated_at": now,
        }
        unpaid = (orders.c.id == payment.order_id) & orders.c.paid_at.is_(None)
        recorded = await conn.execute(
            update(orders)
            .where(unpaid, orders.c.status == OrderStatus.PENDING_PAYMENT.value)
            .values(**paid)
        )
        if recorded.rowcount == 1:
            return "paid"
        # Cancelled (by the customer, an admin or the payment window) before the money
        # came: the settlement job refunds what a cancelled order holds.
        late = await conn.execute(
            update(orders)
            .where(unpaid, orders.c.status == OrderStatus.CANCELLED.value)
            .values(**paid, release_due_at=now)
        )
    if late.rowcount == 1:
        return "refund_due"
    log.error(
        "payment %s settled on order %s, already paid or moved on: refund it by hand",
        payment.id,
        payment.order_id,
        extra={"order_id": payment.order_id},
    )
    return "paid_twice"


async def _move_on(*, db: Database, products: ProductsApi, order_id: str, now: datetime) -> None:
    """A paid order still ``pending_payment``: commit its stock and move it on (as the
    card payment does); if its hold lapsed, cancel it, which refunds the payment. With
    the Product-Service down this is left to ``finish_paid_orders`` (the status job)."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(orders.c.status, orders.c.paid_at).where(orders.c.id == order_id)
            )
        ).first()
    if row is None or row.paid_at is None or row.status != OrderStatus.PENDING_PAYMENT:
        return
    try:
        try:
            await change_status(
                db=db,
                products=products,
                order_id=order_id,
                target=OrderStatus.PROCESSING,
                actor=_SYSTEM,
                note="Payment received",
                now=now,
            )
        except PaymentWindowClosed:
            await change_status(
                db=db,
                products=products,
                order_id=order_id,
                target=OrderStatus.CANCELLED,
                actor=_SYSTEM,
                note="Paid after its stock was released; the payment is refunded",
                now=now,
            )
    except InvalidTransition:
        return  # moved first by a concurrent report of the payment, or cancelled
    except DependencyUnavailable as exc:
        log.warning(
            "paid order %s waits for the Product-Service: %s",
            order_id,
            exc,
            extra={"order_id": order_id},
        )


async def finish_paid_orders(
    *, db: Database, products: ProductsApi, now: datetime, batch_size: int = 20
) -> int:
    """Move on paid orders still ``pending_payment`` (their stock could not be committed
    when the payment was applied); returns how many were looked at. Safe on every
    replica: the moves are conditional and the commit idempotent."""
    async with db.read() as conn:
        ids = list(
            (
                await conn.execute(
                    select(orders.c.id)
                    .where(
                        orders.c.status == OrderStatus.PENDING_PAYMENT.value,
                        orders.c.paid_at.is_not(None),
                        orders.c.paid_at < now - timedelta(seconds=5),
                    )
                    .order_by(orders.c.paid_at)
                    .limit(batch_size)
                )
            ).scalars()
        )
    for order_id in ids:
        await _move_on(db=db, products=products, order_id=order_id, now=now)
    return len(ids)


async def _close(db: Database, payment: Any, final: str, report: Report, now: datetime) -> str:
    """The payment expired or failed; the order is cancelled with it unless another
    payment of the order is still open or settled."""
    async with db.write() as conn:
        won = await conn.execute(
            update(payments)
            .where(payments.c.id == payment.id, payments.c.status.in_(OPEN))
            .values(status=final, check_after=None, updated_at=now)
        )
        if won.rowcount != 1:
            return "duplicate"
        others = (
            await conn.execute(
                select(func.count())
                .select_from(payments)
                .where(
                    payments.c.order_id == payment.order_id,
                    payments.c.id != payment.id,
                    payments.c.status.in_((*OPEN, SETTLED)),
                )
            )
        ).scalar_one()
        if others:
            return "closed"
        order = (
            await conn.execute(select(orders.c.user_id).where(orders.c.id == payment.order_id))
        ).first()
        note = "Payment expired" if final == EXPIRED else f"Payment {report.gateway_status}"
        cancelled = order is not None and await apply_transition(
            conn,
            order_id=payment.order_id,
            user_id=order.user_id,
            current=OrderStatus.PENDING_PAYMENT.value,
            target=OrderStatus.CANCELLED,
            by=SYSTEM,
            note=note,
            now=now,
            extra_condition=orders.c.paid_at.is_(None),
        )
    return "cancelled" if cancelled else "closed"


# What a notification's outcome answers the gateway: refusals are 4xx (a gateway resends
# them, and an operator sees them stored); everything else, unknown payments included,
# is 200, for a gateway resends until it gets a 2xx and the answer would never change.
_REFUSED = {"amount_mismatch"}


async def receive_notification(
    *,
    db: Database,
    products: ProductsApi,
    gateway: Gateway | None,
    provider: str,
    body: bytes,
    headers: dict[str, str],
    now: datetime,
) -> str:
    """Verify, store and apply one notification; returns its outcome."""
    record: dict[str, Any] = {
        "provider": provider[:16],
        "received_at": now,
        "verified": False,
        "outcome": "refused",
        "body": body[:NOTIFICATION_BODY_LIMIT].decode("utf-8", "replace"),
    }
    try:
        if gateway is None or gateway.name != provider:
            record["outcome"] = "provider_not_configured"
            raise PaymentProviderNotFound(f"This shop takes no payments through {provider!r}.")
        try:
            report = await gateway.read_notification(body, headers)
        except NotificationRefused as exc:
            log.warning("a %s notification was refused: %s", provider, exc)
            raise NotificationNotVerified(f"The notification was refused: {exc}.") from exc
        except DependencyUnavailable:
            record.update(verified=True, outcome="gateway_unavailable")
            raise
        record.update(
            verified=True, payment_id=report.reference[:64], gateway_status=report.gateway_status
        )
        outcome, payment = await apply_report(db=db, products=products, report=report, now=now)
        record["outcome"] = outcome
        if payment is not None:
            record["order_id"] = payment.order_id
        if outcome in _REFUSED:
            raise NotificationMismatch(
                "The notification reports an amount or currency the shop did not ask for."
            )
        return outcome
    finally:
        await _store(db, record)


async def _store(db: Database, record: dict[str, Any]) -> None:
    async def store() -> None:
        async with db.write() as conn:
            await conn.execute(insert(payment_notifications).values(**record))

    await retrying(store)


async def list_notifications(
    *, db: Database, order_id: str | None, limit: int, offset: int
) -> tuple[list[Any], int]:
    query = select(payment_notifications)
    count = select(func.count()).select_from(payment_notifications)
    if order_id is not None:
        query = query.where(payment_notifications.c.order_id == order_id)
        count = count.where(payment_notifications.c.order_id == order_id)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                query.order_by(payment_notifications.c.id.desc()).limit(limit).offset(offset)
            )
        ).all()
        total = (await conn.execute(count)).scalar_one()
    return list(rows), total


async def check_pending_payments(
    *,
    db: Database,
    products: ProductsApi,
    gateway: Gateway,
    now: datetime,
    interval: timedelta,
    batch_size: int = 20,
) -> int:
    """Ask the gateway about open payments due a check and apply its answers as a
    notification would be; returns how many changed something. Rows are claimed by
    pushing ``check_after`` one interval ahead (``SKIP LOCKED``), which is also when an
    unchanged payment is asked again."""
    due = (
        select(payments.c.id, payments.c.gateway_id, payments.c.order_id)
        .where(payments.c.status.in_(OPEN), payments.c.check_after <= now)
        .order_by(payments.c.check_after)
        .limit(batch_size)
    )
    rows = await claim_with_lease(db, due, table=payments, lease={"check_after": now + interval})
    changed = 0
    for row in rows:
        try:
            report = await gateway.status(reference=row.id, gateway_id=row.gateway_id)
            outcome, _ = await apply_report(db=db, products=products, report=report, now=now)
        except DependencyUnavailable as exc:
            log.warning("status of payment %s not known yet: %s", row.id, exc)
            continue
        if outcome not in ("pending", "duplicate", "amount_mismatch"):
            log.info("payment %s: %s", row.id, outcome, extra={"order_id": row.order_id})
            changed += 1
    return changed + await finish_paid_orders(db=db, products=products, now=now)
