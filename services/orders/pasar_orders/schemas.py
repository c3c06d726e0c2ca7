"""Request and response bodies, split by use. Request bodies refuse unknown fields, so a
client cannot slip in ``unit_price``, ``user_id``, ``status`` or ``total``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
)

from pasar_kit.ids import IdText
from pasar_kit.pagination import Page
from pasar_orders.status import OrderStatus


def _text(max_length: int, min_length: int = 1) -> Any:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


# The largest amount of money the API deals in, as the catalogue's highest price: the
# Product-Service will not hold a reservation worth more, so no order total passes it.
# It keeps totals far inside the BIGINT columns, and exact in a client that reads JSON
# numbers as doubles (integers are exact up to 2^53, about 9 * 10^15).
MAX_ORDER_TOTAL = 10**15


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The kit's id rule, checked here, so a bad product id is our own 422 on the field and
# never reaches the Product-Service.
ProductIdIn = IdText


class OrderLineIn(_Request):
    product_id: ProductIdIn
    # strict: 2.5 and "2" are refused rather than coerced.
    quantity: Annotated[int, Field(strict=True, ge=1, le=1000)]


class ShippingAddress(_Request):
    recipient: Annotated[str, _text(100)]
    line1: Annotated[str, _text(200)]
    city: Annotated[str, _text(100)]
    postal_code: Annotated[str, _text(20)]
    country: Annotated[str, _text(56, min_length=2)]
    phone: Annotated[str, _text(32, min_length=3)]


class OrderCreate(_Request):
    items: Annotated[list[OrderLineIn], Field(min_length=1, max_length=100)]
    shipping_address: ShippingAddress
    note: Annotated[str, _text(500, min_length=0)] | None = None


class StatusChange(_Request):
    status: OrderStatus
    note: Annotated[str, _text(500, min_length=0)] | None = None


# ASCII digits only: ``str.isdigit`` also takes Arabic-Indic or fullwidth digits, which
# ``int`` reads as 0-9, so a number no card network issues passed the Luhn check.
_CARD_DIGITS = re.compile(r"[0-9]{12,19}")
_CVC_DIGITS = re.compile(r"[0-9]{3,4}")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class PaymentIn(_Request):
    # SecretStr so the number never shows up in a repr or a log line.
    card_number: SecretStr
    expiry: Annotated[str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])/[0-9]{2}$")]
    cvc: Annotated[SecretStr, Field(min_length=3, max_length=4)]

    @field_validator("card_number")
    @classmethod
    def _card_number(cls, value: SecretStr) -> SecretStr:
        digits = value.get_secret_value().replace(" ", "")
        if _CARD_DIGITS.fullmatch(digits) is None or not _luhn_ok(digits):
            raise ValueError("not a valid card number")
        return SecretStr(digits)

    @field_validator("cvc")
    @classmethod
    def _cvc(cls, value: SecretStr) -> SecretStr:
        if _CVC_DIGITS.fullmatch(value.get_secret_value()) is None:
            raise ValueError("the CVC is 3 or 4 digits")
        return value


class PaymentStart(_Request):
    """Paying through a gateway (midtrans, xendit): nothing to send, the gateway's page
    asks the customer how to pay."""


class OrderLinePublic(BaseModel):
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: int
    line_total: int


class StatusEntryPublic(BaseModel):
    status: OrderStatus
    at: datetime
    by: str
    note: str | None


class OrderPublic(BaseModel):
    id: str
    user_id: str
    status: OrderStatus
    items: list[OrderLinePublic]
    total: int
    currency: str
    shipping_address: ShippingAddress
    note: str | None
    created_at: datetime
    updated_at: datetime
    status_history: list[StatusEntryPublic]


class PaymentPublic(BaseModel):
    """A payment at a gateway, with what the customer needs to pay it."""

    provider: str
    status: str = Field(description="creating, pending, settled, expired, failed, abandoned")
    amount: int
    currency: str
    redirect_url: str | None = Field(description="The gateway's page where the customer pays")
    qr_string: str | None = Field(description="A QRIS payload, when the gateway gave one")
    va_number: str | None = Field(description="A virtual account number, once chosen")
    expires_at: datetime | None


class OrderPaymentPublic(OrderPublic):
    """The order, and with a gateway provider the payment made for it."""

    payment: PaymentPublic | None = None


class PaymentNotificationPublic(BaseModel):
    id: int
    provider: str
    received_at: datetime
    verified: bool
    outcome: str
    payment_id: str | None
    order_id: str | None
    gateway_status: str | None
    body: str = Field(description="The notification as received (cut at 16,384 characters)")


class PaymentNotificationList(Page[PaymentNotificationPublic]):
    """A page of stored gateway notifications, newest first."""


class NotificationAnswer(BaseModel):
    outcome: str


class OrderList(Page[OrderPublic]):
    """A page of orders."""


class StatusCounts(BaseModel):
    pending_payment: int
    processing: int
    shipped: int
    completed: int
    cancelled: int


class OrderStats(BaseModel):
    by_status: StatusCounts
    orders: int = Field(description="Orders created in the window, whatever their status")
    revenue: int = Field(description="Sum of the totals of those orders not cancelled")
    currency: str


MAX_CART_LINES = 50


class CartLineIn(_Request):
    product_id: ProductIdIn
    quantity: Annotated[int, Field(strict=True, ge=1, le=1000)]


class CartIn(_Request):
    """The whole cart; it replaces the saved one (``[]`` empties it)."""

    items: Annotated[list[CartLineIn], Field(max_length=MAX_CART_LINES)]

    @field_validator("items")
    @classmethod
    def _one_line_per_product(cls, items: list[CartLineIn]) -> list[CartLineIn]:
        seen: set[str] = set()
        for line in items:
            if line.product_id in seen:
                raise ValueError(
                    f"product {line.product_id!r} is on more than one line; "
                    "give each product one line with its whole quantity"
                )
            seen.add(line.product_id)
        return items


class CartLinePublic(BaseModel):
    product_id: str
    quantity: int


class CartPublic(BaseModel):
    items: list[CartLinePublic]
    updated_at: datetime | None = Field(description="When it was last saved; null if never")
