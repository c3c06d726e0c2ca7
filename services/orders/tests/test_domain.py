"""The domain rules on their own: status machine, placement decisions, keys, messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from testdata import ADDRESS

from pasar_kit.problems import DependencyUnavailable
from pasar_kit.workers import retry_delay
from pasar_orders.idempotency import fingerprint, validate_key
from pasar_orders.outbox import message_for, short_id
from pasar_orders.placement import merge_lines, price_lines
from pasar_orders.problems import (
    InvalidIdempotencyKey,
    InvalidTransition,
    OrderTotalTooLarge,
    TooManyOfOneProduct,
)
from pasar_orders.remote import Reservation
from pasar_orders.schemas import OrderCreate, OrderLineIn, PaymentIn
from pasar_orders.status import (
    PLACING,
    TRANSITIONS,
    OrderStatus,
    check_transition,
    initial_status,
)

S = OrderStatus
ALLOWED = {
    (S.PENDING_PAYMENT, S.PROCESSING),
    (S.PENDING_PAYMENT, S.CANCELLED),
    (S.PROCESSING, S.SHIPPED),
    (S.PROCESSING, S.CANCELLED),
    (S.SHIPPED, S.COMPLETED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_only_the_contract_transitions_are_allowed(current: S, target: S) -> None:
    if (current, target) in ALLOWED:
        check_transition(current.value, target)
    else:
        with pytest.raises(InvalidTransition) as caught:
            check_transition(current.value, target)
        assert caught.value.status == 409 and caught.value.code == "invalid_transition"


def test_the_transition_table_is_exactly_the_contract() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


def test_internal_states_cannot_be_moved_by_anyone() -> None:
    with pytest.raises(InvalidTransition):
        check_transition(PLACING, S.PROCESSING)


def test_effects_of_transitions() -> None:
    assert check_transition("processing", S.CANCELLED).release_stock
    assert check_transition("pending_payment", S.CANCELLED).release_stock
    assert not check_transition("processing", S.SHIPPED).release_stock
    paid = check_transition("pending_payment", S.PROCESSING)
    assert paid.commit_reservation and not paid.release_stock
    assert not check_transition("shipped", S.COMPLETED).commit_reservation


def test_initial_status_depends_on_payments() -> None:
    assert initial_status(payments_enabled=False) == S.PROCESSING
    assert initial_status(payments_enabled=True) == S.PENDING_PAYMENT


def test_duplicate_lines_are_merged_in_first_seen_order() -> None:
    lines = [
        OrderLineIn(product_id="b", quantity=2),
        OrderLineIn(product_id="a", quantity=1),
        OrderLineIn(product_id="b", quantity=3),
    ]
    assert list(merge_lines(lines).items()) == [("b", 5), ("a", 1)]


def test_merged_quantity_over_the_limit_is_refused() -> None:
    lines = [OrderLineIn(product_id="a", quantity=600), OrderLineIn(product_id="a", quantity=401)]
    with pytest.raises(TooManyOfOneProduct) as caught:
        merge_lines(lines)
    assert caught.value.status == 422


def _reservation(*lines: tuple[str, int, int], currency: str = "IDR") -> Reservation:
    return Reservation.model_validate(
        {
            "reservation_id": "r",
            "status": "held",
            "items": [
                {
                    "product_id": pid,
                    "sku": f"SKU-{pid}",
                    "name": pid,
                    "quantity": qty,
                    "unit_price": price,
                    "currency": currency,
                }
                for pid, qty, price in lines
            ],
        }
    )


def test_prices_come_from_the_reservation() -> None:
    wanted = {"a": 2, "b": 1}
    priced = price_lines(_reservation(("b", 1, 500), ("a", 2, 1_000)), wanted)
    assert [(p.product_id, p.unit_price, p.line_total) for p in priced] == [
        ("a", 1_000, 2_000),
        ("b", 500, 500),
    ]


@pytest.mark.parametrize(
    "reservation",
    [
        _reservation(("a", 1, 1_000)),  # a line missing
        _reservation(("a", 2, 1_000), ("c", 1, 5)),  # a line we did not ask for
        _reservation(("a", 3, 1_000), ("b", 1, 5)),  # a different quantity
        _reservation(("a", 2, -1), ("b", 1, 5)),  # a negative price
    ],
)
def test_a_reservation_that_does_not_match_the_request_is_garbage(
    reservation: Reservation,
) -> None:
    wanted = {"a": 2, "b": 1}
    with pytest.raises(DependencyUnavailable):
        price_lines(reservation, wanted)


def test_fingerprint_is_canonical() -> None:
    one = OrderCreate.model_validate(
        {"items": [{"product_id": "a", "quantity": 1}], "shipping_address": ADDRESS}
    )
    same = OrderCreate.model_validate(
        {
            "shipping_address": dict(reversed(ADDRESS.items())),
            "items": [{"quantity": 1, "product_id": "a"}],
        }
    )
    other = OrderCreate.model_validate(
        {"items": [{"product_id": "a", "quantity": 2}], "shipping_address": ADDRESS}
    )
    assert fingerprint(one) == fingerprint(same) != fingerprint(other)


@pytest.mark.parametrize("key", ["k", "a" * 255, "order-2026-11-25 #1", "~!@"])
def test_valid_idempotency_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", ["", "a" * 256, "caf\u00e9", "tab\there", "new\nline"])
def test_invalid_idempotency_keys(key: str) -> None:
    with pytest.raises(InvalidIdempotencyKey):
        validate_key(key)


def test_messages_a_customer_understands() -> None:
    order_id = "1a2b3c4d-0000-4000-8000-000000000000"
    assert short_id(order_id) == "1A2B3C4D"
    assert message_for(order_id, "processing", created=True) == (
        "Order #1A2B3C4D has been placed and is being processed."
    )
    assert message_for(order_id, "shipped", created=False) == "Order #1A2B3C4D has been shipped."
    assert message_for(order_id, "cancelled", created=False) == (
        "Order #1A2B3C4D has been cancelled."
    )


def test_backoff_grows_and_is_capped() -> None:
    delays = [retry_delay(n, base=0.5, cap=60) for n in range(1, 12)]
    assert delays[0] <= timedelta(seconds=0.6)
    assert delays[3] >= timedelta(seconds=3)
    assert all(d <= timedelta(seconds=72) for d in delays)


@pytest.mark.parametrize(
    "body",
    [
        {"items": [], "shipping_address": ADDRESS},
        {"items": [{"product_id": "a", "quantity": 0}], "shipping_address": ADDRESS},
        {"items": [{"product_id": "a", "quantity": 1001}], "shipping_address": ADDRESS},
        {"items": [{"product_id": "a", "quantity": 1.5}], "shipping_address": ADDRESS},
        {"items": [{"product_id": "a", "quantity": "2"}], "shipping_address": ADDRESS},
        {
            "items": [{"product_id": "a", "quantity": 1, "unit_price": 1}],
            "shipping_address": ADDRESS,
        },
        {"items": [{"product_id": "a", "quantity": 1}], "shipping_address": ADDRESS, "total": 1},
        {
            "items": [{"product_id": "a", "quantity": 1}],
            "shipping_address": ADDRESS,
            "user_id": "x",
        },
        {
            "items": [{"product_id": "a", "quantity": 1}],
            "shipping_address": ADDRESS,
            "status": "shipped",
        },
        {"items": [{"product_id": "a", "quantity": 1}]},
        {
            "items": [{"product_id": "a", "quantity": 1}],
            "shipping_address": ADDRESS | {"city": " "},
        },
        {
            "items": [{"product_id": "a", "quantity": 1}],
            "shipping_address": ADDRESS | {"line1": "x" * 201},
        },
        {
            "items": [{"product_id": f"p{i}", "quantity": 1} for i in range(101)],
            "shipping_address": ADDRESS,
        },
    ],
)
def test_invalid_order_bodies_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        OrderCreate.model_validate(body)


def test_card_numbers_must_pass_luhn_and_never_print() -> None:
    card = PaymentIn.model_validate(
        {"card_number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"}
    )
    assert card.card_number.get_secret_value() == "4242424242424242"
    assert "4242" not in repr(card)
    with pytest.raises(ValidationError):
        PaymentIn.model_validate(
            {"card_number": "4242424242424241", "expiry": "12/30", "cvc": "123"}
        )
    with pytest.raises(ValidationError):
        PaymentIn.model_validate(
            {"card_number": "4242424242424242", "expiry": "13/30", "cvc": "123"}
        )


def test_a_priced_order_over_the_largest_amount_is_refused() -> None:
    wanted = {"a": 1000, "b": 1}
    reservation = _reservation(("a", 1000, 10**12), ("b", 1, 1))
    with pytest.raises(OrderTotalTooLarge) as caught:
        price_lines(reservation, wanted)
    assert caught.value.status == 422 and caught.value.extra == {"limit": 10**15}
    exactly = _reservation(("a", 1000, 10**12), ("b", 1, 0))
    assert sum(line.line_total for line in price_lines(exactly, wanted)) == 10**15
