"""What the services answer, as typed objects (the storefront reads, never stores them).

Unknown fields are ignored, so a service may grow its answers without breaking pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ImageUrls(_Answer):
    thumbnail: str
    card: str
    full: str


class ProductImage(_Answer):
    id: str
    position: int
    main: bool
    width: int
    height: int
    urls: ImageUrls


class Product(_Answer):
    id: str
    sku: str
    name: str
    description: str
    price: int
    currency: str
    stock: int
    category: str
    image_url: str | None = None
    # Uploaded pictures, the main one first; the category tile stands in without any.
    images: list[ProductImage] = []
    active: bool
    created_at: datetime
    updated_at: datetime


class ProductPage(_Answer):
    items: list[Product]
    total: int
    limit: int
    offset: int
    # The query these results are for, when q matched nothing and a near spelling did.
    corrected_q: str | None = None


class Category(_Answer):
    name: str
    product_count: int


class CategoryCount(_Answer):
    name: str
    count: int


class PriceBand(_Answer):
    """Prices from ``min`` up to, not including, ``max`` (None: no upper end)."""

    min: int
    max: int | None
    count: int


class Facets(_Answer):
    """How the products matching a search spread over categories and price bands."""

    total: int
    corrected_q: str | None = None
    categories: list[CategoryCount]
    price_bands: list[PriceBand]


class Suggestion(_Answer):
    id: str
    name: str


class StockAdjustment(_Answer):
    id: str
    delta: int
    reason: str
    by: str | None = None
    at: datetime


class StockAdjustmentPage(_Answer):
    items: list[StockAdjustment]
    total: int
    limit: int
    offset: int


Role = Literal["customer", "admin"]
Language = Literal["id", "en"]


class User(_Answer):
    id: str
    email: str
    full_name: str
    phone: str | None = None
    address: str | None = None
    role: Role
    active: bool = True
    created_at: datetime
    # Older users services do not send these: assume nothing is asked of the shopper.
    email_verified: bool = True
    order_emails: bool = True
    language: Language = "id"


class UserPage(_Answer):
    items: list[User]
    total: int
    limit: int
    offset: int


class Notification(_Answer):
    id: str
    type: str
    order_id: str | None = None
    status: str | None = None
    message: str
    read: bool
    created_at: datetime


class NotificationPage(_Answer):
    items: list[Notification]
    total: int
    limit: int
    offset: int


class TokenSet(_Answer):
    access_token: str
    expires_in: int
    refresh_token: str | None = None


OrderStatus = Literal["pending_payment", "processing", "shipped", "completed", "cancelled"]
ORDER_STATUSES: tuple[OrderStatus, ...] = (
    "pending_payment",
    "processing",
    "shipped",
    "completed",
    "cancelled",
)
# The status machine as the Order-Service enforces it; pages only offer these moves.
TRANSITIONS: dict[str, tuple[OrderStatus, ...]] = {
    "pending_payment": ("processing", "cancelled"),
    "processing": ("shipped", "cancelled"),
    "shipped": ("completed",),
    "completed": (),
    "cancelled": (),
}
CANCELLABLE = frozenset({"pending_payment", "processing"})


class Address(_Answer):
    recipient: str
    line1: str
    city: str
    postal_code: str
    country: str
    phone: str


class Payment(_Answer):
    """A payment at the shop's gateway (Midtrans, Xendit) and how the customer pays it."""

    provider: str
    status: str
    amount: int
    currency: str
    redirect_url: str | None = None
    qr_string: str | None = None
    va_number: str | None = None
    expires_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.status in ("creating", "pending")


class OrderLine(_Answer):
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: int
    line_total: int


class StatusEntry(_Answer):
    status: OrderStatus
    at: datetime
    by: str
    note: str | None = None


class Order(_Answer):
    id: str
    user_id: str
    status: OrderStatus
    items: list[OrderLine]
    total: int
    currency: str
    shipping_address: Address
    note: str | None = None
    created_at: datetime
    updated_at: datetime
    status_history: list[StatusEntry]

    @property
    def cancellable(self) -> bool:
        return self.status in CANCELLABLE

    @property
    def next_statuses(self) -> tuple[OrderStatus, ...]:
        return TRANSITIONS.get(self.status, ())


class OrderPage(_Answer):
    items: list[Order]
    total: int
    limit: int
    offset: int


class OrderStats(_Answer):
    by_status: dict[str, int]
    orders: int
    revenue: int
    currency: str


class SavedCartLine(_Answer):
    product_id: str
    quantity: int


class SavedCart(_Answer):
    items: list[SavedCartLine]
    updated_at: datetime | None = None
