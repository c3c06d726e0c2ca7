"""Request and response bodies, split by use. Request bodies refuse unknown fields, so a
client cannot slip in ``unit_price``, ``user_id``, ``status`` or ``total``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from pasar_orders.status import OrderStatus


def _text(max_length: int, min_length: int = 1) -> Any:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderLineIn(_Request):
    product_id: Annotated[str, _text(64)]
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
        if not (12 <= len(digits) <= 19 and digits.isdigit() and _luhn_ok(digits)):
            raise ValueError("not a valid card number")
        return SecretStr(digits)

    @field_validator("cvc")
    @classmethod
    def _cvc(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().isdigit():
            raise ValueError("the CVC is 3 or 4 digits")
        return value


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


class OrderList(BaseModel):
    items: list[OrderPublic]
    total: int
    limit: int
    offset: int
