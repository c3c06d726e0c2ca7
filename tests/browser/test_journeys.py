"""The two journeys the shop exists for, in a real browser against `pasar up`."""

from __future__ import annotations

import re
import uuid

import httpx
from journeys import ADDRESS, add_to_cart, check_out, log_in, place_order, register
from playwright.sync_api import Page, expect
from shoplib import ADMIN_EMAIL, ADMIN_PASSWORD, RunningShop
from shoplib import register as api_register
from testdata import ADDRESS as API_ADDRESS
from testdata import PASSWORD


def test_a_customer_shops_orders_follows_and_cancels(shop: RunningShop, page: Page) -> None:
    base = shop.url("web")
    register(page, base)

    # Search from the header, then narrow down with the filters; the URL keeps them all.
    # The box offers product names as the shopper types (a list box, hence a combobox).
    page.get_by_role("combobox", name="Cari produk").fill("kopi")
    expect(page.locator("#suggestions option").first).to_have_attribute(
        "value", re.compile("^Kopi ")
    )
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hasil pencarian “kopi”")
    page.get_by_role("navigation", name="Kategori").get_by_role(
        "link", name=re.compile("^Makanan & Minuman")
    ).click()
    page.get_by_label("Hanya stok tersedia").check()
    page.get_by_role("button", name="Terapkan").click()
    expect(page).to_have_url(re.compile(r"q=kopi.*category=Makanan.*in_stock=1"))
    cards = page.locator(".card-title")  # best match first: coffee in the name
    expect(cards).to_have_count(3)
    expect(cards.nth(0)).to_contain_text("Kopi ")
    expect(cards.nth(1)).to_contain_text("Kopi ")
    expect(cards.nth(2)).to_have_text("Gula Aren Cair 500 ml")
    page.go_back()  # the back button walks back through the searches
    expect(page).not_to_have_url(re.compile("in_stock"))
    expect(page).to_have_url(re.compile("category=Makanan"))

    add_to_cart(page, base, "Kopi Arabika Gayo 250 g", 2)
    add_to_cart(page, base, "Teh Melati Tubruk 50 g", 1)
    expect(page.locator("[data-testid=cart-line]")).to_have_count(2)
    expect(page.get_by_test_id("cart-total")).to_have_text("Rp\u00a0182.500")  # 2 x 85.000 + 12.500
    expect(page.get_by_test_id("cart-count")).to_contain_text("3")

    order_id = check_out(page)
    expect(page.get_by_role("status").first).to_contain_text("Pesanan Anda sudah dibuat")
    timeline = page.locator(".timeline")
    expect(timeline.locator(".step.done")).to_have_count(2)  # placed, processing
    expect(timeline.locator("[aria-current=step]")).to_contain_text("Diproses")
    expect(page.locator("table.lines")).to_contain_text("Kopi Arabika Gayo 250 g")

    # The notification arrives through the outbox; the header counts it.
    for _ in range(50):
        page.goto(base + "/")
        if page.get_by_test_id("unread-count").count():
            break
        page.wait_for_timeout(200)
    expect(page.get_by_test_id("unread-count")).to_contain_text("1")
    page.get_by_role("link", name=re.compile("Notifikasi")).click()
    number = "#" + order_id.replace("-", "")[:8].upper()
    expect(page.get_by_test_id("notification").first).to_contain_text(f"Pesanan {number}")
    page.get_by_role("button", name="Tandai sudah dibaca").first.click()
    expect(page.get_by_test_id("unread-count")).to_have_count(0)

    # A second order: the address is remembered; then the customer cancels it.
    add_to_cart(page, base, "Sapu Ijuk", 1)
    page.get_by_role("link", name="Checkout").click()
    expect(page.get_by_label("Alamat", exact=True)).to_have_value(ADDRESS["Alamat"])
    second = place_order(page)
    assert second != order_id
    page.get_by_role("button", name="Batalkan pesanan").click()
    expect(page.locator(".title-row .badge")).to_have_text("Dibatalkan")
    expect(page.get_by_role("button", name="Batalkan pesanan")).to_have_count(0)

    page.get_by_role("navigation", name="Akun Anda").get_by_role(
        "link", name="Pesanan Saya"
    ).click()
    expect(page.locator("[data-testid=order-row]")).to_have_count(2)


def test_the_owner_runs_the_shop(shop: RunningShop, page: Page) -> None:
    base = shop.url("web")
    # A customer has placed an order (through the API, as any client may).
    email = f"budi-{uuid.uuid4().hex[:6]}@example.com"
    token = api_register(shop.url("users"), email)
    product = httpx.get(f"{shop.url('products')}/products", params={"q": "Sapu Ijuk"}).json()
    placed = httpx.post(
        f"{shop.url('orders')}/orders",
        json={
            "items": [{"product_id": product["items"][0]["id"], "quantity": 1}],
            "shipping_address": API_ADDRESS,
        },
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )
    assert placed.status_code == 201, placed.text
    order_number = "#" + placed.json()["id"].replace("-", "")[:8].upper()

    log_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_test_id("orders-today")).not_to_have_text("0")

    # A new product, then a delivery of five more.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Produk").click()
    page.get_by_role("link", name="Tambah produk").click()
    name = f"Kopi Luwak {uuid.uuid4().hex[:4]}"
    page.get_by_label("Nama", exact=True).fill(name)
    page.get_by_label("SKU").fill(f"LUWAK-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Kategori").fill("Makanan & Minuman")
    page.get_by_label("Harga (Rp)").fill("250.000")
    page.get_by_label("Stok awal").fill("10")
    page.get_by_role("button", name="Tambahkan produk").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.get_by_test_id("admin-stock")).to_have_text("10")
    page.get_by_label("Perubahan").fill("+5")
    page.get_by_label("Keterangan").fill("Kiriman pemasok")
    page.get_by_role("button", name="Sesuaikan stok").click()
    expect(page.get_by_test_id("admin-stock")).to_have_text("15")
    expect(page.get_by_test_id("stock-history")).to_contain_text("Kiriman pemasok")

    # The customer's order: ship it with a tracking note, then complete it.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Pesanan").click()
    page.get_by_label("Pelanggan").fill(email)
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=order_number).click()
    expect(page.get_by_role("button", name="Tandai selesai")).to_have_count(0)
    page.get_by_label("Catatan resi").fill("JNE 1234567890")
    page.get_by_role("button", name="Tandai sudah dikirim").click()
    expect(page.locator(".title-row .badge")).to_have_text("Dikirim")
    page.get_by_role("button", name="Tandai selesai").click()
    expect(page.locator(".title-row .badge")).to_have_text("Selesai")
    expect(page.locator(".timeline")).to_contain_text("JNE 1234567890")
    expect(page.get_by_role("button", name=re.compile("^Tandai"))).to_have_count(0)

    # The customer misbehaves: deactivate them.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Pengguna").click()
    page.get_by_role("searchbox", name="Cari", exact=True).fill(email)
    page.get_by_role("button", name="Cari", exact=True).last.click()
    row = page.get_by_test_id("user-row")
    expect(row).to_have_count(1)
    row.get_by_role("button", name=re.compile("^Nonaktifkan")).click()
    expect(page.get_by_test_id("user-row")).to_contain_text("Nonaktif")
    refused = httpx.post(
        f"{shop.url('users')}/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
    )
    assert refused.status_code == 400


def test_the_shop_on_a_360_px_phone(shop: RunningShop, phone: Page) -> None:
    base = shop.url("web")
    phone.goto(base + "/")
    # The filters start folded on a phone; nothing is wider than the screen.
    expect(phone.locator("details.filter-panel")).not_to_have_attribute("open", "")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    register(phone, base, name="Rina Phone")
    add_to_cart(phone, base, "Kopi Toraja Kalosi 250 g", 1)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    check_out(phone)
    expect(phone.locator(".title-row .badge")).to_have_text("Diproses")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
