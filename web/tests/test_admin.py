"""The shop owner's pages: dashboard, products (with edit conflicts), stock, orders, users."""

from __future__ import annotations

import re

from test_orders import _place
from testdata import PASSWORD
from web_support import ADMIN_EMAIL, Shop, by_testid, text


async def _admin(shop: Shop, browser) -> None:  # type: ignore[no-untyped-def]
    await shop.admin_token()  # makes the admin account
    await browser.login(ADMIN_EMAIL, PASSWORD)


async def test_customers_and_visitors_cannot_open_admin_pages(web_shop: Shop) -> None:
    async with web_shop.browser() as visitor:
        gate = await visitor.client.get("/admin/products")
        assert gate.status_code == 303 and gate.headers["location"] == "/login?next=/admin/products"
        await visitor.register()
        for path in ("/admin", "/admin/products", "/admin/orders", "/admin/users"):
            page = await visitor.get(path)
            assert page.status_code == 403, path
            assert "This page is for the shop's admins" in text(page.text)
        posted = await visitor.submit("/", "/admin/users/someone", {"action": "make_admin"})
    assert posted.status_code == 403
    assert 'href="/admin"' not in posted.text  # no admin link for a customer


async def test_dashboard_counts_today_and_low_stock(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Dasbor", price=85_000, stock=10)
    low = await web_shop.product(name="Teh Hampir Habis", stock=2)
    async with web_shop.browser() as customer:
        await customer.register()
        await _place(customer, kopi["id"], 2)  # 170,000
        cancelled = await _place(customer, kopi["id"], 1)
        await customer.submit(f"/orders/{cancelled}", f"/orders/{cancelled}/cancel")
    async with web_shop.browser() as browser:
        await _admin(web_shop, browser)
        page = await browser.get("/admin")
    assert page.status_code == 200
    assert by_testid(page.text, "orders-today") == "2"
    assert by_testid(page.text, "revenue-today") == "Rp 170,000"  # cancelled not counted
    assert by_testid(page.text, "count-processing") == "1"
    assert by_testid(page.text, "count-cancelled") == "1"
    assert by_testid(page.text, "count-shipped") == "0"
    shown = text(page.text)
    assert (
        "Teh Hampir Habis" in shown
        and "Kopi Dasbor" not in shown.split("Running low")[1].split("Latest orders")[0]
    )
    assert f'href="/admin/products/{low["id"]}"' in page.text


async def test_create_edit_archive_and_restore_a_product(web_shop: Shop) -> None:
    async with web_shop.browser() as browser:
        await _admin(web_shop, browser)
        bad = await browser.submit(
            "/admin/products/new",
            "/admin/products/new",
            {"name": "", "sku": "X", "category": "Kopi", "price": "murah", "stock": "-1"},
        )
        assert bad.status_code == 400
        shown = text(bad.text)
        assert "Please fill this in." in shown and "Enter a whole number." in shown
        created = await browser.submit(
            "/admin/products/new",
            "/admin/products/new",
            {
                "name": "Kopi Luwak 100 g",
                "sku": "luwak-100",
                "category": "Makanan & Minuman",
                "price": "250.000",
                "stock": "12",
                "description": "Langka.",
            },
        )
        assert "Kopi Luwak 100 g is added." in text(created.text)
        product_path = str(created.url).split("shop.test")[1]
        product_id = product_path.rsplit("/", 1)[-1]
        assert by_testid(created.text, "admin-stock") == "12"
        edited = await browser.submit(
            product_path,
            product_path,
            {**_form_values(created.text), "price": "275000"},
        )
        assert "Kopi Luwak 100 g is saved." in text(edited.text)
        archived = await browser.submit(product_path, f"{product_path}/archive")
        assert "archived" in text(archived.text)
        async with web_shop.browser() as shopper:
            gone = await shopper.get(f"/products/{product_id}")
            assert "no longer sold" in text(gone.text)
        restored = await browser.submit(product_path, f"{product_path}/restore")
        assert "on sale again" in text(restored.text)
        listing = await browser.get("/admin/products", q="luwak")
    assert "Kopi Luwak 100 g" in text(listing.text) and "LUWAK-100" in text(listing.text)
    product = (await web_shop.http.get(f"{web_shop.products.url}/products/{product_id}")).json()
    assert product["price"] == 275_000 and product["active"] is True


async def test_a_stale_edit_shows_what_the_other_admin_changed(web_shop: Shop) -> None:
    product = await web_shop.product(name="Kopi Rebutan Admin", price=100_000)
    path = f"/admin/products/{product['id']}"
    async with web_shop.browser() as browser:
        await _admin(web_shop, browser)
        mine = await browser.get(path)
        form = _form_values(mine.text)
        # Another admin saves first.
        await web_shop.patch_product(product["id"], {"price": 120_000, "name": "Kopi Baru"})
        stale = await browser.post(path, {**form, "description": "Deskripsi saya"})
        assert stale.status_code == 409
        shown = text(stale.text)
        assert "Someone else saved this product while you were editing it." in shown
        changes = by_testid(stale.text, "their-changes")
        assert "Name Kopi Rebutan Admin Kopi Baru" in changes
        assert "Price Rp 100,000 Rp 120,000" in changes
        assert "Deskripsi saya" in stale.text  # the admin's own edit is still in the form
        # Saving again applies the admin's change on top of the other admin's.
        again = await browser.post(path, _form_values(stale.text))
    assert "is saved" in text(again.text)
    now = (await web_shop.http.get(f"{web_shop.products.url}/products/{product['id']}")).json()
    assert now["description"] == "Deskripsi saya"
    assert now["price"] == 120_000 and now["name"] == "Kopi Baru"


async def test_stock_adjustments_and_their_history(web_shop: Shop) -> None:
    product = await web_shop.product(name="Kopi Stok", stock=5)
    path = f"/admin/products/{product['id']}"
    async with web_shop.browser() as browser:
        await _admin(web_shop, browser)
        restocked = await browser.submit(
            path, f"{path}/stock", {"delta": "+10", "reason": "Kiriman pemasok"}
        )
        assert "Stock is now 15." in text(restocked.text)
        too_much = await browser.submit(path, f"{path}/stock", {"delta": "-99", "reason": "Rusak"})
        assert too_much.status_code == 400
        assert "not that much stock" in text(too_much.text)
        zero = await browser.submit(path, f"{path}/stock", {"delta": "0", "reason": "x"})
        assert "Enter how many units come in" in text(zero.text)
        page = await browser.get(path)
    history = by_testid(page.text, "stock-history")
    assert history.index("Kiriman pemasok") < history.index("initial")  # newest first
    assert "+10" in history and "+5" in history
    assert await web_shop.stock(product["id"]) == 15


async def test_orders_move_through_their_statuses(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Kirim", stock=5)
    async with web_shop.browser() as customer:
        email = await customer.register(name="Dewi")
        order_id = await _place(customer, kopi["id"])
    path = f"/admin/orders/{order_id}"
    async with web_shop.browser() as browser:
        await _admin(web_shop, browser)
        listing = await browser.get("/admin/orders", status="processing", customer=email)
        assert f'href="{path}"' in listing.text
        nobody = await browser.get("/admin/orders", customer="tidak-ada@example.com")
        assert "No customer matches" in text(nobody.text)
        page = await browser.get(path)
        buttons = set(re.findall(r'name="status" value="(\w+)"', page.text))
        assert buttons == {"shipped", "cancelled"}
        shipped = await browser.submit(
            path, f"{path}/status", {"status": "shipped", "note": "JNE 123"}
        )
        assert "is now: Shipped." in text(shipped.text)
        assert set(re.findall(r'name="status" value="(\w+)"', shipped.text)) == {"completed"}
        assert "JNE 123" in text(shipped.text)
        refused = await browser.submit(path, f"{path}/status", {"status": "cancelled"})
        assert "no longer allowed" in text(refused.text)
        done = await browser.submit(path, f"{path}/status", {"status": "completed"})
    assert not re.findall(r'name="status" value="(\w+)"', done.text)
    async with web_shop.browser() as customer:
        await customer.login(email)
        mine = await customer.get(f"/orders/{order_id}")
    steps = re.findall(r'<li class="step done[^"]*step-(\w+)"', mine.text)
    assert steps == ["placed", "processing", "shipped", "completed"]
    assert "JNE 123" in text(mine.text)


async def test_orders_filtered_by_date(web_shop: Shop) -> None:
    kopi = await web_shop.product(name="Kopi Tanggal", stock=5)
    async with web_shop.browser() as customer:
        await customer.register()
        order_id = await _place(customer, kopi["id"])
    async with web_shop.browser() as browser:
        await _admin(web_shop, browser)
        today = await browser.get("/admin/orders")
        date = re.search(r'data-testid="admin-order-row"', today.text)
        assert date is not None
        from datetime import datetime, timedelta
        from zoneinfo import ZoneInfo

        local_today = datetime.now(ZoneInfo("Asia/Jakarta")).date()
        inside = await browser.get(
            "/admin/orders", **{"from": str(local_today), "to": str(local_today)}
        )
        before = await browser.get("/admin/orders", **{"to": str(local_today - timedelta(days=1))})
    assert order_id in inside.text
    assert order_id not in before.text


async def test_users_deactivate_and_the_last_admin_stays(web_shop: Shop) -> None:
    async with web_shop.browser() as customer:
        email = await customer.register(name="Joko")
    async with web_shop.browser() as browser:
        await _admin(web_shop, browser)
        found = await browser.get("/admin/users", q="joko")
        assert len(re.findall(r'data-testid="user-row"', found.text)) == 1
        user_id = re.search(r'action="/admin/users/([0-9a-f-]+)"', found.text).group(1)  # type: ignore[union-attr]
        off = await browser.submit(
            "/admin/users?q=joko",
            f"/admin/users/{user_id}",
            {"action": "deactivate", "next": "/admin/users?q=joko"},
        )
        assert "Joko is deactivated" in text(off.text)
        me = await browser.get("/admin/users", q=ADMIN_EMAIL)
        my_id = re.search(r'action="/admin/users/([0-9a-f-]+)"', me.text).group(1)  # type: ignore[union-attr]
        demote = await browser.submit(
            "/admin/users", f"/admin/users/{my_id}", {"action": "make_customer"}
        )
    assert "last active admin" in text(demote.text)
    async with web_shop.browser() as customer:
        refused = await customer.submit("/login", "/login", {"email": email, "password": PASSWORD})
    # Deactivated: the login is refused like any wrong one (no account is revealed).
    assert refused.status_code == 400
    assert "The email or password is not right." in text(refused.text)


def _form_values(page: str) -> dict[str, str]:
    """The values of the product form's inputs as the page shows them (hidden ones too)."""
    form = page.split('class="stack" data-once>', 1)[1].split("</form>", 1)[0]
    import html

    values = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', form)
    }
    for name, value in re.findall(r'<textarea[^>]*name="([a-z_]+)"[^>]*>([^<]*)</textarea>', form):
        values[name] = html.unescape(value)
    return values
