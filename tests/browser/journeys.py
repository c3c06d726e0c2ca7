"""Steps a person takes in the shop, shared by the browser tests and `make screenshots`.

Every step finds things the way a person does: by their visible label or role, in
Indonesian (the shop's default language).
"""

from __future__ import annotations

import re
import secrets

from playwright.sync_api import Page, expect
from testdata import PASSWORD

ADDRESS = {
    "Nomor telepon": "+62 811 2222 333",
    "Alamat": "Jl. Melati No. 5, RT 02/RW 03",
    "Kota": "Bandung",
    "Kode pos": "40115",
}


def register(page: Page, base: str, name: str = "Siti Rahma") -> str:
    email = f"siti-{secrets.token_hex(4)}@example.com"
    page.goto(base + "/")
    page.get_by_role("link", name="Daftar").click()
    page.get_by_label("Nama lengkap").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Kata sandi").fill(PASSWORD)
    page.get_by_role("button", name="Buat akun").click()
    expect(page.get_by_role("status").first).to_contain_text(
        f"Selamat datang di toko kami, {name}!"
    )
    return email


def log_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Kata sandi").fill(password)
    page.locator("main").get_by_role("button", name="Masuk").click()
    expect(page.get_by_role("button", name="Keluar")).to_be_visible()


def add_to_cart(page: Page, base: str, product_name: str, quantity: int = 1) -> None:
    page.goto(base + "/?q=" + product_name.split()[0])
    page.get_by_role("link", name=product_name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(product_name)
    page.get_by_label("Jumlah").fill(str(quantity))
    page.get_by_role("button", name="Tambah ke Keranjang").click()
    expect(page).to_have_url(re.compile(r"/cart$"))


def check_out(page: Page, *, fill_address: bool = True) -> str:
    """From the cart to a placed order; the order's id."""
    page.get_by_role("link", name="Checkout").click()
    if fill_address:
        for label, value in ADDRESS.items():
            page.get_by_label(label, exact=True).fill(value)
    return place_order(page)


def place_order(page: Page) -> str:
    """Confirm the checkout page as it is; the placed order's id."""
    page.get_by_role("button", name=re.compile(r"^Buat pesanan")).click()
    expect(page).to_have_url(re.compile(r"/orders/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[-1]
