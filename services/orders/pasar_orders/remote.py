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
from pasar_orders.problems import OutOfStock, UnknownProduct

log = logging.getLogger("pasar.orders.remote")


class RemoteUser(BaseModel):
    id: str
    active: bool
    role: str | None = None


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


@dataclass
class ProductsApi:
    client: ServiceClient

    async def reserve(
        self, *, reservation_id: str, items: list[dict[str, Any]], ttl_seconds: int | None
    ) -> Reservation:
        body: dict[str, Any] = {"reservation_id": reservation_id, "items": items}
        if ttl_seconds is not None:
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
        code = _code(reply)
        if reply.status == 409 and code == "out_of_stock":
            shortages = reply.body.get("shortages", []) if isinstance(reply.body, dict) else []
            raise OutOfStock("Some items are not available in that quantity.", shortages=shortages)
        # Our own fields are valid by construction, so a 422 can only be about the
        # client's product ids.
        if reply.status == 422 or (reply.status == 404 and code == "product_not_found"):
            detail = reply.body.get("detail") if isinstance(reply.body, dict) else None
            extra = {
                key: reply.body[key]
                for key in ("product_ids", "unknown")
                if isinstance(reply.body, dict) and key in reply.body
            }
            raise UnknownProduct(detail or "An item is not a product on sale.", **extra)
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
