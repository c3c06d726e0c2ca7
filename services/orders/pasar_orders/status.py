"""The order status machine: the one place that says which change is allowed.

Pure rules, no I/O: callers ask ``check_transition`` before they write, and the write
itself is a conditional update on the status they checked, so a race has one winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pasar_orders.problems import InvalidTransition


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# Internal states, never shown to anyone: a placement in progress, and one whose
# clean-up a recovery worker has claimed.
PLACING = "placing"
RECOVERING = "recovering"
INTERNAL_STATUSES = (PLACING, RECOVERING)

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset({OrderStatus.PROCESSING, OrderStatus.CANCELLED}),
    OrderStatus.PROCESSING: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.COMPLETED}),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


@dataclass(frozen=True)
class Effects:
    """What a transition must do besides changing the status."""

    commit_reservation: bool = False  # the stock stops being a hold with a deadline
    release_stock: bool = False  # the stock goes back to the shop


def initial_status(*, payments_enabled: bool) -> OrderStatus:
    return OrderStatus.PENDING_PAYMENT if payments_enabled else OrderStatus.PROCESSING


def check_transition(current: str, target: OrderStatus) -> Effects:
    """The effects of ``current -> target``, or ``InvalidTransition``."""
    try:
        allowed = TRANSITIONS[OrderStatus(current)]
    except ValueError:
        allowed = frozenset()
    if target not in allowed:
        raise InvalidTransition(
            f"An order in {current!r} cannot become {target.value!r}.",
            current_status=current,
            requested_status=target.value,
        )
    return Effects(
        commit_reservation=current == OrderStatus.PENDING_PAYMENT
        and target == OrderStatus.PROCESSING,
        release_stock=target == OrderStatus.CANCELLED,
    )
