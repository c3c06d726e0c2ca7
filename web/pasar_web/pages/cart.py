"""The cart page and its forms: add, change a quantity, remove, take what is in stock."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from pasar_kit.problems import DependencyUnavailable
from pasar_web import cart
from pasar_web.cart import PricedCart
from pasar_web.i18n import gettext as _
from pasar_web.pages.catalogue import tile
from pasar_web.session import MAX_CART_LINES
from pasar_web.shell import Page, PageDep, safe_next

router = APIRouter()

ProductId = Annotated[str, Path(max_length=64)]


async def keep(page: Page, updated: dict[str, int]) -> None:
    """Put ``updated`` in the session and, for a signed-in shopper, in their saved cart."""
    page.session.set_cart(updated)
    if not page.signed_in:
        return
    try:
        await page.services.orders.save_cart(page.auth, page.session.cart)
    except DependencyUnavailable:
        page.session.flash(
            _(
                "Your cart is kept on this device, but could not be saved to your account "
                "right now."
            ),
            "warning",
        )


def quantity_from(value: object, default: int = 1) -> int | None:
    if not isinstance(value, str) or not value.strip().isdigit() or len(value.strip()) > 6:
        return None if value not in (None, "") else default
    return int(value.strip())


@router.get("/cart", name="cart")
async def show_cart(page: PageDep) -> Response:
    empty = PricedCart([])
    priced = await page.optional(
        "products", cart.price(page.services.products, page.session.cart), empty
    )
    return await page.render(
        "cart.html",
        status=503 if "products" in page.degraded else 200,
        priced=priced,
        tile=tile,
    )


@router.post("/cart/items", name="cart_add")
async def add_to_cart(page: PageDep) -> Response:
    form = await page.form()
    product_id = str(form.get("product_id", ""))[:64]
    quantity = quantity_from(form.get("quantity"))
    back = safe_next(str(form.get("next", "")), "/cart")
    if not product_id or quantity is None or quantity < 1:
        return page.redirect(back, _("Choose how many you want (1 or more)."), "error")
    found = await page.services.products.get(product_id)
    if found is None or not found[0].active:
        return page.redirect(back, _("This product is no longer sold."), "error")
    product = found[0]
    if product.stock <= 0:
        return page.redirect(back, _("%(name)s is out of stock.", name=product.name), "error")
    room = product.stock - page.session.cart.get(product_id, 0)
    if room <= 0:
        message = _(
            "Your cart already holds all %(count)s of %(name)s in stock.",
            count=product.stock,
            name=product.name,
        )
        return page.redirect("/cart", message, "warning")
    updated = cart.add(page.session.cart, product_id, min(quantity, room))
    if updated is None:
        return page.redirect(
            "/cart", _("Your cart is full (%(count)s products).", count=MAX_CART_LINES), "error"
        )
    await keep(page, updated)
    if quantity > room:
        message = _(
            "Only %(count)s of %(name)s are in stock; your cart now holds all of them.",
            count=product.stock,
            name=product.name,
        )
        return page.redirect("/cart", message, "warning")
    return page.redirect("/cart", _("%(name)s is in your cart.", name=product.name))


@router.post("/cart/items/{product_id}", name="cart_update")
async def update_line(page: PageDep, product_id: ProductId) -> Response:
    form = await page.form()
    quantity = quantity_from(form.get("quantity"))
    if quantity is None:
        return page.redirect("/cart", _("Choose how many you want (1 or more)."), "error")
    updated = dict(page.session.cart)
    if product_id not in updated:
        return page.redirect("/cart")
    if quantity == 0:
        del updated[product_id]
    else:
        updated[product_id] = cart.clamp(quantity)
    await keep(page, updated)
    return page.redirect("/cart", _("Your cart is updated."))


@router.post("/cart/items/{product_id}/remove", name="cart_remove")
async def remove_line(page: PageDep, product_id: ProductId) -> Response:
    await page.form()
    updated = {pid: qty for pid, qty in page.session.cart.items() if pid != product_id}
    await keep(page, updated)
    return page.redirect("/cart", _("The product is removed from your cart."))


@router.post("/cart/fix", name="cart_fix")
async def take_what_is_there(page: PageDep) -> Response:
    """Cut every line to the stock there is, and drop what is no longer sold."""
    await page.form()
    priced = await cart.price(page.services.products, page.session.cart)
    available = {line.product_id: line.available for line in priced.lines}
    await keep(page, cart.after_shortage(page.session.cart, available))
    return page.redirect("/cart", _("Your cart now holds only what is in stock."))
