"""Customer email through the real processes: `pasar up` with the users service sending
by SMTP to a real server (aiosmtpd) in the test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from mailsink import MailSink
from shoplib import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    RunningShop,
    api,
    database_env,
    eventually,
    free_base_port,
    login,
    register,
    start_shop,
)
from testdata import ADDRESS

pytestmark = pytest.mark.e2e


class MailShop:
    def __init__(self, shop: RunningShop, sink: MailSink, users_database_url: str) -> None:
        self.shop = shop
        self.sink = sink
        self.users_database_url = users_database_url


@pytest.fixture(scope="module")
def mail_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailShop]:
    directory = tmp_path_factory.mktemp("mail-shop")
    with ExitStack() as stack:
        sink = stack.enter_context(MailSink())
        databases = database_env(stack, directory)
        env = {
            **databases,
            "USERS_MAIL_TRANSPORT": "smtp",
            "USERS_SMTP_HOST": "127.0.0.1",
            "USERS_SMTP_PORT": str(sink.port),
            "USERS_SMTP_SECURITY": "none",
            "USERS_MAIL_FROM": "Toko pasar <toko@pasar.test>",
        }
        data_dir = directory / "var"
        running = start_shop(data_dir, free_base_port(), env)
        users_url = databases.get("USERS_DATABASE_URL") or (
            f"sqlite+aiosqlite:///{data_dir.resolve() / 'users.db'}"
        )
        try:
            yield MailShop(running, sink, users_url)
        finally:
            code = running.stop()
            assert code == 0, "".join(running.output[-50:])


def _customer(mail_shop: MailShop, **profile: Any) -> tuple[str, str]:
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    token = register(mail_shop.shop.url("users"), email)
    if profile:
        with api(mail_shop.shop.url("users"), token) as users:
            changed = users.patch("/users/me", json=profile)
            assert changed.status_code == 200, changed.text
    return email, token


def _order_mail(mail_shop: MailShop, email: str) -> list[Any]:
    """What reached ``email`` about orders (each subject names one), not the
    verification mail registering sent."""
    return [m for m in mail_shop.sink.to(email) if "#" in str(m["Subject"])]


def _order(mail_shop: MailShop, token: str, product: dict[str, Any]) -> dict[str, Any]:
    with api(mail_shop.shop.url("orders"), token) as orders:
        placed = orders.post(
            "/orders",
            json={"items": [{"product_id": product["id"], "quantity": 2}],
                  "shipping_address": ADDRESS},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        assert placed.status_code == 201, placed.text
        order: dict[str, Any] = placed.json()
        return order


def _product(mail_shop: MailShop) -> dict[str, Any]:
    with api(mail_shop.shop.url("products")) as products:
        items = products.get("/products", params={"in_stock": "true", "limit": 100}).json()
        product: dict[str, Any] = next(p for p in items["items"] if p["stock"] >= 10)
        return product


def _move(mail_shop: MailShop, admin: str, order_id: str, status: str, note: str | None = None):  # type: ignore[no-untyped-def]
    with api(mail_shop.shop.url("orders"), admin) as orders:
        body = {"status": status, **({"note": note} if note else {})}
        moved = orders.post(f"/orders/{order_id}/status", json=body)
        assert moved.status_code == 200, moved.text


def test_each_status_reaches_the_customer_in_their_language(mail_shop: MailShop) -> None:
    users_url = mail_shop.shop.url("users")
    admin = login(users_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    product = _product(mail_shop)
    english, english_token = _customer(mail_shop, language="en")
    indonesian, indonesian_token = _customer(mail_shop)  # Indonesian by default
    shipped = {}
    for email, token in ((english, english_token), (indonesian, indonesian_token)):
        order = _order(mail_shop, token, product)
        _move(mail_shop, admin, order["id"], "shipped", note="JNE 0123456789")
        _move(mail_shop, admin, order["id"], "completed")
        cancelled = _order(mail_shop, token, product)
        _move(mail_shop, admin, cancelled["id"], "cancelled")
        shipped[email] = (order, cancelled)

    def mail_to(email: str, count: int) -> list[Any] | None:
        received = _order_mail(mail_shop, email)
        return received if len(received) >= count else None

    total = 2 * product["price"]
    for email, words in (
        (english, ("received", "has been shipped", "is completed", "has been cancelled")),
        (indonesian, ("diterima", "telah dikirim", "selesai", "dibatalkan")),
    ):
        received = eventually(lambda email=email: mail_to(email, 5), timeout=30)
        assert len(received) == 5  # two placed, shipped, completed, cancelled: once each
        order, cancelled = shipped[email]
        short = order["id"].replace("-", "")[:8].upper()
        subjects = [str(m["Subject"]) for m in received]
        for word in words:
            assert any(word in subject for subject in subjects), (word, subjects)
        shipping = next(m for m in received if short in m["Subject"] and words[1] in m["Subject"])
        text = MailSink.text(shipping)
        assert "JNE 0123456789" in text
        assert product["name"] in text
        grouped = f"{total:,}" if email == english else f"{total:,}".replace(",", ".")
        assert f"Rp\u00a0{grouped}" in text
        assert f"{mail_shop.shop.url('web')}/orders/{order['id']}" in text
        assert shipping["From"] == "Toko pasar <toko@pasar.test>"

    # The shop owner heard of each of the four new orders.
    admin_mail = eventually(lambda: mail_to(ADMIN_EMAIL, 4), timeout=30)
    assert len(admin_mail) == 4
    # The ledger agrees.
    with api(users_url, admin) as users:
        page = users.get(
            "/admin/deliveries", params={"recipient": english, "template": "order_status"}
        ).json()
        assert page["total"] == 5
        assert {item["state"] for item in page["items"]} == {"sent"}


def test_a_customer_who_turned_order_emails_off_gets_none(mail_shop: MailShop) -> None:
    users_url = mail_shop.shop.url("users")
    admin = login(users_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    product = _product(mail_shop)
    quiet, token = _customer(mail_shop, order_emails=False)
    order = _order(mail_shop, token, product)
    _move(mail_shop, admin, order["id"], "shipped")

    def notified() -> bool:
        with api(users_url, token) as users:
            items = users.get("/users/me/notifications").json()["items"]
        return len(items) == 2

    eventually(notified)
    # The admin's mail of that order was enqueued in the same transaction: once it is
    # sent, the customer's would have been too.
    short = order["id"].replace("-", "")[:8].upper()
    eventually(lambda: any(short in str(m["Subject"]) for m in mail_shop.sink.to(ADMIN_EMAIL)))
    assert _order_mail(mail_shop, quiet) == []
    with api(users_url, admin) as users:
        page = users.get(
            "/admin/deliveries", params={"recipient": quiet, "template": "order_status"}
        ).json()
        assert page["total"] == 0
        page = users.get("/admin/deliveries", params={"order_id": order["id"]}).json()
        assert [item["template"] for item in page["items"]] == ["admin_new_order"]
