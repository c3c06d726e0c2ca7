"""Payments through the real Midtrans and Xendit provider code, against local
stand-ins of the gateways' HTTP APIs (tests/gateways) with real signatures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from gateways.midtrans import SERVER_KEY, MidtransStandIn, Transaction
from gateways.xendit import CALLBACK_TOKEN, SECRET_KEY, XenditStandIn
from orders_support import Account, Shop, ShopFactory
from pydantic import ValidationError

from pasar_kit.db import utcnow
from pasar_kit.testing import serve
from pasar_orders.online_payments import ABANDON_AFTER, check_pending_payments
from pasar_orders.settings import Settings

WINDOW = 600


@dataclass
class Paying:
    shop: Shop
    buyer: Account

    async def pending(self, qty: int = 2, price: int = 92_000) -> tuple[dict[str, Any], str]:
        """A placed order waiting for payment, and its product's id."""
        coffee = await self.shop.product(stock=5, price=price)
        placed = await self.shop.place(self.buyer, [(coffee["id"], qty)])
        assert placed.status_code == 201, placed.text
        return placed.json(), coffee["id"]

    async def start(self, order_id: str) -> dict[str, Any]:
        response = await self.shop.post(self.buyer, f"/orders/{order_id}/payments", {})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def order(self, order_id: str) -> dict[str, Any]:
        response = await self.shop.get(self.buyer, f"/orders/{order_id}")
        body: dict[str, Any] = response.json()
        return body

    async def stored(self, order_id: str) -> list[dict[str, Any]]:
        admin = await self.shop.make_admin()
        response = await self.shop.get(admin, "/admin/payment-notifications", order_id=order_id)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def check(self, later: float = 0) -> int:
        """Run the status job once, ``later`` seconds from now."""
        return await check_pending_payments(
            db=self.shop.db,
            products=self.shop.runtime.products,
            gateway=self.shop.runtime.gateway,  # type: ignore[arg-type]
            now=utcnow() + timedelta(seconds=later),
            interval=timedelta(seconds=60),
        )


@pytest.fixture
async def midtrans() -> AsyncIterator[MidtransStandIn]:
    standin = MidtransStandIn()
    async with serve(standin.app) as url:
        standin.app.state.url = url
        yield standin


@pytest.fixture
async def via_midtrans(
    orders_shop_factory: ShopFactory, midtrans: MidtransStandIn
) -> AsyncIterator[Paying]:
    url = midtrans.app.state.url
    async with orders_shop_factory(
        payment_provider="midtrans",
        midtrans_server_key=SERVER_KEY,
        midtrans_snap_url=url,
        midtrans_api_url=url,
        payment_window_seconds=WINDOW,
    ) as shop:
        midtrans.notify_url = f"{shop.orders_url}/payments/notifications/midtrans"
        yield Paying(shop, await shop.customer())


@pytest.fixture
async def xendit() -> AsyncIterator[XenditStandIn]:
    standin = XenditStandIn()
    async with serve(standin.app) as url:
        standin.app.state.url = url
        yield standin


@pytest.fixture
async def via_xendit(
    orders_shop_factory: ShopFactory, xendit: XenditStandIn
) -> AsyncIterator[Paying]:
    async with orders_shop_factory(
        payment_provider="xendit",
        xendit_secret_key=SECRET_KEY,
        xendit_callback_token=CALLBACK_TOKEN,
        xendit_api_url=xendit.app.state.url,
        payment_window_seconds=WINDOW,
    ) as shop:
        xendit.notify_url = f"{shop.orders_url}/payments/notifications/xendit"
        yield Paying(shop, await shop.customer())


async def test_a_payment_is_made_once_and_answered_with_its_page(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending(qty=2)
    none_yet = await paying.shop.get(paying.buyer, f"/orders/{order['id']}/payment")
    assert none_yet.status_code == 404
    assert none_yet.json()["code"] == "payment_not_found"
    assert none_yet.json()["provider"] == "midtrans"  # what a storefront offers

    started = await paying.start(order["id"])
    again = await paying.start(order["id"])

    assert started["status"] == "pending_payment"
    payment = started["payment"]
    assert payment["provider"] == "midtrans" and payment["status"] == "pending"
    assert payment["amount"] == 184_000 and payment["currency"] == "IDR"
    assert payment["redirect_url"].startswith(midtrans.app.state.url)
    assert again["payment"] == payment
    assert midtrans.calls["snap"] == 1
    assert midtrans.only().order_id == f"{order['id']}-1"
    assert midtrans.only().gross_amount == 184_000  # whole rupiah, as Snap counts
    shown = await paying.shop.get(paying.buyer, f"/orders/{order['id']}/payment")
    assert shown.status_code == 200 and shown.json() == payment


async def test_a_card_is_refused_when_the_gateway_takes_the_payment(via_midtrans: Paying) -> None:
    order, _ = await via_midtrans.pending()
    card = {"card_number": "4242424242424242", "expiry": "12/30", "cvc": "123"}
    response = await via_midtrans.shop.post(
        via_midtrans.buyer, f"/orders/{order['id']}/payments", card
    )
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


async def test_settled_by_qris_the_order_moves_to_processing(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()
    await paying.start(order["id"])
    reference = f"{order['id']}-1"
    qr_string = midtrans.choose_qris(reference)
    [pending] = await midtrans.notify(reference)
    assert pending.json() == {"outcome": "pending"}
    shown = (await paying.shop.get(paying.buyer, f"/orders/{order['id']}/payment")).json()
    assert shown["qr_string"] == qr_string

    midtrans.pay(reference, "qris")
    [answer] = await midtrans.notify(reference)

    assert answer.status_code == 200 and answer.json() == {"outcome": "paid"}
    paid = await paying.order(order["id"])
    assert paid["status"] == "processing"
    assert paid["status_history"][-1]["by"] == "system"
    assert (await paying.shop.reservation(order["id"])).json()["status"] == "committed"
    stored = await paying.stored(order["id"])
    assert [(n["outcome"], n["gateway_status"]) for n in stored] == [
        ("paid", "settlement"),
        ("pending", "pending"),
    ]
    assert all(n["verified"] for n in stored) and '"qris"' in stored[0]["body"]
    # Each notification was checked against a status query before it was believed.
    assert midtrans.calls["status"] == 2


async def test_an_expired_virtual_account_cancels_and_releases_the_stock(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, product_id = await paying.pending(qty=3)
    await paying.start(order["id"])
    reference = f"{order['id']}-1"
    midtrans.choose_virtual_account(reference)
    [pending] = await midtrans.notify(reference)
    assert pending.json() == {"outcome": "pending"}
    shown = (await paying.shop.get(paying.buyer, f"/orders/{order['id']}/payment")).json()
    assert shown["va_number"] == midtrans.transactions[reference].va_numbers[0]["va_number"]

    midtrans.expire(reference)
    [expired] = await midtrans.notify(reference)

    assert expired.json() == {"outcome": "cancelled"}
    cancelled = await paying.order(order["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["status_history"][-1]["note"] == "Payment expired"
    assert await paying.shop.release() == 1
    assert await paying.shop.stock(product_id) == 5


async def test_a_notification_with_a_bad_signature_is_refused_and_changes_nothing(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()
    await paying.start(order["id"])
    reference = f"{order['id']}-1"
    midtrans.pay(reference)
    signed = midtrans.notification(reference)

    forged = [
        {**signed, "signature_key": "0" * 128},
        {**signed, "gross_amount": "1.00"},  # signed for another amount
        {k: v for k, v in signed.items() if k != "signature_key"},
    ]
    for body in forged:
        [answer] = await midtrans.notify(reference, body=body)
        assert answer.status_code == 403, answer.text
        assert answer.json()["code"] == "notification_not_verified"

    assert (await paying.order(order["id"]))["status"] == "pending_payment"
    assert midtrans.calls["status"] == 0  # a forged notification costs no query
    admin = await paying.shop.make_admin()
    stored = (await paying.shop.get(admin, "/admin/payment-notifications")).json()["items"]
    assert [(n["verified"], n["outcome"]) for n in stored] == [(False, "refused")] * 3


async def test_the_same_notification_five_times_changes_the_order_once(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()
    await paying.start(order["id"])
    reference = f"{order['id']}-1"
    midtrans.pay(reference)

    answers = await midtrans.notify(reference, times=5)

    assert [a.json()["outcome"] for a in answers] == ["paid"] + ["duplicate"] * 4
    paid = await paying.order(order["id"])
    assert [h["status"] for h in paid["status_history"]] == ["pending_payment", "processing"]
    assert len(await paying.stored(order["id"])) == 5


async def test_concurrent_notifications_change_the_order_once(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()
    await paying.start(order["id"])
    reference = f"{order['id']}-1"
    midtrans.pay(reference)

    batches, checked = await asyncio.gather(
        asyncio.gather(*(midtrans.notify(reference) for _ in range(5))),
        paying.check(later=3600),
    )

    answers = [a.json()["outcome"] for batch in batches for a in batch]
    # One of the six settled the payment: a notification ("paid") or the status job (1).
    assert answers.count("paid") + checked == 1
    assert answers.count("duplicate") == 5 - answers.count("paid")
    paid = await paying.order(order["id"])
    assert [h["status"] for h in paid["status_history"]] == ["pending_payment", "processing"]


async def test_a_notification_that_never_comes_is_settled_by_the_status_job(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()
    await paying.start(order["id"])
    midtrans.pay(f"{order['id']}-1")  # the gateway sends nothing

    assert await paying.check() == 0  # not yet due: pending for less than the threshold
    assert await paying.check(later=3600) == 1
    assert await paying.check(later=7200) == 0  # settled: never asked again

    paid = await paying.order(order["id"])
    assert paid["status"] == "processing"
    assert (await paying.shop.reservation(order["id"])).json()["status"] == "committed"


async def test_a_payment_after_the_order_was_cancelled_is_refunded(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, product_id = await paying.pending()
    await paying.start(order["id"])
    reference = f"{order['id']}-1"
    cancelled = await paying.shop.post(paying.buyer, f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200
    assert await paying.shop.release() == 1  # the stock went back

    midtrans.pay(reference)
    answers = await midtrans.notify(reference, times=2)

    assert [a.json()["outcome"] for a in answers] == ["refund_due", "duplicate"]
    assert (await paying.order(order["id"]))["status"] == "cancelled"
    assert await paying.shop.release() == 1  # now the refund
    transaction = midtrans.transactions[reference]
    assert transaction.transaction_status == "refund"
    assert transaction.refund_keys == [f"{transaction.transaction_id}-refund"]
    assert await paying.shop.release() == 0
    assert await paying.shop.stock(product_id) == 5


async def test_a_notification_for_an_unknown_payment_is_recorded_and_answered_200(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    # A payment the gateway knows and the shop never made (the dashboard's "test
    # notification", another shop on the same account).
    stray = "0b6f5a8e-0000-4000-8000-000000000000-1"
    midtrans.transactions[stray] = Transaction(order_id=stray, gross_amount=50_000)
    midtrans.pay(stray)

    [answer] = await midtrans.notify(stray)

    assert answer.status_code == 200 and answer.json() == {"outcome": "unknown_payment"}
    admin = await via_midtrans.shop.make_admin()
    stored = (await via_midtrans.shop.get(admin, "/admin/payment-notifications")).json()
    [note] = stored["items"]
    assert note["verified"] and note["payment_id"] == stray and note["order_id"] is None


async def test_a_wrong_amount_is_refused_and_changes_nothing(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()
    await paying.start(order["id"])
    reference = f"{order['id']}-1"
    midtrans.pay(reference)
    midtrans.transactions[reference].gross_amount = 1_000  # the gateway took another sum

    [answer] = await midtrans.notify(reference)

    assert answer.status_code == 422 and answer.json()["code"] == "notification_mismatch"
    assert (await paying.order(order["id"]))["status"] == "pending_payment"
    [stored] = await paying.stored(order["id"])
    assert stored["verified"] and stored["outcome"] == "amount_mismatch"
    assert await paying.check(later=3600) == 0  # the status job refuses it too
    assert (await paying.order(order["id"]))["status"] == "pending_payment"


async def test_a_notification_for_another_provider_is_404(via_midtrans: Paying) -> None:
    response = await via_midtrans.shop.http.post(
        f"{via_midtrans.shop.orders_url}/payments/notifications/xendit", json={"id": "x"}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "payment_provider_not_found"


async def test_a_gateway_that_is_down_is_503_and_the_next_try_is_a_new_attempt(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()
    midtrans.down = True
    failed = await paying.shop.post(paying.buyer, f"/orders/{order['id']}/payments", {})
    assert failed.status_code == 503 and failed.json()["code"] == "dependency_unavailable"
    assert "Retry-After" in failed.headers

    midtrans.down = False
    started = await paying.start(order["id"])

    assert started["payment"]["status"] == "pending"
    assert list(midtrans.transactions) == [f"{order['id']}-2"]
    # The first attempt, unknown at the gateway, is given up by the status job.
    later = ABANDON_AFTER.total_seconds() + 3600
    assert await paying.check(later=later) == 1
    midtrans.pay(f"{order['id']}-2")
    [answer] = await midtrans.notify(f"{order['id']}-2")
    assert answer.json() == {"outcome": "paid"}


async def test_a_customer_cancel_racing_a_settlement_has_one_outcome(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()
    await paying.start(order["id"])
    reference = f"{order['id']}-1"
    midtrans.pay(reference)

    cancel, _, _ = await asyncio.gather(
        paying.shop.post(paying.buyer, f"/orders/{order['id']}/cancel"),
        midtrans.notify(reference),
        paying.check(later=3600),
    )

    final = await paying.order(order["id"])
    # The status job ran an hour ahead: what it marked is due then.
    await paying.shop.release(utcnow() + timedelta(seconds=7200))
    refunded = midtrans.transactions[reference].transaction_status == "refund"
    assert [h["status"] for h in final["status_history"]] in (
        ["pending_payment", "processing"],
        ["pending_payment", "cancelled"],
    )
    if final["status"] == "processing":
        assert cancel.status_code == 409 and not refunded
    else:
        # Cancelled, and the money that came anyway goes back.
        assert cancel.status_code == 200 and refunded


async def test_xendit_callback_settles_the_invoice(
    via_xendit: Paying, xendit: XenditStandIn
) -> None:
    paying = via_xendit
    order, _ = await paying.pending()
    started = await paying.start(order["id"])
    invoice = xendit.only()
    assert invoice.external_id == f"{order['id']}-1" and invoice.amount == 184_000
    assert started["payment"]["redirect_url"].endswith(invoice.id)

    xendit.pay(invoice.id)
    answers = await xendit.notify(invoice.id, times=3)

    assert [a.json()["outcome"] for a in answers] == ["paid", "duplicate", "duplicate"]
    assert (await paying.order(order["id"]))["status"] == "processing"


async def test_xendit_callback_with_a_wrong_token_is_refused(
    via_xendit: Paying, xendit: XenditStandIn
) -> None:
    paying = via_xendit
    order, _ = await paying.pending()
    await paying.start(order["id"])
    invoice = xendit.only()
    xendit.pay(invoice.id)

    for token in ("", "not-the-token", CALLBACK_TOKEN[:-1]):
        [answer] = await xendit.notify(invoice.id, token=token)
        assert answer.status_code == 403

    assert (await paying.order(order["id"]))["status"] == "pending_payment"
    assert xendit.calls["status"] == 0


async def test_xendit_expired_invoice_and_the_status_job(
    via_xendit: Paying, xendit: XenditStandIn
) -> None:
    paying = via_xendit
    first, _ = await paying.pending()
    second, _ = await paying.pending()
    await paying.start(first["id"])
    await paying.start(second["id"])
    xendit.expire(xendit.by_external_id(f"{first['id']}-1").id)
    xendit.pay(xendit.by_external_id(f"{second['id']}-1").id)  # no callback: lost

    assert await paying.check(later=3600) == 2

    assert (await paying.order(first["id"]))["status"] == "cancelled"
    assert (await paying.order(second["id"]))["status"] == "processing"


async def test_xendit_payment_after_cancel_is_refunded(
    via_xendit: Paying, xendit: XenditStandIn
) -> None:
    paying = via_xendit
    order, _ = await paying.pending()
    await paying.start(order["id"])
    invoice = xendit.only()
    assert (
        await paying.shop.post(paying.buyer, f"/orders/{order['id']}/cancel")
    ).status_code == 200
    xendit.pay(invoice.id)
    [answer] = await xendit.notify(invoice.id)
    assert answer.json() == {"outcome": "refund_due"}
    await paying.shop.release()
    assert invoice.refunds == [f"{invoice.id}-refund"]


async def test_a_payment_applied_while_products_is_down_is_finished_by_the_status_job(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()
    await paying.start(order["id"])
    reference = f"{order['id']}-1"
    midtrans.pay(reference)
    await paying.shop.products_service.stop()
    try:
        [answer] = await midtrans.notify(reference)
        # Paid, and said so: the gateway need not resend; the stock waits for products.
        assert answer.status_code == 200 and answer.json() == {"outcome": "paid"}
        assert (await paying.order(order["id"]))["status"] == "pending_payment"
    finally:
        await paying.shop.products_service.start()

    assert await paying.check(later=60) == 1

    assert (await paying.order(order["id"]))["status"] == "processing"
    assert (await paying.shop.reservation(order["id"])).json()["status"] == "committed"


async def test_status_jobs_of_two_replicas_settle_a_payment_once(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()
    await paying.start(order["id"])
    midtrans.pay(f"{order['id']}-1")

    # Two jobs at once, each in its own transactions, as two replicas run them.
    checked = await asyncio.gather(paying.check(later=3600), paying.check(later=3600))

    assert sorted(checked) == [0, 1]
    assert midtrans.asked[f"{order['id']}-1"] == 1  # claimed by one, asked once
    paid = await paying.order(order["id"])
    assert [h["status"] for h in paid["status_history"]] == ["pending_payment", "processing"]


async def test_concurrent_requests_to_pay_make_one_gateway_payment(
    via_midtrans: Paying, midtrans: MidtransStandIn
) -> None:
    paying = via_midtrans
    order, _ = await paying.pending()

    answers = await asyncio.gather(*(paying.start(order["id"]) for _ in range(5)))

    assert midtrans.calls["snap"] == 1
    assert list(midtrans.transactions) == [f"{order['id']}-1"]
    assert all(a["payment"] == answers[0]["payment"] for a in answers)


def test_a_gateway_needs_its_keys() -> None:
    with pytest.raises(ValidationError, match="ORDERS_MIDTRANS_SERVER_KEY"):
        Settings(payment_provider="midtrans")
    with pytest.raises(ValidationError, match="ORDERS_XENDIT_CALLBACK_TOKEN"):
        Settings(payment_provider="xendit", xendit_secret_key="xnd_development_" + "k" * 20)
    with pytest.raises(ValidationError, match="midtrans_server_key must be at least 16"):
        Settings(
            environment="production",
            client_secret="s" * 32,
            payment_provider="midtrans",
            midtrans_server_key="short-key",
        )
    settings = Settings(payment_provider="midtrans", midtrans_server_key=SERVER_KEY)
    assert SERVER_KEY not in repr(settings)
