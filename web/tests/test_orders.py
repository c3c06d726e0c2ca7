"""My orders: the list, one order's timeline, cancelling; notifications and their count."""

from __future__ import annotations

import re

from testdata import ADDRESS
from web_support import Shop, by_testid, text


async def _place(browser, product_id: str, quantity: int = 1) -> str:  # type: ignore[no-untyped-def]
    await browser.add_to_cart(product_id, quantity)
    page = await browser.get("/checkout")
    form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page.text))
    placed = await browser.post("/checkout", {**form, **ADDRESS}, follow=False)
    assert placed.status_code == 303, placed.text
    return str(placed.headers["location"]).rsplit("/", 1)[-1]


async def test_orders_list_and_timeline(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Riwayat", price=85_000, stock=10)
    async with web_shop.browser() as browser:
        await browser.register()
        first = await _place(browser, kopi["id"], 1)
        second = await _place(browser, kopi["id"], 2)
        listing = await browser.get("/orders")
        rows = re.findall(r'href="/orders/([0-9a-f-]{36})"', listing.text)
        assert rows == [second, first]  # newest first
        assert text(listing.text).count("Processing") == 2
        order = await browser.get(f"/orders/{first}")
    steps = re.findall(r'<li class="step([^"]*) step-(\w+)"', order.text)
    assert [key for _, key in steps] == ["placed", "processing", "shipped", "completed"]
    assert ["done" in classes for classes, _ in steps] == [True, True, False, False]
    assert 'aria-current="step"' in order.text
    assert "Jl. Merdeka No. 1" in text(order.text)
    assert 'action="/orders/' in order.text and "/cancel" in order.text


async def test_cancel_while_allowed(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Batal", stock=5)
    async with web_shop.browser() as browser:
        await browser.register()
        order_id = await _place(browser, kopi["id"], 2)
        assert await web_shop.stock(kopi["id"]) == 3
        cancelled = await browser.submit(f"/orders/{order_id}", f"/orders/{order_id}/cancel")
        shown = text(cancelled.text)
        assert "is cancelled. Its stock goes back to the shop." in shown
        assert "/cancel" not in cancelled.text  # no second cancel button
        steps = re.findall(r'<li class="step([^"]*) step-(\w+)"', cancelled.text)
        assert [key for _, key in steps] == ["placed", "processing", "cancelled"]
        again = await browser.submit(f"/orders/{order_id}", f"/orders/{order_id}/cancel")
    assert "no longer allowed" in text(again.text)


async def test_someone_elses_order_is_not_found(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Rahasia", stock=5)
    async with web_shop.browser() as owner:
        await owner.register()
        order_id = await _place(owner, kopi["id"])
    async with web_shop.browser() as other:
        await other.register()
        page = await other.get(f"/orders/{order_id}")
        cancel = await other.submit("/orders", f"/orders/{order_id}/cancel")
    assert page.status_code == 404
    assert "Kopi Rahasia" not in page.text
    assert "could not find" in text(cancel.text)


async def test_notifications_count_list_and_read(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Kabar", stock=5)
    async with web_shop.browser() as browser:
        await browser.register()
        first = await _place(browser, kopi["id"])
        await _place(browser, kopi["id"])
        await web_shop.relay()
        home = await browser.get("/")
        assert by_testid(home.text, "unread-count") == "2 unread"
        inbox = await browser.get("/notifications")
        items = re.findall(r'data-testid="notification"', inbox.text)
        assert len(items) == 2
        number = "#" + first.replace("-", "")[:8].upper()
        assert f"Order {number} is being processed." in text(inbox.text)
        ids = re.findall(r'action="/notifications/([^/]+)/read"', inbox.text)
        read_one = await browser.submit("/notifications", f"/notifications/{ids[0]}/read")
        assert by_testid(read_one.text, "unread-count") == "1 unread"
        all_read = await browser.submit("/notifications", "/notifications/read-all")
    assert "All notifications are marked as read." in text(all_read.text)
    assert 'data-testid="unread-count"' not in all_read.text
