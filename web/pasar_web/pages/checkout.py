"""Checkout: the address, a last look at the order, and placing it exactly once.

The checkout form carries its own ``Idempotency-Key`` and the lines it showed, so a
double click, a reload or a retry after a lost answer all place the same one order.
When stock ran out meanwhile, the shopper goes back to the cart, corrected, with the
names of the products and what is left of them.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from pasar_kit.problems import DependencyUnavailable
from pasar_web import cart
from pasar_web.api import ApiProblem
from pasar_web.auth import ShopperAuth
from pasar_web.cart import PricedCart
from pasar_web.errors import friendly
from pasar_web.forms import Fields
from pasar_web.i18n import gettext as _
from pasar_web.models import Address, Order
from pasar_web.pages.cart import keep
from pasar_web.session import MAX_CART_LINES, MAX_QUANTITY
from pasar_web.shell import Page, PageDep

router = APIRouter()

ADDRESS_FIELDS: dict[str, tuple[int, int]] = {
    # name: (min length, max length), as the Order-Service accepts them
    "recipient": (1, 100),
    "phone": (3, 32),
    "line1": (1, 200),
    "city": (1, 100),
    "postal_code": (1, 20),
    "country": (2, 56),
}
_KEY = re.compile(r"^[A-Za-z0-9-]{16,64}$")
_LINE = re.compile(r"^([A-Za-z0-9._:-]{1,64})\*([0-9]{1,4})$")
# How long a double click's second request waits for the first one's answer.
IN_FLIGHT_WAIT_SECONDS = 10.0


def encode_lines(lines: dict[str, int]) -> str:
    return " ".join(f"{product_id}*{quantity}" for product_id, quantity in lines.items())


def decode_lines(value: str) -> dict[str, int] | None:
    lines: dict[str, int] = {}
    for part in value.split()[:MAX_CART_LINES]:
        match = _LINE.match(part)
        if match is None or match.group(1) in lines:
            return None
        quantity = int(match.group(2))
        if not 1 <= quantity <= MAX_QUANTITY:
            return None
        lines[match.group(1)] = quantity
    return lines or None


async def _last_address(page: Page, auth: ShopperAuth) -> dict[str, str]:
    """The address of the shopper's latest order; else what their profile knows."""
    recent = await page.optional("orders", page.services.orders.list(auth, limit=1), None)
    if recent is not None and recent.items:
        return recent.items[0].shipping_address.model_dump()
    account = auth.account
    return {
        "recipient": account.name,
        "phone": "",
        "line1": "",
        "city": "",
        "postal_code": "",
        "country": "ID",
    }


@router.get("/checkout", name="checkout")
async def checkout_form(page: PageDep) -> Response:
    auth = page.auth
    if not page.session.cart:
        return page.redirect("/cart")
    priced, address = await asyncio.gather(
        cart.price(page.services.products, page.session.cart), _last_address(page, auth)
    )
    if priced.needs_fixing:
        return page.redirect(
            "/cart", _("Some products in your cart changed. Please check your cart."), "warning"
        )
    return await _render(page, priced, address, {}, key=str(uuid.uuid4()), note="")


async def _render(
    page: Page,
    priced: PricedCart,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    key: str,
    note: str,
    status: int = 200,
    message: str | None = None,
) -> Response:
    lines = {line.product_id: line.quantity for line in priced.lines}
    return await page.render(
        "checkout.html",
        status=status,
        priced=priced,
        values=values,
        errors=errors,
        idempotency_key=key,
        lines=encode_lines(lines),
        note=note,
        message=message,
    )


@router.post("/checkout")
async def place(page: PageDep) -> Response:
    form = await page.form()
    auth = page.auth
    key = str(form.get("idempotency_key", ""))
    lines = decode_lines(str(form.get("lines", "")))
    if not _KEY.match(key) or lines is None:
        return page.redirect("/checkout", _("Please confirm your order again."), "warning")
    fields = Fields(form)
    address = {
        name: fields.text(name, min_length=low, max_length=high)
        for name, (low, high) in ADDRESS_FIELDS.items()
    }
    note = fields.text("note", required=False, max_length=500)
    priced = await cart.price(page.services.products, lines)
    if not fields.ok:
        return await _render(page, priced, address, fields.errors, key=key, note=note, status=400)
    body: dict[str, Any] = {
        "items": [{"product_id": pid, "quantity": qty} for pid, qty in lines.items()],
        "shipping_address": address,
    }
    if note:
        body["note"] = note
    try:
        order = await _place_once(page, auth, body, key)
    except ApiProblem as problem:
        return await _refused(page, priced, problem, address, fields, key, note)
    except DependencyUnavailable:
        page.degraded.add("orders")
        message = _(
            "We could not place your order right now. Nothing was charged or reserved; "
            "please try again in a moment."
        )
        return await _render(
            page, priced, address, {}, key=key, note=note, status=503, message=message
        )
    await keep(page, cart.without(page.session.cart, lines))
    if order.status == "pending_payment":
        return page.redirect(
            f"/orders/{order.id}/pay", _("Your order is placed. Please pay to complete it.")
        )
    return page.redirect(f"/orders/{order.id}", _("Thank you! Your order is placed."))


async def _place_once(page: Page, auth: ShopperAuth, body: dict[str, Any], key: str) -> Order:
    """Place the order; a second click waits for the first one's answer and gets it too."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + IN_FLIGHT_WAIT_SECONDS
    while True:
        try:
            return await page.services.orders.place(auth, body, key=key)
        except ApiProblem as problem:
            if problem.code != "idempotency_key_in_flight" or loop.time() > deadline:
                raise
        await asyncio.sleep(0.25)


async def _refused(
    page: Page,
    priced: PricedCart,
    problem: ApiProblem,
    address: dict[str, str],
    fields: Fields,
    key: str,
    note: str,
) -> Response:
    if problem.code == "out_of_stock":
        return await _short(page, priced, problem)
    if problem.code == "unknown_product":
        return page.redirect("/cart", friendly(problem), "error")
    if problem.code == "idempotency_key_reused":
        # The shopper changed something after a first try: a new attempt, a new key.
        return await _render(
            page,
            priced,
            address,
            {},
            key=str(uuid.uuid4()),
            note=note,
            status=409,
            message=friendly(problem),
        )
    if problem.status == 422:
        fields.add_service_errors(problem.field_errors())
    return await _render(
        page,
        priced,
        address,
        fields.errors,
        key=key,
        note=note,
        status=problem.status,
        message=friendly(problem),
    )


async def _short(page: Page, priced: PricedCart, problem: ApiProblem) -> Response:
    """Back to the cart, cut to what is left, naming each product that ran short."""
    shortages = problem.body.get("shortages") or []
    available = {
        str(s.get("product_id")): max(0, int(s.get("available", 0)))
        for s in shortages
        if isinstance(s, dict)
    }
    names = {line.product_id: line.product.name for line in priced.lines if line.product}
    for product_id, left in available.items():
        name = names.get(product_id, _("A product"))
        if left == 0:
            page.session.flash(
                _("%(name)s is sold out and was taken out of your cart.", name=name), "error"
            )
        else:
            page.session.flash(
                _(
                    "Only %(count)s of %(name)s are left; your cart now has %(count)s.",
                    count=left,
                    name=name,
                ),
                "error",
            )
    await keep(page, cart.after_shortage(page.session.cart, available))
    return page.redirect("/cart")


def address_lines(address: Address) -> list[str]:
    return [
        address.recipient,
        address.line1,
        f"{address.postal_code} {address.city}",
        address.country,
        address.phone,
    ]
