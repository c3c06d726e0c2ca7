"""An order's story as the shopper follows it: placed, paid, processing, shipped,
completed (or cancelled), each step with when it happened and any note."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pasar_web.i18n import gettext as _
from pasar_web.i18n import lazy
from pasar_web.models import Order

STATUS_LABELS: dict[str, str] = {
    "pending_payment": lazy("Waiting for payment"),
    "processing": lazy("Processing"),
    "shipped": lazy("Shipped"),
    "completed": lazy("Completed"),
    "cancelled": lazy("Cancelled"),
}
_STEP_LABELS: dict[str, str] = {
    "placed": lazy("Placed"),
    "paid": lazy("Paid"),
    "processing": lazy("Processing"),
    "shipped": lazy("Shipped"),
    "completed": lazy("Completed"),
    "cancelled": lazy("Cancelled"),
}


def status_label(status: str) -> str:
    return _(STATUS_LABELS.get(status, status))


def short_id(order_id: str) -> str:
    """The order number people read out: ``#1A2B3C4D`` (as the notifications say it)."""
    return "#" + order_id.replace("-", "")[:8].upper()


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    at: datetime | None
    note: str | None
    done: bool
    current: bool


def timeline(order: Order) -> list[Step]:
    reached: dict[str, tuple[datetime, str | None]] = {}
    history = order.status_history
    for entry in history:
        reached.setdefault(entry.status, (entry.at, entry.note))
    paid_online = "pending_payment" in reached
    keys = ["placed", *(["paid"] if paid_online else []), "processing", "shipped", "completed"]
    when: dict[str, tuple[datetime, str | None]] = {"placed": (order.created_at, None)}
    for key in ("processing", "shipped", "completed", "cancelled"):
        if key in reached:
            when[key] = reached[key]
    if paid_online and "processing" in reached:
        when["paid"] = reached["processing"][0], None
    if "cancelled" in reached:
        keys = [key for key in keys if key in when] + ["cancelled"]
    current = history[-1].status if history else order.status
    steps = []
    for key in keys:
        at, note = when.get(key, (None, None))
        steps.append(
            Step(
                key=key,
                label=_(_STEP_LABELS[key]),
                at=at,
                note=note,
                done=key in when,
                current=key == current,
            )
        )
    return steps
