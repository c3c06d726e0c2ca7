"""A stand-in for Midtrans: Snap (``POST /snap/v1/transactions``) and the core API
(``GET /v2/{order_id}/status``, ``POST /v2/{order_id}/refund``), as documented, and its
HTTP notification signed with SHA-512(order_id + status_code + gross_amount + key)."""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateways import basic_user

SERVER_KEY = "SB-Mid-server-standin-test-key-0001"

# Midtrans' status_code per transaction_status.
_CODES = {
    "settlement": "200",
    "capture": "200",
    "pending": "201",
    "deny": "202",
    "cancel": "200",
    "expire": "407",
    "refund": "200",
}


def sign(order_id: str, status_code: str, gross_amount: str, key: str = SERVER_KEY) -> str:
    return hashlib.sha512((order_id + status_code + gross_amount + key).encode()).hexdigest()


@dataclass
class Transaction:
    order_id: str
    gross_amount: int
    currency: str = "IDR"
    transaction_status: str = "pending"
    payment_type: str | None = None
    transaction_id: str = field(default_factory=lambda: secrets.token_hex(16))
    va_numbers: list[dict[str, str]] = field(default_factory=list)
    qr_string: str | None = None
    refund_keys: list[str] = field(default_factory=list)

    def as_status(self) -> dict[str, Any]:
        code = _CODES[self.transaction_status]
        gross = f"{self.gross_amount}.00"
        body: dict[str, Any] = {
            "status_code": code,
            "status_message": "Success, transaction is found",
            "transaction_id": self.transaction_id,
            "order_id": self.order_id,
            "gross_amount": gross,
            "currency": self.currency,
            "payment_type": self.payment_type or "qris",
            "transaction_time": "2026-11-26 20:00:00",
            "transaction_status": self.transaction_status,
            "fraud_status": "accept",
            "signature_key": sign(self.order_id, code, gross),
        }
        if self.va_numbers:
            body["va_numbers"] = self.va_numbers
        if self.qr_string:
            body["qr_string"] = self.qr_string
        return body


class MidtransStandIn:
    """Keeps Snap transactions in memory; a test moves them and sends notifications."""

    def __init__(self, *, server_key: str = SERVER_KEY) -> None:
        self.server_key = server_key
        self.transactions: dict[str, Transaction] = {}
        self.calls: Counter[str] = Counter()
        self.asked: Counter[str] = Counter()  # status queries per order id
        self.notify_url = ""  # the shop's notification URL, as set in the dashboard
        self.down = False  # answer every call 503, as a gateway in trouble
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()

        def refuse(request: Request) -> JSONResponse | None:
            if self.down:
                return JSONResponse({"error_messages": ["unavailable"]}, status_code=503)
            if basic_user(request) != self.server_key:
                return JSONResponse(
                    {"status_code": "401", "error_messages": ["Access denied"]}, status_code=401
                )
            return None

        @app.post("/snap/v1/transactions")
        async def snap(request: Request) -> JSONResponse:
            self.calls["snap"] += 1
            if (refusal := refuse(request)) is not None:
                return refusal
            body = await request.json()
            details = body["transaction_details"]
            order_id = str(details["order_id"])
            gross = int(details["gross_amount"])
            items = body.get("item_details") or []
            if items and sum(i["price"] * i["quantity"] for i in items) != gross:
                return JSONResponse(
                    {"error_messages": ["transaction_details.gross_amount is not equal to "
                                        "the sum of item_details"]},
                    status_code=400,
                )  # fmt: skip
            if order_id in self.transactions:
                return JSONResponse(
                    {"error_messages": ["transaction_details.order_id sudah digunakan"]},
                    status_code=400,
                )
            self.transactions[order_id] = Transaction(order_id=order_id, gross_amount=gross)
            token = secrets.token_hex(18)
            return JSONResponse(
                {"token": token, "redirect_url": f"{request.base_url}snap/v4/redirection/{token}"},
                status_code=201,
            )

        @app.get("/v2/{order_id}/status")
        async def status(order_id: str, request: Request) -> JSONResponse:
            self.calls["status"] += 1
            if (refusal := refuse(request)) is not None:
                return refusal
            self.asked[order_id] += 1
            transaction = self._find(order_id)
            if transaction is None:
                return JSONResponse(
                    {"status_code": "404", "status_message": "Transaction doesn't exist."},
                    status_code=404,
                )
            return JSONResponse(transaction.as_status())

        @app.post("/v2/{order_id}/refund")
        async def refund(order_id: str, request: Request) -> JSONResponse:
            self.calls["refund"] += 1
            if (refusal := refuse(request)) is not None:
                return refusal
            transaction = self._find(order_id)
            if transaction is None:
                return JSONResponse({"status_code": "404"}, status_code=404)
            key = (await request.json()).get("refund_key", "")
            if key in transaction.refund_keys:
                return JSONResponse({**transaction.as_status(), "refund_key": key})
            if transaction.transaction_status not in ("settlement", "capture"):
                return JSONResponse(
                    {"status_code": "412", "status_message": "Transaction status cannot be "
                     "updated."},
                )  # fmt: skip
            transaction.refund_keys.append(key)
            transaction.transaction_status = "refund"
            return JSONResponse({**transaction.as_status(), "refund_key": key})

        return app

    def _find(self, order_or_transaction_id: str) -> Transaction | None:
        if order_or_transaction_id in self.transactions:
            return self.transactions[order_or_transaction_id]
        return next(
            (t for t in self.transactions.values() if t.transaction_id == order_or_transaction_id),
            None,
        )

    # --- what a test does as the customer and the gateway -----------------------------

    def only(self) -> Transaction:
        """The one transaction a test made."""
        assert len(self.transactions) == 1, list(self.transactions)
        return next(iter(self.transactions.values()))

    def choose_virtual_account(self, order_id: str, bank: str = "bca") -> None:
        transaction = self.transactions[order_id]
        transaction.payment_type = "bank_transfer"
        transaction.va_numbers = [
            {"bank": bank, "va_number": f"12345{secrets.randbelow(10**8):08d}"}
        ]

    def choose_qris(self, order_id: str) -> str:
        """The customer picked QRIS: the payment now carries its QR payload."""
        transaction = self.transactions[order_id]
        transaction.payment_type = "qris"
        transaction.qr_string = f"00020101021226620014ID.CO.QRIS.WWW{secrets.token_hex(8)}6304ABCD"
        return transaction.qr_string

    def pay(self, order_id: str, payment_type: str = "qris") -> None:
        transaction = self.transactions[order_id]
        transaction.payment_type = transaction.payment_type or payment_type
        transaction.transaction_status = "settlement"

    def expire(self, order_id: str) -> None:
        self.transactions[order_id].transaction_status = "expire"

    def notification(self, order_id: str, **changes: Any) -> dict[str, Any]:
        """The notification Midtrans sends for the transaction as it now is."""
        return {**self.transactions[order_id].as_status(), **changes}

    async def notify(
        self, order_id: str, *, body: dict[str, Any] | None = None, times: int = 1
    ) -> list[httpx.Response]:
        """POST the (signed) notification to the shop, ``times`` times as Midtrans resends."""
        payload = body if body is not None else self.notification(order_id)
        async with httpx.AsyncClient(timeout=30) as http:
            return [await http.post(self.notify_url, json=payload) for _ in range(times)]
