"""Payments through a gateway, end to end: the services as real processes with
``ORDERS_PAYMENT_PROVIDER=midtrans`` (and ``xendit``), the gateway a local stand-in of
its HTTP API (tests/gateways) that signs its notifications as the real one does, and the
orders service's own jobs (status checks, settlement) running as in production.

The cases of issue #13: settled by QRIS, an expired virtual account, a notification with
a bad signature, the same notification five times, a notification that never comes (the
status job settles the order), and a payment that lands after the order was cancelled
(refunded).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from gateways import serve_in_thread
from gateways.midtrans import SERVER_KEY, MidtransStandIn
from gateways.xendit import CALLBACK_TOKEN, SECRET_KEY, XenditStandIn
from shoplib import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Fleet,
    bearer,
    create_product_async,
    eventually_async,
    login_async,
    orders_env,
    place_order_async,
    prepare_databases,
    products_env,
    register_async,
    users_env,
)

from pasar_kit.testing import fresh_database

pytestmark = pytest.mark.e2e

# The status job asks about a payment pending this long; long enough that a test's own
# notification normally comes first, and the job must settle what never comes.
CHECK_AFTER_SECONDS = 3
SETTLE = 90.0  # bounds a wait on a busy shared machine; asserts no timing


class StandIn:
    """The two stand-ins behind one face: pay, expire, notify by pasar's reference."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.midtrans = MidtransStandIn()
        self.xendit = XenditStandIn()

    @property
    def app(self) -> Any:
        return self.midtrans.app if self.provider == "midtrans" else self.xendit.app

    def settings(self, url: str) -> dict[str, str]:
        if self.provider == "midtrans":
            return {
                "ORDERS_MIDTRANS_SERVER_KEY": SERVER_KEY,
                "ORDERS_MIDTRANS_SNAP_URL": url,
                "ORDERS_MIDTRANS_API_URL": url,
            }
        return {
            "ORDERS_XENDIT_SECRET_KEY": SECRET_KEY,
            "ORDERS_XENDIT_CALLBACK_TOKEN": CALLBACK_TOKEN,
            "ORDERS_XENDIT_API_URL": url,
        }

    def point_at(self, orders_url: str) -> None:
        url = f"{orders_url}/payments/notifications/{self.provider}"
        self.midtrans.notify_url = self.xendit.notify_url = url

    def _invoice(self, reference: str) -> str:
        return self.xendit.by_external_id(reference).id

    def choose_virtual_account(self, reference: str) -> None:
        if self.provider == "midtrans":
            self.midtrans.choose_virtual_account(reference)

    def pay(self, reference: str, method: str) -> None:
        if self.provider == "midtrans":
            self.midtrans.pay(reference, method)
        else:
            self.xendit.pay(self._invoice(reference), method.upper())

    def expire(self, reference: str) -> None:
        if self.provider == "midtrans":
            self.midtrans.expire(reference)
        else:
            self.xendit.expire(self._invoice(reference))

    async def notify(self, reference: str, times: int = 1) -> list[httpx.Response]:
        if self.provider == "midtrans":
            return await self.midtrans.notify(reference, times=times)
        return await self.xendit.notify(self._invoice(reference), times=times)

    async def forge_settlement(self, reference: str) -> httpx.Response:
        """A notification saying "paid" that the gateway did not sign."""
        if self.provider == "midtrans":
            body = self.midtrans.notification(
                reference, transaction_status="settlement", signature_key="f" * 128
            )
            [answer] = await self.midtrans.notify(reference, body=body)
        else:
            invoice = self._invoice(reference)
            body = self.xendit.callback(invoice, status="PAID", paid_amount=1)
            [answer] = await self.xendit.notify(invoice, body=body, token="guessed")
        return answer

    def asked(self, reference: str) -> int:
        """How often pasar asked the gateway about this payment."""
        if self.provider == "midtrans":
            return self.midtrans.asked[reference]
        return self.xendit.asked[reference]

    def refunded(self, reference: str) -> bool:
        if self.provider == "midtrans":
            return self.midtrans.transactions[reference].transaction_status == "refund"
        return bool(self.xendit.by_external_id(reference).refunds)


@dataclass
class PayingShop:
    gateway: StandIn
    users: str
    products: str
    orders: str


@pytest.fixture(scope="module", params=["midtrans", "xendit"])
def paying_shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PayingShop]:
    provider: str = request.param
    directory = tmp_path_factory.mktemp(f"pay-{provider}")
    gateway = StandIn(provider)
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(fresh_database(f"pay_{name}", directory))
            for name in ("users", "products", "orders")
        }
        prepare_databases(urls)
        gateway_url = stack.enter_context(serve_in_thread(gateway.app))
        fleet = stack.enter_context(Fleet(directory))
        secret = secrets.token_urlsafe(24)
        users = fleet.add("users", users_env(urls["users"], secret))
        products = fleet.add("products", products_env(urls["products"], users.url))
        orders = fleet.add(
            "orders",
            orders_env(
                urls["orders"],
                users.url,
                products.url,
                secret,
                ORDERS_PAYMENT_PROVIDER=provider,
                ORDERS_PAYMENT_WINDOW_SECONDS="600",
                ORDERS_PAYMENT_CHECK_AFTER_SECONDS=str(CHECK_AFTER_SECONDS),
                ORDERS_PAYMENT_CHECK_INTERVAL_SECONDS="0.5",
                ORDERS_RECOVERY_INTERVAL_SECONDS="0.5",
                **gateway.settings(gateway_url),
            ),
        )
        users.start()
        users.wait_ready()
        fleet.start_all()
        gateway.point_at(orders.url)
        yield PayingShop(gateway, users.url, products.url, orders.url)


@dataclass
class Case:
    http: httpx.AsyncClient
    shop: PayingShop
    admin: str
    buyer: str

    async def pending(self, qty: int = 2) -> tuple[str, str, str]:
        """An order paid for at the gateway, not yet paid: (order id, reference, product)."""
        product = await create_product_async(
            self.http, self.shop.products, self.admin, stock=5, price=92_000
        )
        placed = await place_order_async(
            self.http,
            self.shop.orders,
            self.buyer,
            [{"product_id": product["id"], "quantity": qty}],
        )
        assert placed.status_code == 201, placed.text
        order_id = str(placed.json()["id"])
        started = await self.http.post(
            f"{self.shop.orders}/orders/{order_id}/payments", headers=bearer(self.buyer), json={}
        )
        assert started.status_code == 200, started.text
        payment = started.json()["payment"]
        assert payment["status"] == "pending" and payment["amount"] == 92_000 * qty
        assert payment["redirect_url"]
        return order_id, f"{order_id}-1", str(product["id"])

    async def order(self, order_id: str) -> dict[str, Any]:
        response = await self.http.get(
            f"{self.shop.orders}/orders/{order_id}", headers=bearer(self.buyer)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def stock(self, product_id: str) -> int:
        response = await self.http.get(f"{self.shop.products}/products/{product_id}")
        return int(response.json()["stock"])

    async def stored(self, order_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{self.shop.orders}/admin/payment-notifications",
            headers=bearer(self.admin),
            params={"order_id": order_id},
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def reaches(self, order_id: str, status: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            order = await self.order(order_id)
            return order if order["status"] == status else None

        reached: dict[str, Any] = await eventually_async(check, timeout=SETTLE)
        return reached


@pytest.fixture
async def case(paying_shop: PayingShop) -> Any:
    async with httpx.AsyncClient(timeout=30) as http:
        admin = await login_async(http, paying_shop.users, ADMIN_EMAIL, ADMIN_PASSWORD)
        _, buyer = await register_async(
            http, paying_shop.users, f"payer-{secrets.token_hex(4)}@example.com"
        )
        yield Case(http, paying_shop, admin, buyer)


def _history(order: dict[str, Any]) -> list[str]:
    return [entry["status"] for entry in order["status_history"]]


async def test_settled_by_qris_the_order_moves_to_processing(case: Case) -> None:
    order_id, reference, product_id = await case.pending()
    case.shop.gateway.pay(reference, "qris")

    [answer] = await case.shop.gateway.notify(reference)

    assert answer.status_code == 200 and answer.json() == {"outcome": "paid"}, answer.text
    order = await case.order(order_id)
    assert _history(order) == ["pending_payment", "processing"]
    assert await case.stock(product_id) == 3
    [stored] = await case.stored(order_id)
    assert stored["verified"] and stored["outcome"] == "paid"


async def test_an_expired_virtual_account_cancels_the_order_and_frees_its_stock(
    case: Case,
) -> None:
    order_id, reference, product_id = await case.pending(qty=3)
    case.shop.gateway.choose_virtual_account(reference)
    case.shop.gateway.expire(reference)

    [answer] = await case.shop.gateway.notify(reference)

    assert answer.status_code == 200, answer.text
    order = await case.reaches(order_id, "cancelled")
    assert _history(order) == ["pending_payment", "cancelled"]
    assert await eventually_async(lambda: _equals(case.stock(product_id), 5), timeout=SETTLE)


async def _equals(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def test_a_notification_with_a_bad_signature_is_refused_and_changes_nothing(
    case: Case,
) -> None:
    order_id, reference, _ = await case.pending()

    answer = await case.shop.gateway.forge_settlement(reference)

    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "notification_not_verified"
    # Stored, refused, and tied to no order: nothing in it can be trusted.
    listed = await case.http.get(
        f"{case.shop.orders}/admin/payment-notifications", headers=bearer(case.admin)
    )
    [stored] = [n for n in listed.json()["items"] if reference in n["body"]]
    assert not stored["verified"] and stored["outcome"] == "refused"
    assert stored["order_id"] is None
    # Nothing changed, even once the status job asked the gateway (which says pending).
    await eventually_async(lambda: _true(case.shop.gateway.asked(reference) > 0), timeout=SETTLE)
    assert (await case.order(order_id))["status"] == "pending_payment"


async def test_the_same_notification_five_times_changes_the_order_once(case: Case) -> None:
    order_id, reference, _ = await case.pending()
    case.shop.gateway.pay(reference, "qris")

    answers = await case.shop.gateway.notify(reference, times=5)

    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sorted(a.json()["outcome"] for a in answers) in (
        ["duplicate"] * 4 + ["paid"],
        ["duplicate"] * 5,  # the status job settled it first
    )
    order = await case.order(order_id)
    assert _history(order) == ["pending_payment", "processing"]
    assert len(await case.stored(order_id)) == 5


async def test_a_notification_that_never_comes_is_settled_by_the_status_job(case: Case) -> None:
    order_id, reference, product_id = await case.pending()
    case.shop.gateway.pay(reference, "qris")  # and the gateway sends nothing

    order = await case.reaches(order_id, "processing")

    assert _history(order) == ["pending_payment", "processing"]
    assert await case.stored(order_id) == []  # no notification was ever received
    assert await case.stock(product_id) == 3


async def test_a_payment_after_the_order_was_cancelled_is_refunded(case: Case) -> None:
    order_id, reference, product_id = await case.pending()
    cancelled = await case.http.post(
        f"{case.shop.orders}/orders/{order_id}/cancel", headers=bearer(case.buyer)
    )
    assert cancelled.status_code == 200, cancelled.text

    case.shop.gateway.pay(reference, "qris")
    answers = await case.shop.gateway.notify(reference, times=2)

    assert all(a.status_code == 200 for a in answers)
    await eventually_async(lambda: _true(case.shop.gateway.refunded(reference)), timeout=SETTLE)
    order = await case.order(order_id)
    assert _history(order) == ["pending_payment", "cancelled"]
    assert await eventually_async(lambda: _equals(case.stock(product_id), 5), timeout=SETTLE)
    outcomes = sorted(n["outcome"] for n in await case.stored(order_id))
    assert outcomes in (["duplicate", "refund_due"], ["duplicate", "duplicate"])


async def _true(value: bool) -> bool:
    return value
