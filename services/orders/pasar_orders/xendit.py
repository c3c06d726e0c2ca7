"""Xendit: Invoices for the hosted payment page, its callback, status and refunds.

Written from Xendit's public API documentation, over the kit's HTTP client; no SDK.
Calls authenticate with HTTP Basic, the secret API key as the user name and an empty
password. A callback is believed only when its ``x-callback-token`` header equals the
account's verification token (compared in constant time); the shop then reads the
invoice back and acts on that answer.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

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

log = logging.getLogger("pasar.orders.xendit")

_STATES = {
    "PENDING": GatewayState.PENDING,
    "PAID": GatewayState.SETTLED,
    "SETTLED": GatewayState.SETTLED,
    "EXPIRED": GatewayState.EXPIRED,
}


def _instant(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


class XenditGateway:
    name = "xendit"

    def __init__(
        self,
        *,
        secret_key: str,
        callback_token: str,
        api: ServiceClient,
        return_url: str | None = None,
    ) -> None:
        self._callback_token = callback_token
        self._api = api
        self._return_url = return_url
        token = base64.b64encode(f"{secret_key}:".encode()).decode()
        self._auth = {"Authorization": f"Basic {token}"}

    async def close(self) -> None:
        await self._api.close()

    async def create(self, charge: Charge) -> Instructions:
        body: dict[str, Any] = {
            "external_id": charge.reference,
            "amount": charge.amount,
            "currency": charge.currency,
            "description": f"Order {charge.order_id}",
            "invoice_duration": max(60, charge.expires_in_seconds),
            "customer": {
                "given_names": charge.customer.name,
                "mobile_number": charge.customer.phone,
            },
            "items": [
                {"name": line.name, "quantity": line.quantity, "price": line.unit_price}
                for line in charge.lines
            ],
        }
        if self._return_url:
            body["success_redirect_url"] = self._return_url
        reply = await self._api.request(
            "POST", "/v2/invoices", json=body, headers=self._auth, authenticated=False
        )
        if reply.status not in (200, 201) or not isinstance(reply.body, dict):
            raise refused(self.name, reply.status, reply.body)
        return Instructions(
            gateway_id=str(reply.body["id"]),
            redirect_url=reply.body.get("invoice_url"),
            expires_at=_instant(reply.body.get("expiry_date")),
        )

    async def read_notification(self, body: bytes, headers: Mapping[str, str]) -> Report:
        given = headers.get("x-callback-token", "")
        if not hmac.compare_digest(given.encode(), self._callback_token.encode()):
            raise NotificationRefused("the x-callback-token does not match")
        try:
            note = json.loads(body)
            invoice_id = str(note["id"])
            reference = str(note["external_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise NotificationRefused("not a Xendit invoice callback") from exc
        report = await self.status(reference=reference, gateway_id=invoice_id)
        if report.state != GatewayState.UNKNOWN and report.reference != reference:
            raise NotificationRefused("the invoice belongs to another payment")
        return report

    async def status(self, *, reference: str, gateway_id: str | None) -> Report:
        if gateway_id is None:
            # The invoice was asked for but its answer lost: find it by our reference.
            reply = await self._api.request(
                "GET",
                "/v2/invoices",
                params={"external_id": reference},
                headers=self._auth,
                authenticated=False,
            )
            found = reply.body if reply.status == 200 and isinstance(reply.body, list) else []
            if not found:
                return Report(reference=reference, state=GatewayState.UNKNOWN, gateway_status="")
            body = found[0]
        else:
            reply = await self._api.request(
                "GET",
                f"/v2/invoices/{quote(gateway_id, safe='')}",
                headers=self._auth,
                authenticated=False,
            )
            if reply.status == 404:
                return Report(reference=reference, state=GatewayState.UNKNOWN, gateway_status="404")
            if reply.status != 200 or not isinstance(reply.body, dict):
                raise refused(self.name, reply.status, reply.body)
            body = reply.body
        status = str(body.get("status", ""))
        state = _STATES.get(status, GatewayState.PENDING)
        paid = body.get("paid_amount") if state == GatewayState.SETTLED else None
        return Report(
            reference=str(body.get("external_id", reference)),
            state=state,
            gateway_status=status[:32],
            amount=whole_amount(paid if paid is not None else body.get("amount")),
            currency=str(body.get("currency") or "IDR"),
            gateway_id=str(body.get("id")),
        )

    async def refund(self, *, order_id: str, reference: str) -> None:
        reply = await self._api.request(
            "POST",
            "/refunds",
            json={"invoice_id": reference, "reason": "CANCELLATION"},
            headers={**self._auth, "Idempotency-key": f"{reference}-refund"},
            authenticated=False,
            idempotent=True,
        )
        if reply.status in (200, 201):
            return
        if reply.status == 401:
            raise refused(self.name, reply.status, reply.body)  # a wrong key: retried
        # Some methods cannot be refunded through the API (virtual accounts, some
        # retail outlets): an operator gives the money back by hand.
        log.error(
            "Xendit refused to refund invoice %s (HTTP %s): refund it by hand",
            reference,
            reply.status,
            extra={"order_id": order_id},
        )
