"""axe-core on the main pages, as a shopper and as the owner: no serious or critical
violation of WCAG 2.1 A/AA. What axe finds at lesser impact is printed for the record."""

from __future__ import annotations

import re
from collections import Counter

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from journeys import add_to_cart, check_out, log_in, register
from playwright.sync_api import Page
from shoplib import ADMIN_EMAIL, ADMIN_PASSWORD, RunningShop

AXE_OPTIONS = {
    "resultTypes": ["violations"],
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
}


def _audit(page: Page, name: str, found: dict[str, list[str]], minor: Counter[str]) -> None:
    results = Axe().run(page, options=AXE_OPTIONS)
    for violation in results.response["violations"]:
        where = [", ".join(node["target"]) for node in violation["nodes"][:3]]
        entry = f"{violation['id']} ({violation['impact']}) at {'; '.join(where)}"
        if violation["impact"] in ("serious", "critical"):
            found.setdefault(name, []).append(entry)
        else:
            minor[f"{name}: {entry}"] += 1


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_main_pages_have_no_serious_accessibility_violations(
    shop: RunningShop, page: Page, viewport: str
) -> None:
    if viewport == "phone":
        page.set_viewport_size({"width": 360, "height": 780})
    base = shop.url("web")
    found: dict[str, list[str]] = {}
    minor: Counter[str] = Counter()
    audited = 0

    def audit(name: str) -> None:
        nonlocal audited
        audited += 1
        _audit(page, name, found, minor)

    page.goto(base + "/")
    audit("catalogue")
    page.goto(base + "/?q=zzz-nothing")
    audit("empty search")
    page.goto(base + "/login")
    audit("login")
    page.goto(base + "/register")
    audit("register")
    register(page, base)
    add_to_cart(page, base, "Kopi Toraja Kalosi 250 g", 1)
    audit("cart")
    page.get_by_role("link", name=re.compile("Kopi Toraja")).first.click()
    audit("product")
    page.goto(base + "/checkout")
    audit("checkout")
    page.goto(base + "/cart")
    order_id = check_out(page)
    audit("order")
    page.goto(base + "/orders")
    audit("my orders")
    page.goto(base + "/notifications")
    audit("notifications")
    page.goto(base + "/account")
    audit("account")
    page.goto(base + "/no-such-page")
    audit("not found")

    page.context.clear_cookies()
    log_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    for path in (
        "/admin",
        "/admin/products",
        "/admin/products/new",
        "/admin/orders",
        f"/admin/orders/{order_id}",
        "/admin/users",
    ):
        page.goto(base + path)
        audit(path)
    product = httpx.get(f"{shop.url('products')}/products", params={"limit": 1}).json()
    page.goto(f"{base}/admin/products/{product['items'][0]['id']}")
    audit("/admin/products/{id}")

    print(
        f"\naxe ({viewport}): {audited} pages, "
        f"{sum(len(v) for v in found.values())} serious or critical, {len(minor)} lesser"
    )
    for entry in sorted(minor):
        print("  lesser:", entry)
    assert not found, found
