"""A customer's whole journey through the real processes that `pasar up` starts."""

from __future__ import annotations

import uuid

from shoplib import ADMIN_EMAIL, ADMIN_PASSWORD, RunningShop, api, eventually, login, register
from testdata import ADDRESS


def test_register_login_and_profile(shop: RunningShop) -> None:
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    token = register(shop.url("users"), email)
    with api(shop.url("users"), token) as users:
        me = users.get("/users/me")
    assert me.status_code == 200
    assert me.json()["email"] == email
    assert me.json()["role"] == "customer"


def test_catalogue_is_seeded_and_searchable(shop: RunningShop) -> None:
    with api(shop.url("products")) as products:
        listing = products.get("/products", params={"limit": 5})
        assert listing.status_code == 200
        body = listing.json()
        assert body["total"] >= 24 and len(body["items"]) == 5
        categories = products.get("/categories").json()
        assert len(categories) >= 4
        first = body["items"][0]
        word = first["name"].split()[0].upper()
        found = products.get("/products", params={"q": word}).json()
        assert any(item["id"] == first["id"] for item in found["items"])


def test_admin_creates_a_product(shop: RunningShop) -> None:
    admin = login(shop.url("users"), ADMIN_EMAIL, ADMIN_PASSWORD)
    sku = f"E2E-{uuid.uuid4().hex[:6]}".upper()
    with api(shop.url("products"), admin) as products:
        created = products.post(
            "/products",
            json={"sku": sku, "name": "E2E Kopi", "description": "Test", "price": 2500000,
                  "stock": 7, "category": "E2E"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        assert created.headers["location"].endswith(created.json()["id"])
        assert products.get(f"/products/{created.json()['id']}").json()["sku"] == sku


def test_order_ship_complete_and_notifications(shop: RunningShop) -> None:
    users_url = shop.url("users")
    customer = register(users_url, f"buyer-{uuid.uuid4().hex[:8]}@example.com")
    admin = login(users_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    with api(shop.url("products")) as products:
        product = next(
            p
            for p in products.get("/products", params={"in_stock": "true"}).json()["items"]
            if p["stock"] >= 2
        )
    with api(shop.url("orders"), customer) as orders:
        placed = orders.post(
            "/orders",
            json={"items": [{"product_id": product["id"], "quantity": 2}],
                  "shipping_address": ADDRESS, "note": "e2e"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["status"] == "processing"
        assert order["total"] == 2 * product["price"]
    with api(shop.url("products")) as products:
        after = products.get(f"/products/{product['id']}").json()
        assert after["stock"] == product["stock"] - 2
    with api(shop.url("orders"), admin) as orders:
        shipped = orders.post(f"/orders/{order['id']}/status", json={"status": "shipped"})
        assert shipped.status_code == 200, shipped.text
        done = orders.post(f"/orders/{order['id']}/status", json={"status": "completed"})
        assert done.json()["status"] == "completed"
        assert [h["status"] for h in done.json()["status_history"]] == [
            "processing", "shipped", "completed",
        ]  # fmt: skip

    def three_notifications() -> list[dict[str, object]] | None:
        with api(users_url, customer) as users:
            items = users.get("/users/me/notifications").json()["items"]
        mine = [n for n in items if n["order_id"] == order["id"]]
        return mine if len(mine) == 3 else None

    notes = eventually(three_notifications)
    assert [n["status"] for n in notes] == ["completed", "shipped", "processing"]

    # `pasar up` writes mail as .eml files into its data dir and logs their links.
    short = order["id"].replace("-", "")[:8].upper()

    def order_mail() -> list[str] | None:
        mail = [p.read_text() for p in (shop.data_dir / "mail").glob("*.eml")]
        mine = [text for text in mail if f"#{short}" in text]
        return mine if len(mine) == 4 else None  # three to the customer, one to the admin

    mail = eventually(order_mail)
    assert sum(f"To: {ADMIN_EMAIL}" in text for text in mail) == 1
    link = f"{shop.url('web')}/orders/{order['id']}"
    assert sum(link in text for text in mail) == 3
    assert any(link in line and "mail to" in line for line in shop.output)
