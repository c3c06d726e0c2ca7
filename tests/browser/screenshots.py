"""Pictures of the shop for the README: `make screenshots` (writes docs/screenshots/).

Starts its own shop (`pasar up` on a temporary data dir), walks through it as a
customer and as the owner in Debian's Chromium, and saves what a person sees.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

from conftest import CHROMIUM, CHROMIUM_ARGS, new_context
from journeys import add_to_cart, check_out, log_in, register
from playwright.sync_api import Page, sync_playwright
from shoplib import ADMIN_EMAIL, ADMIN_PASSWORD, free_base_port, start_shop


def shoot(page: Page, out: Path, name: str, *, full: bool = False) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out / f"{name}.png"), full_page=full)
    print(f"  {out / name}.png")


def latest_mail_html(mail_dir: Path, recipient: str, subject_word: str) -> str:
    """The HTML part of the newest email to ``recipient`` whose subject has the word (the
    sender writes it within moments of the change)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml"), reverse=True):
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if message["To"] == recipient and subject_word in str(message["Subject"]):
                body = message.get_body(preferencelist=("html",))
                assert body is not None
                return str(body.get_content())
        time.sleep(0.2)
    raise SystemExit(f"screenshots: no mail to {recipient} about {subject_word!r}")


def main(out: Path) -> None:
    if not CHROMIUM:
        sys.exit("screenshots: Chromium is not installed (apt-get install chromium)")
    out.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="pasar-screenshots-"))
    shop = start_shop(data / "var", free_base_port())
    base = shop.url("web")
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            customer = new_context(browser).new_page()
            customer.on("dialog", lambda dialog: dialog.accept())
            customer.goto(base + "/")
            shoot(customer, out, "catalogue")
            email = register(customer, base)
            add_to_cart(customer, base, "Kemeja Batik Pria Lengan Panjang (L)", 1)
            customer.get_by_role("link", name="Kemeja Batik Pria").first.click()
            shoot(customer, out, "product")
            add_to_cart(customer, base, "Kopi Arabika Gayo 250 g", 2)
            shoot(customer, out, "cart")
            order_id = check_out(customer)

            owner = new_context(browser).new_page()
            log_in(owner, base, ADMIN_EMAIL, ADMIN_PASSWORD)
            owner.goto(f"{base}/admin/orders/{order_id}")
            owner.get_by_label("Catatan resi").fill("JNE 0123 4567 8901")
            owner.get_by_role("button", name="Tandai sudah dikirim").click()
            owner.goto(base + "/admin")
            shoot(owner, out, "admin-dashboard")

            customer.goto(f"{base}/orders/{order_id}")
            shoot(customer, out, "order")

            # The email that told the customer, as a phone shows it.
            mail = new_context(browser, phone=True).new_page()
            mail.set_content(latest_mail_html(data / "var" / "mail", email, "dikirim"))
            shoot(mail, out, "phone-order-mail", full=True)

            phone = new_context(browser, phone=True).new_page()
            phone.goto(base + "/?category=Makanan %26 Minuman")
            shoot(phone, out, "phone-catalogue")
            browser.close()
    finally:
        shop.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
