"""A service that is down costs only what needs it: a banner, never a 500 or a JSON dump."""

from __future__ import annotations

import re

from test_orders import _place
from web_support import Shop, text


async def test_the_catalogue_browses_while_orders_is_down(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Tahan Banting", stock=5)
    async with web_shop.browser() as browser:
        await browser.register()
        await web_shop.orders.stop()
        try:
            catalogue = await browser.get("/")
            product = await browser.get(f"/products/{kopi['id']}")
            added = await browser.add_to_cart(kopi["id"], 1)
            orders = await browser.get("/orders")
            checkout = await browser.get("/checkout")
        finally:
            await web_shop.orders.start()
    assert catalogue.status_code == 200 and "Kopi Tahan Banting" in catalogue.text
    assert product.status_code == 200
    # The cart still works on this device, and says it could not be saved to the account.
    assert "could not be saved to your account" in text(added.text)
    assert orders.status_code == 503
    assert "Ordering is not available right now." in text(orders.text)
    assert checkout.status_code == 200  # the address form is there; placing will retry
    for page in (orders, added, checkout):
        assert page.headers["content-type"].startswith("text/html")
        assert "Traceback" not in page.text and '"code"' not in page.text


async def test_placing_while_orders_is_down_keeps_the_cart_and_says_so(web_shop: Shop) -> None:
    from testdata import ADDRESS

    kopi = await web_shop.product(name="Kopi Nanti Saja", stock=5)
    async with web_shop.browser() as browser:
        await browser.register()
        await browser.add_to_cart(kopi["id"], 1)
        page = await browser.get("/checkout")
        form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page.text))
        await web_shop.orders.stop()
        try:
            refused = await browser.post("/checkout", {**form, **ADDRESS})
        finally:
            await web_shop.orders.start()
        assert refused.status_code == 503
        assert "Nothing was charged or reserved" in text(refused.text)
        assert form["idempotency_key"] in refused.text  # a retry is the same attempt
        retried = await browser.post("/checkout", {**form, **ADDRESS})
    assert "Thank you! Your order is placed." in text(retried.text)
    assert await web_shop.stock(kopi["id"]) == 4


async def test_products_down_shows_a_banner_not_an_error(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Sementara", stock=5)
    async with web_shop.browser() as browser:
        await browser.register()
        order_id = await _place(browser, kopi["id"])
        await browser.add_to_cart(kopi["id"], 1)
        await web_shop.products.stop()
        try:
            catalogue = await browser.get("/")
            product = await browser.get(f"/products/{kopi['id']}")
            cart = await browser.get("/cart")
            order = await browser.get(f"/orders/{order_id}")
        finally:
            await web_shop.products.start()
    assert catalogue.status_code == 503
    assert "The catalogue is not available right now." in text(catalogue.text)
    assert 'role="search"' in catalogue.text  # the rest of the page is there
    assert product.status_code == 503 and cart.status_code == 503
    assert order.status_code == 200  # an order is the Order-Service's business
    assert "Kopi Sementara" in text(order.text)


async def test_users_down_keeps_a_signed_in_shopper_browsing(web_shop: Shop) -> None:
    await web_shop.product(name="Kopi Tanpa Users", stock=5)
    async with web_shop.browser() as browser, web_shop.browser() as visitor:
        await browser.register()
        form = await visitor.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        await web_shop.users.stop()
        try:
            catalogue = await browser.get("/")
            login = await visitor.post(
                "/login", {"csrf_token": token, "email": "a@b.co", "password": "x" * 8}
            )
        finally:
            await web_shop.users.start()
    assert catalogue.status_code == 200 and "Kopi Tanpa Users" in catalogue.text
    assert "Account features are not available right now." in text(catalogue.text)
    assert login.status_code == 503
    assert "Account features are not available right now." in text(login.text)


async def test_nothing_the_services_say_leaks_as_json(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        await browser.register()
        missing = await browser.get("/orders/not-an-order")
        method = await browser.client.put("/cart")
        unknown = await browser.get("/no/such/page")
    for page, status in ((missing, 404), (method, 405), (unknown, 404)):
        assert page.status_code == status
        assert page.headers["content-type"].startswith("text/html")
        assert "application/problem+json" not in page.headers["content-type"]
