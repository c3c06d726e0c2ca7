"""Checkout: the address, placing the order exactly once, and stock that ran out."""

from __future__ import annotations

import asyncio
import re

from gateways.midtrans import SERVER_KEY, MidtransStandIn
from testdata import ADDRESS
from web_support import Shop, by_testid, text

from pasar_kit.testing import serve


def _checkout_form(page: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page))
    return {**fields, **ADDRESS}


async def test_checkout_places_the_order_and_empties_the_cart(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Checkout", price=85_000, stock=10)
    async with web_shop.browser() as browser:
        email = await browser.register()
        await browser.add_to_cart(kopi["id"], 2)
        page = await browser.get("/checkout")
        assert page.status_code == 200
        assert "2 \u00d7 Kopi Checkout" in text(page.text)  # 2 times
        placed = await browser.post("/checkout", {**_checkout_form(page.text), "note": "Pagi"})
        shown = text(placed.text)
        assert "Thank you! Your order is placed." in shown
        assert "Processing" in shown and "Rp 170,000" in shown
        assert re.search(r"Order #[0-9A-F]{8}", shown)
        cart = await browser.get("/cart")
        assert "Your cart is empty." in text(cart.text)
    assert await web_shop.stock(kopi["id"]) == 8
    orders = await web_shop.orders_of(await web_shop.token(email))
    assert len(orders) == 1 and orders[0]["note"] == "Pagi"
    assert orders[0]["shipping_address"] == ADDRESS


async def test_a_double_submit_or_a_reload_places_one_order(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Sekali", stock=10)
    async with web_shop.browser() as browser:
        email = await browser.register()
        await browser.add_to_cart(kopi["id"], 1)
        page = await browser.get("/checkout")
        form = _checkout_form(page.text)
        # Two clicks at once, then the same form sent again later (back and resubmit).
        first, second = await asyncio.gather(
            browser.post("/checkout", form, follow=False),
            browser.post("/checkout", form, follow=False),
        )
        third = await browser.post("/checkout", form, follow=False)
    locations = {first.headers["location"], second.headers["location"], third.headers["location"]}
    assert len(locations) == 1 and next(iter(locations)).startswith("/orders/")
    assert len(await web_shop.orders_of(await web_shop.token(email))) == 1
    assert await web_shop.stock(kopi["id"]) == 9


async def test_out_of_stock_sends_the_shopper_back_to_a_corrected_cart(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Rebutan", stock=5)
    teh = await web_shop.product(name="Teh Habis Duluan", stock=2)
    async with web_shop.browser() as browser:
        await browser.register()
        await browser.add_to_cart(kopi["id"], 4)
        await browser.add_to_cart(teh["id"], 2)
        page = await browser.get("/checkout")
        # Meanwhile someone else buys most of it.
        await web_shop.adjust(kopi["id"], -3)
        await web_shop.adjust(teh["id"], -2)
        back = await browser.post("/checkout", _checkout_form(page.text))
    assert str(back.url).endswith("/cart")
    shown = text(back.text)
    assert "Only 2 of Kopi Rebutan are left; your cart now has 2." in shown
    assert "Teh Habis Duluan is sold out and was taken out of your cart." in shown
    assert by_testid(back.text, "cart-count") == "2 items"
    assert await web_shop.stock(kopi["id"]) == 2  # nothing was held


async def test_the_address_is_checked_and_the_last_one_remembered(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Alamat", stock=10)
    async with web_shop.browser() as browser:
        await browser.register(name="Rina")
        await browser.add_to_cart(kopi["id"], 1)
        page = await browser.get("/checkout")
        assert 'value="Rina"' in page.text  # the profile's name, before any order
        form = {**_checkout_form(page.text), "city": "", "phone": "1"}
        refused = await browser.post("/checkout", form)
        assert refused.status_code == 400
        assert "Please fill this in." in text(refused.text)
        assert "At least 3 characters." in text(refused.text)
        assert 'value="Jl. Merdeka No. 1"' in refused.text  # what was typed stays
        await browser.post("/checkout", _checkout_form(page.text))
        await browser.add_to_cart(kopi["id"], 1)
        again = await browser.get("/checkout")
    assert 'value="Jl. Merdeka No. 1"' in again.text and 'value="40111"' in again.text


async def test_checkout_needs_a_login_and_a_cart(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        anonymous = await browser.client.get("/checkout")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?next=/checkout"
        await browser.register()
        empty = await browser.client.get("/checkout")
    assert empty.status_code == 303 and empty.headers["location"] == "/cart"


async def test_a_tampered_checkout_form_is_refused(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Jujur", price=85_000, stock=10)
    async with web_shop.browser() as browser:
        email = await browser.register()
        await browser.add_to_cart(kopi["id"], 1)
        page = await browser.get("/checkout")
        form = _checkout_form(page.text)
        bad_lines = await browser.post("/checkout", {**form, "lines": "x*0 ; drop"})
        bad_key = await browser.post("/checkout", {**form, "idempotency_key": "<script>"})
        # A price cannot be slipped in: the form has none, and extra fields are ignored.
        await browser.post("/checkout", {**form, "price": "1", "unit_price": "1"})
    assert "Please confirm your order again." in text(bad_lines.text)
    assert "Please confirm your order again." in text(bad_key.text)
    orders = await web_shop.orders_of(await web_shop.token(email))
    assert len(orders) == 1 and orders[0]["total"] == 85_000


async def test_payment_with_test_cards(web_shop_factory) -> None:  # type: ignore[no-untyped-def]
    async with web_shop_factory(orders_overrides={"payment_provider": "test"}) as shop:
        kopi = await shop.product(name="Kopi Bayar", price=50_000, stock=5)
        async with shop.browser() as browser:
            await browser.register()
            await browser.add_to_cart(kopi["id"], 1)
            page = await browser.get("/checkout")
            pay_page = await browser.post("/checkout", _checkout_form(page.text))
            assert "/pay" in str(pay_page.url)
            assert "Your order is placed. Please pay to complete it." in text(pay_page.text)
            pay_url = str(pay_page.url).split("shop.test")[1]
            declined = await browser.submit(
                pay_url,
                pay_url,
                {"card_number": "4000 0000 0000 0002", "expiry": "12/30", "cvc": "123"},
            )
            assert declined.status_code == 402
            assert "The card was declined. Try another card." in text(declined.text)
            paid = await browser.submit(
                pay_url,
                pay_url,
                {"card_number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"},
            )
        shown = text(paid.text)
        assert "Thank you! Your payment is received." in shown
        steps = re.findall(r'class="step done[^"]*step-(\w+)"', paid.text)
        assert steps == ["placed", "paid", "processing"]


async def test_too_many_unpaid_orders_is_said_and_the_cart_kept(web_shop_factory) -> None:  # type: ignore[no-untyped-def]
    overrides = {"payment_provider": "test", "max_unpaid_orders": 1}
    async with web_shop_factory(orders_overrides=overrides) as shop:
        kopi = await shop.product(name="Kopi Tunggu", price=50_000, stock=5)
        async with shop.browser() as browser:
            await browser.register()
            await browser.add_to_cart(kopi["id"], 1)
            page = await browser.get("/checkout")
            first = await browser.post("/checkout", _checkout_form(page.text))
            assert "/pay" in str(first.url)
            await browser.add_to_cart(kopi["id"], 2)
            page = await browser.get("/checkout")
            refused = await browser.post("/checkout", _checkout_form(page.text))
            assert "You already have orders waiting for payment." in text(refused.text)
            cart = await browser.get("/cart")
            assert "Kopi Tunggu" in text(cart.text)
        assert await shop.stock(kopi["id"]) == 4  # only the first order holds stock


async def test_payment_through_a_gateway(web_shop_factory) -> None:  # type: ignore[no-untyped-def]
    midtrans = MidtransStandIn()
    async with (
        serve(midtrans.app) as gateway_url,
        web_shop_factory(
            orders_overrides={
                "payment_provider": "midtrans",
                "midtrans_server_key": SERVER_KEY,
                "midtrans_snap_url": gateway_url,
                "midtrans_api_url": gateway_url,
            }
        ) as shop,
    ):
        midtrans.notify_url = f"{shop.orders.url}/payments/notifications/midtrans"
        kopi = await shop.product(name="Kopi Gerbang", price=92_000, stock=5)
        async with shop.browser() as browser:
            await browser.register()
            await browser.add_to_cart(kopi["id"], 1)
            page = await browser.get("/checkout")
            pay_page = await browser.post("/checkout", _checkout_form(page.text))
            pay_url = str(pay_page.url).split("shop.test")[1]
            assert 'name="card_number"' not in pay_page.text
            assert 'name="method" value="gateway"' in pay_page.text

            started = await browser.submit(pay_url, pay_url, {"method": "gateway"})
            transaction = midtrans.only()
            assert transaction.gross_amount == 92_000
            shown = text(started.text)
            assert "Pay on the payment page" in shown and "Check again" in shown
            assert f'href="{gateway_url}/snap/v4/redirection/' in started.text

            midtrans.choose_virtual_account(transaction.order_id)
            await midtrans.notify(transaction.order_id)
            again = await browser.get(pay_url)
            va_number = transaction.va_numbers[0]["va_number"]
            assert by_testid(again.text, "va-number") == va_number

            midtrans.pay(transaction.order_id)
            await midtrans.notify(transaction.order_id)
            moved_on = await browser.client.get(pay_url)  # "check again"
            assert moved_on.status_code == 303
            paid = await browser.get(moved_on.headers["location"])
        steps = re.findall(r'class="step done[^"]*step-(\w+)"', paid.text)
        assert steps == ["placed", "paid", "processing"]
