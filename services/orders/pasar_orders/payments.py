"""Paying an order, behind a provider interface small enough for a real gateway.

A provider charges a card for an order and refunds it. It must be idempotent per
``order_id`` (real gateways take an idempotency key for this), so paying twice,
concurrently or after a crash, charges once. Cancelled orders that were paid are
refunded by the settlement job, with their stock.

Paying is three idempotent steps: charge, record the payment on the order, then commit
the reservation and move the order to ``processing``; calling again finishes a
half-done payment. Only one request at a time charges an order (it holds a lease on
the order row while the gateway answers), so concurrent payments make one charge and
all answer its outcome. Card data is passed through, never stored or logged.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select, update

from pasar_kit.db import Database, utcnow
from pasar_orders.problems import (
    InvalidTransition,
    NotOrderOwner,
    OrderNotFound,
    PaymentDeclined,
    PaymentInProgress,
    PaymentsDisabled,
)
from pasar_orders.queries import get_order
from pasar_orders.remote import ProductsApi
from pasar_orders.schemas import OrderPublic
from pasar_orders.status import INTERNAL_STATUSES, OrderStatus
from pasar_orders.tables import orders
from pasar_orders.tracking import Actor, change_status


@dataclass(frozen=True)
class Card:
    number: str
    expiry: str  # MM/YY
    cvc: str

    def __repr__(self) -> str:  # never print the number
        return f"Card(****{self.number[-4:]})"

    def expired(self, *, today: date) -> bool:
        """A card is valid through the last day of its expiry month."""
        month, year = self.expiry.split("/")
        return (2000 + int(year), int(month)) < (today.year, today.month)


@dataclass(frozen=True)
class PaymentResult:
    approved: bool
    reference: str | None = None
    decline_reason: str | None = None


class PaymentProvider(Protocol):
    """A gateway. Both calls are idempotent per order; a gateway that cannot be reached
    raises ``DependencyUnavailable`` (503, and the settlement job retries refunds)."""

    async def charge(
        self, *, order_id: str, amount: int, currency: str, card: Card
    ) -> PaymentResult: ...

    async def refund(self, *, order_id: str, reference: str) -> None: ...


class TestCardProvider:
    """The documented test cards: 4242424242424242 approves, anything else declines."""

    __test__ = False  # not a pytest class, despite the name

    APPROVE = "4242424242424242"
    DECLINE = "4000000000000002"

    def __init__(self) -> None:
        # The gateway's own idempotency: one charge per order.
        self._charges: dict[str, PaymentResult] = {}
        self.refunded: set[str] = set()
        self._lock = asyncio.Lock()

    async def charge(
        self, *, order_id: str, amount: int, currency: str, card: Card
    ) -> PaymentResult:
        async with self._lock:
            if order_id in self._charges:
                return self._charges[order_id]
            if card.number != self.APPROVE:
                reason = "card_declined" if card.number == self.DECLINE else "card_not_accepted"
                return PaymentResult(approved=False, decline_reason=reason)
            if card.expired(today=utcnow().date()):
                return PaymentResult(approved=False, decline_reason="expired_card")
            result = PaymentResult(approved=True, reference=f"test_{uuid.uuid4().hex[:24]}")
            self._charges[order_id] = result
            return result

    async def refund(self, *, order_id: str, reference: str) -> None:
        charge = self._charges.get(order_id)
        if charge is not None and charge.reference == reference:
            self.refunded.add(order_id)


# A charge claimed by a request that then died is taken over after this: longer than a
# gateway call can last (the HTTP client gives up well before).
CHARGE_LEASE = timedelta(seconds=60)
# How long a payment waits for a concurrent payment of the same order to finish before
# answering 409 payment_in_progress; the test gateway answers in microseconds.
WAIT_FOR_CHARGE_SECONDS = 10.0
_POLL_SECONDS = 0.05
# Paid orders that a repeated payment answers with as they now are (200, no new charge).
# A paid order that was cancelled has been refunded: paying it is 409 invalid_transition.
PAID = frozenset({OrderStatus.PROCESSING, OrderStatus.SHIPPED, OrderStatus.COMPLETED})


async def payable(*, db: Database, order_id: str, payer: Actor) -> Any:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(
                    orders.c.id,
                    orders.c.user_id,
                    orders.c.status,
                    orders.c.total,
                    orders.c.currency,
                    orders.c.paid_at,
                    # For a gateway payment: its expiry and the customer's name and phone.
                    orders.c.created_at,
                    orders.c.shipping_address,
                ).where(orders.c.id == order_id, orders.c.status.not_in(INTERNAL_STATUSES))
            )
        ).first()
    if row is None or (row.user_id != payer.id and not payer.is_admin):
        raise OrderNotFound(f"There is no order {order_id!r}.")
    if row.user_id != payer.id:
        raise NotOrderOwner("Only the customer who placed the order can pay it.")
    return row


async def claim_charge(*, db: Database, order_id: str, until: datetime, now: datetime) -> bool:
    """Take the right to charge this order's card; False while another payment holds it."""
    async with db.write() as conn:
        claimed = await conn.execute(
            update(orders)
            .where(
                orders.c.id == order_id,
                orders.c.status == OrderStatus.PENDING_PAYMENT.value,
                orders.c.paid_at.is_(None),
                or_(
                    orders.c.charge_claimed_until.is_(None),
                    orders.c.charge_claimed_until <= now,
                ),
            )
            .values(charge_claimed_until=until)
        )
    return claimed.rowcount == 1


async def let_go(*, db: Database, order_id: str, until: datetime) -> None:
    """Give the claim back (declined, gateway down), unless it was taken over meanwhile."""
    async with db.write() as conn:
        await conn.execute(
            update(orders)
            .where(orders.c.id == order_id, orders.c.charge_claimed_until == until)
            .values(charge_claimed_until=None)
        )


async def _charge(
    *,
    db: Database,
    provider: PaymentProvider,
    order_id: str,
    amount: int,
    currency: str,
    card: Card,
    claim: datetime,
    now: datetime,
) -> None:
    """Charge the card under this request's claim and record the payment on the order."""
    try:
        result = await provider.charge(
            order_id=order_id, amount=amount, currency=currency, card=card
        )
    except Exception:
        await let_go(db=db, order_id=order_id, until=claim)
        raise
    if not result.approved:
        # A concurrent payment waiting with another card may try it now.
        await let_go(db=db, order_id=order_id, until=claim)
        raise PaymentDeclined(
            "The card was declined; the order can still be paid.",
            reason=result.decline_reason,
        )
    paid = {
        "paid_at": now,
        "payment_reference": result.reference,
        "charge_claimed_until": None,
        "updated_at": now,
    }
    unpaid = (orders.c.id == order_id) & orders.c.paid_at.is_(None)
    async with db.write() as conn:
        recorded = await conn.execute(
            update(orders)
            .where(unpaid, orders.c.status == OrderStatus.PENDING_PAYMENT.value)
            .values(**paid)
        )
        # Cancelled (or expired) while the card was being charged: the money goes
        # back through the settlement job, which refunds what a cancelled order holds.
        too_late = (
            recorded.rowcount == 0
            and (
                await conn.execute(
                    update(orders)
                    .where(unpaid, orders.c.status == OrderStatus.CANCELLED.value)
                    .values(**paid, release_due_at=now)
                )
            ).rowcount
        )
    if too_late:
        raise InvalidTransition(
            "The order was cancelled while it was being paid; the payment will be refunded.",
            current_status=OrderStatus.CANCELLED.value,
            requested_status=OrderStatus.PROCESSING.value,
        )


async def pay_order(
    *,
    db: Database,
    products: ProductsApi,
    provider: PaymentProvider | None,
    order_id: str,
    payer: Actor,
    card: Card,
    now: datetime,
    wait_seconds: float = WAIT_FOR_CHARGE_SECONDS,
) -> OrderPublic:
    """Pay the order, or answer the payment already made: one charge whatever the races.

    Of concurrent payments of one order, the one that claims the charge calls the
    gateway; the others wait for its outcome and then answer the paid order (200), or,
    if it was declined, try their own card. A payment after the order is paid answers
    the order as it is, with no new charge.
    """
    if provider is None:
        raise PaymentsDisabled("Orders are not paid online in this shop.")
    paid = await _charge_once(
        db=db,
        provider=provider,
        order_id=order_id,
        payer=payer,
        card=card,
        now=now,
        wait_seconds=wait_seconds,
    )
    if paid is not None:
        return paid
    try:
        # Commits the reservation, then the conditional move to processing.
        return await change_status(
            db=db,
            products=products,
            order_id=order_id,
            target=OrderStatus.PROCESSING,
            actor=payer,
            note="Payment received",
            now=now,
        )
    except InvalidTransition:
        # A concurrent payment of the same charge moved it on first: answer what it did.
        row = await payable(db=db, order_id=order_id, payer=payer)
        if row.paid_at is not None and row.status in PAID:
            return await _as_paid(db=db, order_id=order_id, payer=payer)
        raise


async def _charge_once(
    *,
    db: Database,
    provider: PaymentProvider,
    order_id: str,
    payer: Actor,
    card: Card,
    now: datetime,
    wait_seconds: float,
) -> OrderPublic | None:
    """See that the order is charged exactly once: by this request if it claims the
    charge, else by the one that did (waited for). Returns the order when it was already
    paid and moved on, None when it is charged and still to be moved to processing."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + wait_seconds
    claim = now + CHARGE_LEASE
    while True:
        row = await payable(db=db, order_id=order_id, payer=payer)
        if row.paid_at is not None and row.status in PAID:
            return await _as_paid(db=db, order_id=order_id, payer=payer)
        if row.status != OrderStatus.PENDING_PAYMENT:
            raise InvalidTransition(
                f"An order in {row.status!r} cannot be paid.",
                current_status=row.status,
                requested_status=OrderStatus.PROCESSING.value,
            )
        if row.paid_at is not None:
            return None  # charged, not yet moved on: finish without charging again
        if await claim_charge(db=db, order_id=order_id, until=claim, now=now):
            await _charge(
                db=db,
                provider=provider,
                order_id=order_id,
                amount=row.total,
                currency=row.currency,
                card=card,
                claim=claim,
                now=now,
            )
            return None
        if loop.time() >= give_up_at:
            raise PaymentInProgress(
                "Another payment of this order is still being processed; try again shortly.",
                headers={"Retry-After": "1"},
            )
        await asyncio.sleep(_POLL_SECONDS)


async def _as_paid(*, db: Database, order_id: str, payer: Actor) -> OrderPublic:
    return await get_order(db=db, order_id=order_id, viewer_id=payer.id, viewer_is_admin=False)
