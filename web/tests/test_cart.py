"""The cart: kept in the session as ids and quantities, priced afresh on every view."""

from __future__ import annotations

import re

from web_support import Shop, by_testid, text


async def test_add_change_and_remove_with_totals(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Gayo", price=85_000, stock=10)
    teh = await web_shop.product(name="Teh Melati", price=12_500, stock=10)
    async with web_shop.browser() as browser:
        added = await browser.add_to_cart(kopi["id"], 2)
        assert "Kopi Gayo is in your cart." in text(added.text)
        await browser.add_to_cart(teh["id"], 1)
        await browser.add_to_cart(kopi["id"], 1)  # the same product again adds up
        cart = await browser.get("/cart")
        assert by_testid(cart.text, "cart-count") == "4 items"
        assert by_testid(cart.text, "cart-total") == "Rp 267,500"  # 3 x 85,000 + 12,500
        changed = await browser.submit("/cart", f"/cart/items/{kopi['id']}", {"quantity": "1"})
        assert by_testid(changed.text, "cart-total") == "Rp 97,500"
        removed = await browser.submit("/cart", f"/cart/items/{teh['id']}/remove")
        assert "Teh Melati" not in text(removed.text)
        assert by_testid(removed.text, "cart-total") == "Rp 85,000"
        emptied = await browser.submit("/cart", f"/cart/items/{kopi['id']}", {"quantity": "0"})
        assert "Your cart is empty." in text(emptied.text)


async def test_prices_come_from_the_catalogue_not_the_session(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Naik Harga", price=50_000)
    async with web_shop.browser() as browser:
        await browser.add_to_cart(kopi["id"], 2)
        await web_shop.patch_product(kopi["id"], {"price": 60_000})
        cart = await browser.get("/cart")
    assert by_testid(cart.text, "cart-total") == "Rp 120,000"


async def test_a_line_shows_when_stock_is_short_and_can_be_cut(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Langka", stock=5)
    habis = await web_shop.product(name="Teh Habis", stock=2)
    async with web_shop.browser() as browser:
        await browser.add_to_cart(kopi["id"], 4)
        await browser.add_to_cart(habis["id"], 2)
        await web_shop.adjust(kopi["id"], -3)  # 2 left
        await web_shop.adjust(habis["id"], -2)  # none left
        cart = await browser.get("/cart")
        shown = text(cart.text)
        assert "Only 2 left — you want 4." in shown
        assert "Sold out for now." in shown
        assert 'href="/checkout"' not in cart.text  # no checkout until it is fixed
        fixed = await browser.submit("/cart", "/cart/fix")
    assert "Your cart now holds only what is in stock." in text(fixed.text)
    assert "Teh Habis" not in text(fixed.text)
    assert re.search(r'id="qty-1"[^>]*value="2"', fixed.text)
    assert 'href="/checkout"' in fixed.text


async def test_adding_more_than_there_is_takes_what_there_is(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Sedikit", stock=3)
    sold_out = await web_shop.product(name="Kopi Kosong", stock=0)
    async with web_shop.browser() as browser:
        page = await browser.add_to_cart(kopi["id"], 5)
        assert "Only 3 of Kopi Sedikit are in stock" in text(page.text)
        assert by_testid(page.text, "cart-count") == "3 items"
        again = await browser.add_to_cart(kopi["id"], 1)
        assert "already holds all 3" in text(again.text)
        # A sold-out product's page offers no form; a stale or hand-made post is refused.
        response = await browser.submit(
            "/login", "/cart/items", {"product_id": sold_out["id"], "quantity": "1"}
        )
    assert "Kopi Kosong is out of stock." in text(response.text)


async def test_archived_and_unknown_products_cannot_be_added(web_shop: Shop) -> None:
    gone = await web_shop.product(name="Kopi Lama")
    await web_shop.patch_product(gone["id"], {"active": False})
    async with web_shop.browser() as browser:
        refused = await browser.submit(
            "/login", "/cart/items", {"product_id": gone["id"], "quantity": "1", "next": "/"}
        )
        assert "This product is no longer sold." in text(refused.text)
        nonsense = await browser.submit(
            "/login", "/cart/items", {"product_id": "nope", "quantity": "-2", "next": "/"}
        )
        assert "Choose how many you want" in text(nonsense.text)
        cart = await browser.get("/cart")
    assert "Your cart is empty." in text(cart.text)
