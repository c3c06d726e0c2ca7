"""What the Order-Service asks of the User-Service and the Product-Service.

Thin typed wrappers over the kit's resilient ``ServiceClient``: they turn each answer
into a value or a domain problem, and anything unexpected (a 5xx, a timeout, a body
that is not what the contract says) into 503 ``dependency_unavailable``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from pasar_kit.http import Reply, ServiceClient
from pasar_kit.problems import DependencyUnavailable
from pasar_orders.problems import OrderTotalTooLarge, OutOfStock, UnknownProduct
from pasar_orders.schemas import MAX_ORDER_TOTAL

log = logging.getLogger("pasar.orders.remote")


class RemoteUser(BaseModel):
    id: str
    active: bool
    role: str | None = None
    # A User-Service that does not say predates verification: its accounts count as
    # verified (as its migration made them).
    email_verified: bool = True


class ReservedLine(BaseModel):
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: int
    currency: str


class Reservation(BaseModel):
    reservation_id: str
    status: str
    items: list[ReservedLine]


class NotificationResult(BaseModel):
    event_id: str
    outcome: str


class NotificationResults(BaseModel):
    results: list[NotificationResult]


# The most events the User-Service takes in one batch.
NOTIFY_BATCH_LIMIT = 100


class BatchRefused(Exception):
    """The User-Service would not take a batch of notifications as a whole: a version
    without the batch route (during a rolling update), or an event it finds invalid."""


class ReservationGone(Exception):
    """The reservation expired or was released before it could be committed."""


def _unexpected(service: str, reply: Reply) -> DependencyUnavailable:
    log.warning("unexpected answer from %s: HTTP %s", service, reply.status)
    return DependencyUnavailable(f"The {service} service gave an unexpected answer.")


def _code(reply: Reply) -> str | None:
    body = reply.body
    return body.get("code") if isinstance(body, dict) else None


@dataclass
class UsersApi:
    client: ServiceClient

    async def user(self, user_id: str) -> RemoteUser | None:
        """The user as the User-Service knows them, or None if it does not."""
        reply = await self.client.request("GET", f"/internal/users/{user_id}")
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise _unexpected("users", reply)
        try:
            return RemoteUser.model_validate(reply.body)
        except ValidationError as exc:
            raise _unexpected("users", reply) from exc

    async def notify(self, event: dict[str, Any]) -> None:
        """Hand one notification over; the User-Service dedupes on ``event_id``."""
        reply = await self.client.request(
            "POST", "/internal/notifications", json=event, idempotent=True
        )
        if not reply.ok:
            raise _unexpected("users", reply)

    async def notify_many(self, events: list[dict[str, Any]]) -> dict[str, str]:
        """Hand up to ``NOTIFY_BATCH_LIMIT`` notifications over in one request; the
        outcome of each event id: "stored", "duplicate" or "unknown_user".

        Raises ``BatchRefused`` when the User-Service will not take the batch as a whole.
        """
        reply = await self.client.request(
            "POST", "/internal/notifications/batch", json={"events": events}, idempotent=True
        )
        # 413: a batch of large orders over the body limit goes one event at a time.
        if reply.status in (404, 405, 413, 422):
            raise BatchRefused(reply.status)
        if reply.status != 200:
            raise _unexpected("users", reply)
        try:
            answer = NotificationResults.model_validate(reply.body)
        except ValidationError as exc:
            raise _unexpected("users", reply) from exc
        return {result.event_id: result.outcome for result in answer.results}


@dataclass
class ProductsApi:
    client: ServiceClient

    async def reserve(
        self,
        *,
        reservation_id: str,
        items: dict[str, int],
        ttl_seconds: int | None,
        commit: bool = False,
    ) -> Reservation:
        """Hold ``items`` (product id -> quantity) under ``reservation_id``; with ``commit``
        the hold is committed in the same call (no payment will follow)."""
        lines = [{"product_id": pid, "quantity": qty} for pid, qty in items.items()]
        body: dict[str, Any] = {"reservation_id": reservation_id, "items": lines}
        if commit:
            body["commit"] = True
        elif ttl_seconds is not None:
            body["ttl_seconds"] = ttl_seconds
        # Safe to repeat: the reservation is keyed by its id.
        reply = await self.client.request(
            "POST", "/internal/reservations", json=body, idempotent=True
        )
        if reply.status in (200, 201):
            try:
                reservation = Reservation.model_validate(reply.body)
            except ValidationError as exc:
                raise _unexpected("products", reply) from exc
            if reservation.reservation_id != reservation_id:
                raise _unexpected("products", reply)
            return reservation
        # Only our own words reach the customer: the Product-Service's texts are written
        # for the service that called it, not for a shopper (and name its internals).
        code = _code(reply)
        body = reply.body if isinstance(reply.body, dict) else {}
        if reply.status == 409 and code == "out_of_stock":
            raise OutOfStock(
                "Some items are not available in that quantity.",
                shortages=body.get("shortages", []),
            )
        if reply.status == 422 and code == "reservation_total_too_large":
            raise OrderTotalTooLarge(
                f"An order may be worth at most {MAX_ORDER_TOTAL}.", limit=MAX_ORDER_TOTAL
            )
        if (reply.status == 422 and code == "unknown_product") or (
            reply.status == 404 and code == "product_not_found"
        ):
            ids = body.get("product_ids")
            if isinstance(ids, list):
                raise UnknownProduct("Some items are not products on sale.", product_ids=ids)
            raise UnknownProduct("Some items are not products on sale.")
        if reply.status == 422:
            # The ids were checked here by the same rule, so products refusing the request
            # means the two services disagree on the contract (a deploy half done): the
            # customer learns no more than that an item cannot be ordered.
            log.error("the Product-Service refused a reservation: %s", body.get("detail"))
            raise UnknownProduct("Some items are not products on sale.")
        raise _unexpected("products", reply)

    async def commit(self, reservation_id: str) -> None:
        reply = await self.client.request(
            "POST", f"/internal/reservations/{reservation_id}/commit", idempotent=True
        )
        if reply.ok:
            return
        if reply.status in (404, 409):
            raise ReservationGone(_code(reply) or str(reply.status))
        raise _unexpected("products", reply)

    async def release(self, reservation_id: str, *, retry: bool = True) -> bool:
        """Give the stock back. False if no such reservation exists (nothing was held).

        ``retry=False`` makes one attempt only, for a best-effort release on a request's
        failure path where a background job will retry anyway.
        """
        reply = await self.client.request(
            "POST", f"/internal/reservations/{reservation_id}/release", idempotent=retry
        )
        if reply.ok:
            return True
        if reply.status == 404:
            return False
        raise _unexpected("products", reply)
