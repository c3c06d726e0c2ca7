"""The interface of an asynchronous payment gateway (Midtrans, Xendit), and what passes
through it.

A gateway payment is made for an order and completes later: the customer pays on the
gateway's page (QRIS, a bank virtual account, an e-wallet, a convenience-store code),
and the gateway tells the shop by a notification, or answers a status query. Nothing a
notification says is believed before it is verified (a signature, a token, a status
query); ``online_payments`` then checks the amount against the one it asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Protocol

from pasar_kit.problems import DependencyUnavailable


class GatewayState(StrEnum):
    """A gateway's many statuses, reduced to what the shop acts on."""

    PENDING = "pending"  # waiting for the customer
    SETTLED = "settled"  # the money is taken
    EXPIRED = "expired"  # never paid in time
    FAILED = "failed"  # denied, cancelled or failed at the gateway
    REFUNDED = "refunded"  # given back (after our refund)
    UNKNOWN = "unknown"  # the gateway has no such payment


@dataclass(frozen=True)
class ChargeLine:
    sku: str
    name: str
    quantity: int
    unit_price: int


@dataclass(frozen=True)
class Customer:
    name: str
    phone: str


@dataclass(frozen=True)
class Charge:
    """What the shop asks a gateway for: ``amount`` in the currency's smallest unit as
    the gateways count it (whole rupiah for IDR), equal to the sum of the lines."""

    reference: str  # unique per attempt: the gateway's order id / external id
    order_id: str
    amount: int
    currency: str
    lines: tuple[ChargeLine, ...]
    customer: Customer
    expires_in_seconds: int


@dataclass(frozen=True)
class Instructions:
    """What the customer needs to pay: a hosted page, and whatever the gateway told."""

    gateway_id: str | None
    redirect_url: str | None
    expires_at: datetime | None = None
    qr_string: str | None = None
    va_number: str | None = None


@dataclass(frozen=True)
class Report:
    """A payment's state as the gateway says it (by a verified notification or a query)."""

    reference: str
    state: GatewayState
    gateway_status: str  # the gateway's own word, kept for the operator
    amount: int | None = None
    currency: str | None = None
    gateway_id: str | None = None
    va_number: str | None = None
    qr_string: str | None = None


class NotificationRefused(Exception):
    """A notification that cannot be believed: bad signature or token, or unreadable."""


class Gateway(Protocol):
    """One asynchronous gateway. A gateway that cannot be reached, or answers with an
    error, raises ``DependencyUnavailable`` (503 to a customer; the jobs retry)."""

    name: str

    async def create(self, charge: Charge) -> Instructions: ...

    async def read_notification(self, body: bytes, headers: Mapping[str, str]) -> Report:
        """Verify a notification and say what it reports; ``NotificationRefused`` if it
        cannot be believed."""
        ...

    async def status(self, *, reference: str, gateway_id: str | None) -> Report: ...

    async def refund(self, *, order_id: str, reference: str) -> None:
        """Give back the whole payment known to the gateway as ``reference`` (the id
        stored on the order when it was paid); idempotent."""
        ...

    async def close(self) -> None: ...


def whole_amount(value: object) -> int | None:
    """An amount as a gateway writes it ("92000.00", 92000) as an integer, or None if it
    is not a whole number: a fraction of a rupiah is never what the shop asked for."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def refused(gateway: str, status: int, body: object) -> DependencyUnavailable:
    """A gateway's error answer: the call did not do what was asked; retry later."""
    message = body.get("error_messages") or body.get("message") if isinstance(body, dict) else None
    return DependencyUnavailable(
        f"The payment gateway ({gateway}) refused the call: HTTP {status} {message or ''}".strip()
    )
