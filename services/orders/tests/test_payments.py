"""Payments with the test provider: pending orders, approvals, declines, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from orders_support import Account, Shop, ShopFactory

from pasar_kit.db import utcnow
from pasar_orders.payments import Card, PaymentResult, TestCardProvider, pay_order
from pasar_orders.problems import PaymentInProgress
from pasar_orders.recovery import expire_unpaid_orders
from pasar_orders.schemas import OrderPublic
from pasar_orders.tracking import Actor

APPROVE = {"card_number": "4242424242424242", "expiry": "12/30", "cvc": "123"}
DECLINE = {"card_number": "4000000000000002", "expiry": "12/30", "cvc": "123"}


@pytest.fixture
async def paying_shop(orders_shop_factory: ShopFactory) -> AsyncIterator[Shop]:
    async with orders_shop_factory(payment_provider="test", payment_window_seconds=600) as shop:
        yield shop


async def _pending(
    shop: Shop, buyer: Account, qty: int = 2
) -> tuple[dict[str, Any], dict[str, Any]]:
    shirt = await shop.product(stock=5, price=120_000)
    response = await shop.place(buyer, [(shirt["id"], qty)])
    assert response.status_code == 201, response.text
    return response.json(), shirt


class ForwardingGateway:
    """The test card gateway seen through a test's hands: each call reaches ``real``."""

    def __init__(self, real: TestCardProvider) -> None:
        self.real = real

    async def charge(
        self, *, order_id: str, amount: int, currency: str, card: Card
    ) -> PaymentResult:
        return await self.real.charge(
            order_id=order_id, amount=amount, currency=currency, card=card
        )

    async def refund(self, *, order_id: str, reference: str) -> None:
        await self.real.refund(order_id=order_id, reference=reference)


async def test_orders_wait_for_payment_on_a_held_reservation(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    order, shirt = await _pending(shop, buyer)
    assert order["status"] == "pending_payment"
    assert await shop.stock(shirt["id"]) == 3
    reservation = (await shop.reservation(order["id"])).json()
    assert reservation["status"] == "held"


async def test_approved_payment_moves_to_processing_and_commits(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    order, shirt = await _pending(shop, buyer)

    paid = await shop.post(buyer, f"/orders/{order['id']}/payments", APPROVE)

    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "processing"
    assert [h["status"] for h in paid.json()["status_history"]] == ["pending_payment", "processing"]
    assert (await shop.reservation(order["id"])).json()["status"] == "committed"
    assert await shop.stock(shirt["id"]) == 3
    # Paying again is a replay, not a second charge.
    again = await shop.post(buyer, f"/orders/{order['id']}/payments", APPROVE)
    assert again.status_code == 200 and again.json() == paid.json()


async def test_declined_payment_is_402_and_the_order_stays_payable(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    order, _ = await _pending(shop, buyer)

    declined = await shop.post(buyer, f"/orders/{order['id']}/payments", DECLINE)

    assert declined.status_code == 402
    assert declined.json()["code"] == "payment_declined"
    assert (await shop.get(buyer, f"/orders/{order['id']}")).json()["status"] == "pending_payment"
    paid = await shop.post(buyer, f"/orders/{order['id']}/payments", APPROVE)
    assert paid.status_code == 200 and paid.json()["status"] == "processing"


async def test_payment_rules(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer, other = await shop.customer(), await shop.customer()
    admin = await shop.make_admin()
    order, _ = await _pending(shop, buyer)
    path = f"/orders/{order['id']}/payments"
    assert (await shop.post(other, path, APPROVE)).status_code == 404
    assert (await shop.post(admin, path, APPROVE)).status_code == 403
    bad_number = {**APPROVE, "card_number": "4242424242424241"}
    assert (await shop.post(buyer, path, bad_number)).status_code == 422
    assert (await shop.post(buyer, path, {**APPROVE, "amount": 1})).status_code == 422
    assert (await shop.post(buyer, "/orders/nope/payments", APPROVE)).status_code == 404
    cancelled = await shop.post(buyer, f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200
    late = await shop.post(buyer, path, APPROVE)
    assert late.status_code == 409 and late.json()["code"] == "invalid_transition"


async def test_cancelling_a_pending_order_releases_its_hold(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    order, shirt = await _pending(shop, buyer, qty=4)
    assert (await shop.post(buyer, f"/orders/{order['id']}/cancel")).status_code == 200
    assert await shop.release() == 1
    assert await shop.stock(shirt["id"]) == 5


async def test_admin_moving_a_pending_order_on_commits_its_stock(paying_shop: Shop) -> None:
    shop = paying_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    order, _ = await _pending(shop, buyer)
    moved = await shop.post(admin, f"/orders/{order['id']}/status", {"status": "processing"})
    assert moved.status_code == 200
    assert (await shop.reservation(order["id"])).json()["status"] == "committed"


async def test_unpaid_orders_expire_and_release_their_stock(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    unpaid, shirt = await _pending(shop, buyer, qty=3)
    paid, _ = await _pending(shop, buyer, qty=1)
    assert (await shop.post(buyer, f"/orders/{paid['id']}/payments", APPROVE)).status_code == 200

    assert await expire_unpaid_orders(db=shop.db, now=utcnow(), window_seconds=600) == 0
    later = utcnow() + timedelta(seconds=601)
    assert await expire_unpaid_orders(db=shop.db, now=later, window_seconds=600) == 1
    assert await expire_unpaid_orders(db=shop.db, now=later, window_seconds=600) == 0

    expired = (await shop.get(buyer, f"/orders/{unpaid['id']}")).json()
    assert expired["status"] == "cancelled"
    assert expired["status_history"][-1]["by"] == "system"
    assert await shop.release(later) == 1
    assert await shop.stock(shirt["id"]) == 5
    assert (await shop.get(buyer, f"/orders/{paid['id']}")).json()["status"] == "processing"


async def test_payments_disabled_without_a_provider(orders_shop: Shop) -> None:
    shop = orders_shop
    buyer = await shop.customer()
    shirt = await shop.product()
    order = (await shop.place(buyer, [(shirt["id"], 1)])).json()
    response = await shop.post(buyer, f"/orders/{order['id']}/payments", APPROVE)
    assert response.status_code == 409
    assert response.json()["code"] == "payments_disabled"


async def test_the_test_provider_charges_once_per_order() -> None:
    provider = TestCardProvider()
    card = Card(number="4242424242424242", expiry="12/30", cvc="123")
    results = await asyncio.gather(
        *(provider.charge(order_id="o-1", amount=10, currency="IDR", card=card) for _ in range(5))
    )
    assert len({r.reference for r in results}) == 1 and all(r.approved for r in results)
    declined = await provider.charge(
        order_id="o-2", amount=10, currency="IDR", card=Card("4000000000000002", "12/30", "123")
    )
    assert not declined.approved and declined.decline_reason == "card_declined"
    assert "4000" not in repr(Card("4000000000000002", "12/30", "123"))
    expired = await provider.charge(
        order_id="o-3", amount=10, currency="IDR", card=Card("4242424242424242", "01/20", "123")
    )
    assert not expired.approved and expired.decline_reason == "expired_card"


async def test_cancelling_a_paid_order_refunds_it_with_its_stock(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    order, shirt = await _pending(shop, buyer, qty=2)
    assert (await shop.post(buyer, f"/orders/{order['id']}/payments", APPROVE)).status_code == 200
    assert (await shop.post(buyer, f"/orders/{order['id']}/cancel")).status_code == 200

    assert await shop.release() == 1

    provider = shop.runtime.payments
    assert isinstance(provider, TestCardProvider)
    assert order["id"] in provider.refunded
    assert await shop.stock(shirt["id"]) == 5


async def test_an_order_cancelled_while_its_card_is_charged_is_refunded(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    order, shirt = await _pending(shop, buyer, qty=2)
    assert await shop.stock(shirt["id"]) == 3  # held by the order until it is settled
    real = shop.runtime.payments
    assert isinstance(real, TestCardProvider)

    class CancelledMeanwhile(ForwardingGateway):
        """The gateway is slow; the customer cancels in another tab meanwhile."""

        async def charge(
            self, *, order_id: str, amount: int, currency: str, card: Card
        ) -> PaymentResult:
            assert (await shop.post(buyer, f"/orders/{order['id']}/cancel")).status_code == 200
            return await super().charge(
                order_id=order_id, amount=amount, currency=currency, card=card
            )

    shop.runtime.payments = CancelledMeanwhile(real)
    late = await shop.post(buyer, f"/orders/{order['id']}/payments", APPROVE)
    assert late.status_code == 409 and late.json()["code"] == "invalid_transition"

    while await shop.release():
        pass
    assert order["id"] in real.refunded
    assert await shop.stock(shirt["id"]) == 5
    assert (await shop.get(buyer, f"/orders/{order['id']}")).json()["status"] == "cancelled"


class CountingGateway(ForwardingGateway):
    """The test gateway behind a slow network: counts the charges that reach it."""

    def __init__(self, real: TestCardProvider, delay: float = 0.2) -> None:
        super().__init__(real)
        self.delay = delay
        self.charges = 0

    async def charge(
        self, *, order_id: str, amount: int, currency: str, card: Card
    ) -> PaymentResult:
        self.charges += 1
        await asyncio.sleep(self.delay)
        return await super().charge(order_id=order_id, amount=amount, currency=currency, card=card)


async def test_concurrent_payments_charge_once_and_all_answer_the_paid_order(
    paying_shop: Shop,
) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    order, shirt = await _pending(shop, buyer)
    real = shop.runtime.payments
    assert isinstance(real, TestCardProvider)
    gateway = CountingGateway(real)
    shop.runtime.payments = gateway
    path = f"/orders/{order['id']}/payments"

    answers = await asyncio.gather(*(shop.post(buyer, path, APPROVE) for _ in range(8)))

    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    assert gateway.charges == 1
    bodies = [a.json() for a in answers]
    assert all(b == bodies[0] for b in bodies)
    assert bodies[0]["status"] == "processing"
    assert [h["status"] for h in bodies[0]["status_history"]] == ["pending_payment", "processing"]
    assert (await shop.reservation(order["id"])).json()["status"] == "committed"
    assert await shop.stock(shirt["id"]) == 3


async def test_a_payment_racing_a_declined_card_tries_its_own(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    order, _ = await _pending(shop, buyer)
    real = shop.runtime.payments
    assert isinstance(real, TestCardProvider)
    gateway = CountingGateway(real)
    shop.runtime.payments = gateway
    path = f"/orders/{order['id']}/payments"

    declined, approved = await asyncio.gather(
        shop.post(buyer, path, DECLINE), shop.post(buyer, path, APPROVE)
    )

    # Whichever card reached the gateway first, the good one pays the order once.
    assert approved.status_code == 200, approved.text
    assert declined.status_code in (200, 402), declined.text
    assert gateway.charges == (2 if declined.status_code == 402 else 1)
    assert (await shop.get(buyer, f"/orders/{order['id']}")).json()["status"] == "processing"


async def test_a_payment_waits_only_so_long_for_another_in_flight(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    order, _ = await _pending(shop, buyer)
    real = shop.runtime.payments
    assert isinstance(real, TestCardProvider)
    slow = CountingGateway(real, delay=1.0)
    card = Card(number=APPROVE["card_number"], expiry="12/30", cvc="123")
    payer = Actor(id=buyer.id)

    async def pay(wait: float) -> OrderPublic:
        return await pay_order(
            db=shop.db,
            products=shop.runtime.products,
            provider=slow,
            order_id=order["id"],
            payer=payer,
            card=card,
            now=utcnow(),
            wait_seconds=wait,
        )

    first = asyncio.create_task(pay(10.0))
    await asyncio.sleep(0.3)  # the first payment is at the gateway now
    with pytest.raises(PaymentInProgress) as caught:
        await pay(0.1)
    assert caught.value.status == 409 and caught.value.headers["Retry-After"] == "1"
    assert (await first).status == "processing"
    assert slow.charges == 1


async def test_paying_again_answers_the_paid_order_as_it_now_is(paying_shop: Shop) -> None:
    shop = paying_shop
    admin = await shop.make_admin()
    buyer = await shop.customer()
    order, _ = await _pending(shop, buyer)
    path = f"/orders/{order['id']}/payments"
    assert (await shop.post(buyer, path, APPROVE)).status_code == 200
    shipped = await shop.post(admin, f"/orders/{order['id']}/status", {"status": "shipped"})
    assert shipped.status_code == 200

    again = await shop.post(buyer, path, APPROVE)

    assert again.status_code == 200, again.text
    assert again.json()["status"] == "shipped"
    provider = shop.runtime.payments
    assert isinstance(provider, TestCardProvider)
    # A paid order that was then cancelled was refunded: it cannot be paid again.
    other, _ = await _pending(shop, buyer)
    other_path = f"/orders/{other['id']}/payments"
    assert (await shop.post(buyer, other_path, APPROVE)).status_code == 200
    assert (await shop.post(buyer, f"/orders/{other['id']}/cancel")).status_code == 200
    late = await shop.post(buyer, other_path, APPROVE)
    assert late.status_code == 409 and late.json()["code"] == "invalid_transition"


async def test_card_fields_take_ascii_digits_only(paying_shop: Shop) -> None:
    shop = paying_shop
    buyer = await shop.customer()
    order, _ = await _pending(shop, buyer)
    for card in (
        {**APPROVE, "card_number": "\u0664\u0662\u0664\u0662" * 4},  # Arabic-Indic 4242...
        {**APPROVE, "card_number": "\uff14\uff12\uff14\uff12" * 4},  # fullwidth 4242...
        {**APPROVE, "card_number": "4242 4242 4242 424\u0662"},
        {**APPROVE, "cvc": "\u0661\u0662\u0663"},
        {**APPROVE, "cvc": "12\u00b3"},
        {**APPROVE, "expiry": "\uff11\uff12/30"},
    ):
        response = await shop.post(buyer, f"/orders/{order['id']}/payments", card)
        assert response.status_code == 422, (card, response.text)
        assert response.json()["code"] == "validation_error"
    assert (await shop.get(buyer, f"/orders/{order['id']}")).json()["status"] == "pending_payment"
