"""Midtrans: Snap for the hosted payment page, the core API for status and refunds.

Written from Midtrans' public API documentation, over the kit's HTTP client (timeouts,
retries of idempotent calls, a circuit breaker); no SDK. Every call authenticates with
HTTP Basic, the server key as the user name and an empty password.

A notification is believed only when its ``signature_key`` is
SHA-512(order_id + status_code + gross_amount + server key), and even then the shop acts
on what a status query answers, not on the notification's own fields.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import quote

from pasar_kit.db import utcnow
from pasar_kit.http import ServiceClient
from pasar_orders.gateways import (
    Charge,
    GatewayState,
    Instructions,
    NotificationRefused,
    Report,
    refused,
    whole_amount,
)

log = logging.getLogger("pasar.orders.midtrans")

# The time zone Midtrans reads ``expiry.start_time`` in when it carries an offset.
_WIB = timezone(timedelta(hours=7))
# Midtrans' limit on an item's name and id.
_ITEM_TEXT = 50

_STATES = {
    "settlement": GatewayState.SETTLED,
    "pending": GatewayState.PENDING,
    "authorize": GatewayState.PENDING,
    "expire": GatewayState.EXPIRED,
    "cancel": GatewayState.FAILED,
    "deny": GatewayState.FAILED,
    "failure": GatewayState.FAILED,
    "refund": GatewayState.REFUNDED,
    "partial_refund": GatewayState.REFUNDED,
}


def signature(*, order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    text = order_id + status_code + gross_amount + server_key
    return hashlib.sha512(text.encode()).hexdigest()


def _state(body: Mapping[str, Any]) -> GatewayState:
    status = str(body.get("transaction_status", ""))
    if status == "capture":
        # A card payment: taken only once the fraud check accepts it.
        return (
            GatewayState.SETTLED if body.get("fraud_status") == "accept" else GatewayState.PENDING
        )
    return _STATES.get(status, GatewayState.PENDING)


class MidtransGateway:
    name = "midtrans"

    def __init__(
        self,
        *,
        server_key: str,
        snap: ServiceClient,
        api: ServiceClient,
        return_url: str | None = None,
    ) -> None:
        self._server_key = server_key
        self._snap = snap
        self._api = api
        self._return_url = return_url
        token = base64.b64encode(f"{server_key}:".encode()).decode()
        self._auth = {"Authorization": f"Basic {token}"}

    async def close(self) -> None:
        await self._snap.close()
        await self._api.close()

    async def create(self, charge: Charge) -> Instructions:
        minutes = max(1, charge.expires_in_seconds // 60)
        body: dict[str, Any] = {
            "transaction_details": {
                "order_id": charge.reference,
                "gross_amount": charge.amount,
            },
            "item_details": [
                {
                    "id": line.sku[:_ITEM_TEXT],
                    "name": line.name[:_ITEM_TEXT],
                    "price": line.unit_price,
                    "quantity": line.quantity,
                }
                for line in charge.lines
            ],
            "customer_details": {
                "first_name": charge.customer.name,
                "phone": charge.customer.phone,
            },
            "expiry": {
                "start_time": utcnow().astimezone(_WIB).strftime("%Y-%m-%d %H:%M:%S %z"),
                "unit": "minute",
                "duration": minutes,
            },
        }
        if self._return_url:
            body["callbacks"] = {"finish": self._return_url}
        # Not retried: Snap refuses an order id twice, so a lost answer is a new attempt.
        reply = await self._snap.request(
            "POST", "/snap/v1/transactions", json=body, headers=self._auth, authenticated=False
        )
        if reply.status not in (200, 201) or not isinstance(reply.body, dict):
            raise refused(self.name, reply.status, reply.body)
        return Instructions(
            gateway_id=str(reply.body.get("token") or "") or None,
            redirect_url=reply.body.get("redirect_url"),
            expires_at=utcnow() + timedelta(minutes=minutes),
        )

    async def read_notification(self, body: bytes, headers: Mapping[str, str]) -> Report:
        try:
            note = json.loads(body)
            order_id = str(note["order_id"])
            given = str(note["signature_key"])
            expected = signature(
                order_id=order_id,
                status_code=str(note["status_code"]),
                gross_amount=str(note["gross_amount"]),
                server_key=self._server_key,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise NotificationRefused("not a Midtrans notification") from exc
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise NotificationRefused("the signature_key does not match")
        # Signed, but acted on only as the gateway answers a query for it now.
        return await self.status(reference=order_id, gateway_id=None)

    async def status(self, *, reference: str, gateway_id: str | None) -> Report:
        reply = await self._api.request(
            "GET",
            f"/v2/{quote(reference, safe='')}/status",
            headers=self._auth,
            authenticated=False,
        )
        body = reply.body if isinstance(reply.body, dict) else {}
        if reply.status == 404 or str(body.get("status_code")) == "404":
            return Report(reference=reference, state=GatewayState.UNKNOWN, gateway_status="404")
        if reply.status != 200 or str(body.get("order_id")) != reference:
            raise refused(self.name, reply.status, body)
        va_numbers = body.get("va_numbers") or []
        va = va_numbers[0].get("va_number") if va_numbers else body.get("permata_va_number")
        return Report(
            reference=reference,
            state=_state(body),
            gateway_status=str(body.get("transaction_status", ""))[:32],
            amount=whole_amount(body.get("gross_amount")),
            currency=str(body.get("currency") or "IDR"),
            gateway_id=body.get("transaction_id"),
            va_number=va,
            qr_string=body.get("qr_string"),
        )

    async def refund(self, *, order_id: str, reference: str) -> None:
        # The refund key makes repeating the call (a retried settlement) refund once.
        reply = await self._api.request(
            "POST",
            f"/v2/{quote(reference, safe='')}/refund",
            json={"refund_key": f"{reference}-refund", "reason": "Order cancelled"},
            headers=self._auth,
            authenticated=False,
            idempotent=True,
        )
        body = reply.body if isinstance(reply.body, dict) else {}
        code = str(body.get("status_code", reply.status))
        if reply.status == 200 and code in ("200", "201"):
            return
        if reply.status == 401 or code == "401":
            raise refused(self.name, reply.status, body)  # a wrong key: retried until fixed
        # Midtrans refuses refunds of some methods (bank transfers) for good: retrying
        # cannot help, an operator must give the money back by hand.
        log.error(
            "Midtrans refused to refund %s (status_code %s): refund it by hand",
            reference,
            code,
            extra={"order_id": order_id},
        )
