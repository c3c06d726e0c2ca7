"""The cart: product ids and quantities in the session, priced afresh on every view.

Prices and stock always come from the Product-Service at the moment of showing, never
from the session. A signed-in shopper's cart is also saved by the Order-Service, so it
follows them to another phone; when someone logs in, the cart they filled anonymously
joins the one saved for their account.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from pasar_web.api import ProductsApi
from pasar_web.models import Product
from pasar_web.session import MAX_CART_LINES, MAX_QUANTITY


@dataclass(frozen=True)
class CartLine:
    product_id: str
    quantity: int
    product: Product | None  # None: the product no longer exists

    @property
    def sellable(self) -> bool:
        return self.product is not None and self.product.active

    @property
    def available(self) -> int:
        return self.product.stock if self.product is not None and self.product.active else 0

    @property
    def short(self) -> bool:
        """Fewer in stock than the shopper wants (the line shows a warning)."""
        return self.sellable and self.quantity > self.available

    @property
    def line_total(self) -> int:
        return self.product.price * self.quantity if self.product is not None else 0


@dataclass(frozen=True)
class PricedCart:
    lines: list[CartLine]

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def total(self) -> int:
        return sum(line.line_total for line in self.lines if line.sellable)

    @property
    def currency(self) -> str:
        return next((line.product.currency for line in self.lines if line.product), "IDR")

    @property
    def orderable(self) -> bool:
        return bool(self.lines) and all(line.sellable and not line.short for line in self.lines)

    @property
    def needs_fixing(self) -> bool:
        return any(line.short or not line.sellable for line in self.lines)


async def price(products: ProductsApi, cart: Mapping[str, int]) -> PricedCart:
    """Each line with its product as the catalogue has it now (one read per line, at once)."""
    found = await asyncio.gather(*(products.get(product_id) for product_id in cart))
    return PricedCart(
        [
            CartLine(product_id, quantity, hit[0] if hit is not None else None)
            for (product_id, quantity), hit in zip(cart.items(), found, strict=True)
        ]
    )


def clamp(quantity: int) -> int:
    return max(1, min(MAX_QUANTITY, quantity))


def add(cart: Mapping[str, int], product_id: str, quantity: int) -> dict[str, int] | None:
    """The cart with ``quantity`` more of the product; None when it has no room for a new line."""
    updated = dict(cart)
    if product_id not in updated and len(updated) >= MAX_CART_LINES:
        return None
    updated[product_id] = clamp(updated.get(product_id, 0) + quantity)
    return updated


def merge(saved: Mapping[str, int], anonymous: Mapping[str, int]) -> dict[str, int]:
    """The account's saved cart joined by the one filled before logging in.

    Lines of both are kept; for a product in both, the quantity just chosen wins (it is
    the shopper's latest intent, and adding the two would double an old choice).
    """
    chosen = {pid: clamp(qty) for pid, qty in list(anonymous.items())[:MAX_CART_LINES]}
    older = [pid for pid in saved if pid not in chosen]
    # Past the line limit, what was just chosen stays and the oldest saved lines go.
    room = MAX_CART_LINES - len(chosen)
    older = older[len(older) - room :] if room > 0 else []
    return {**{pid: clamp(saved[pid]) for pid in older}, **chosen}


def after_shortage(cart: Mapping[str, int], available: Mapping[str, int]) -> dict[str, int]:
    """The cart corrected to what is in stock: lines cut to what is left, or dropped."""
    fixed: dict[str, int] = {}
    for product_id, quantity in cart.items():
        left = available.get(product_id, quantity)
        if left > 0:
            fixed[product_id] = min(quantity, left)
    return fixed


def without(cart: Mapping[str, int], ordered: Mapping[str, int]) -> dict[str, int]:
    """The cart once ``ordered`` has been placed (what was added meanwhile stays)."""
    left: dict[str, int] = {}
    for product_id, quantity in cart.items():
        remaining = quantity - ordered.get(product_id, 0)
        if remaining > 0:
            left[product_id] = remaining
    return left
