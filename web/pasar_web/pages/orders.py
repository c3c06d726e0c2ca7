"""A shopper's orders: the list, one order with its timeline, cancelling and paying."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from pasar_kit.problems import DependencyUnavailable
from pasar_web.api import ApiProblem
from pasar_web.errors import friendly
from pasar_web.forms import Fields
from pasar_web.i18n import gettext as _
from pasar_web.models import OrderPage
from pasar_web.shell import PageDep
from pasar_web.timeline import short_id, status_label, timeline

router = APIRouter()

OrderId = Annotated[str, Path(max_length=64)]
PAGE_SIZE = 10


@router.get("/orders", name="my_orders")
async def my_orders(
    page: PageDep, page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1
) -> Response:
    auth = page.auth
    nothing = OrderPage(items=[], total=0, limit=PAGE_SIZE, offset=0)
    orders = await page.optional(
        "orders",
        page.services.orders.list(auth, limit=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE),
        nothing,
    )
    return await page.render(
        "orders.html",
        status=503 if page.degraded else 200,
        orders=orders,
        page_number=page_number,
        pages=max(1, math.ceil(orders.total / PAGE_SIZE)),
        short_id=short_id,
        status_label=status_label,
    )


@router.get("/orders/{order_id}", name="my_order")
async def my_order(page: PageDep, order_id: OrderId) -> Response:
    auth = page.auth
    try:
        order = await page.services.orders.get(auth, order_id)
    except DependencyUnavailable:
        page.degraded.add("orders")
        return await page.render("unavailable.html", status=503)
    if order is None:
        return await page.render("not_found.html", status=404)
    return await page.render(
        "order.html",
        order=order,
        steps=timeline(order),
        short_id=short_id,
        status_label=status_label,
    )


@router.post("/orders/{order_id}/cancel", name="cancel_order")
async def cancel(page: PageDep, order_id: OrderId) -> Response:
    await page.form()
    try:
        order = await page.services.orders.cancel(page.auth, order_id)
    except ApiProblem as problem:
        return page.redirect(f"/orders/{order_id}", friendly(problem), "error")
    return page.redirect(
        f"/orders/{order.id}",
        _(
            "Order %(number)s is cancelled. Its stock goes back to the shop.",
            number=short_id(order.id),
        ),
    )


@router.get("/orders/{order_id}/pay", name="pay")
async def payment_form(page: PageDep, order_id: OrderId) -> Response:
    """The card form (test provider), or with a gateway: a button that makes the payment,
    then what the customer needs to pay it (the gateway's page, a QRIS string, a virtual
    account number) and a link to check again, which is this page."""
    order = await page.services.orders.get(page.auth, order_id)
    if order is None:
        return await page.render("not_found.html", status=404)
    if order.status != "pending_payment":
        return page.redirect(f"/orders/{order.id}")
    payment, provider = await page.services.orders.payment(page.auth, order_id)
    return await page.render(
        "pay.html",
        order=order,
        short_id=short_id,
        values={},
        errors={},
        message=None,
        provider=provider,
        payment=payment if payment is not None and payment.open else None,
    )


async def _start_at_gateway(page: PageDep, order_id: str) -> Response:
    try:
        payment = await page.services.orders.start_payment(page.auth, order_id)
    except ApiProblem as problem:
        return page.redirect(f"/orders/{order_id}", friendly(problem), "error")
    if payment is None:
        return page.redirect(f"/orders/{order_id}")
    return page.redirect(f"/orders/{order_id}/pay")


@router.post("/orders/{order_id}/pay")
async def pay(page: PageDep, order_id: OrderId) -> Response:
    form = await page.form()
    if form.get("method") == "gateway":
        return await _start_at_gateway(page, order_id)
    auth = page.auth
    fields = Fields(form)
    number = "".join(fields.text("card_number", max_length=30).split())
    expiry = fields.text("expiry", max_length=5)
    cvc = fields.text("cvc", max_length=4, min_length=3)
    if number and not number.isdigit():
        fields.errors["card_number"] = _("Enter the digits on the front of the card.")
    message = None
    if fields.ok:
        try:
            order = await page.services.orders.pay(
                auth, order_id, card_number=number, expiry=expiry, cvc=cvc
            )
        except ApiProblem as problem:
            if problem.status == 422:
                for name in problem.field_errors():
                    fields.errors.setdefault(name, _("Please check this."))
            message = friendly(problem)
        else:
            return page.redirect(f"/orders/{order.id}", _("Thank you! Your payment is received."))
    order_now = await page.services.orders.get(auth, order_id)
    if order_now is None:
        return await page.render("not_found.html", status=404)
    return await page.render(
        "pay.html",
        status=402 if message else 400,
        order=order_now,
        short_id=short_id,
        values={"expiry": expiry},
        errors=fields.errors,
        message=message,
        provider=None,
        payment=None,
    )
