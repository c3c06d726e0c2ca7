"""A stand-in for Xendit Invoices: ``POST /v2/invoices``, ``GET /v2/invoices/{id}``,
``GET /v2/invoices?external_id=``, ``POST /refunds``, and the invoice callback carrying
the account's ``x-callback-token``."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateways import basic_user

SECRET_KEY = "xnd_development_standin_secret_key_0001"
CALLBACK_TOKEN = "standin-callback-verification-token-0001"


@dataclass
class Invoice:
    external_id: str
    amount: int
    currency: str
    id: str = field(default_factory=lambda: secrets.token_hex(12))
    status: str = "PENDING"
    payment_method: str | None = None
    refunds: list[str] = field(default_factory=list)

    def as_json(self, base_url: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "external_id": self.external_id,
            "user_id": "standin",
            "status": self.status,
            "merchant_name": "pasar",
            "amount": self.amount,
            "currency": self.currency,
            "invoice_url": f"{base_url}web/{self.id}",
            "expiry_date": "2026-11-27T20:00:00.000Z",
        }
        if self.status in ("PAID", "SETTLED"):
            body.update(
                paid_amount=self.amount,
                payment_method=self.payment_method or "QR_CODE",
                payment_channel="QRIS",
            )
        return body


class XenditStandIn:
    def __init__(
        self, *, secret_key: str = SECRET_KEY, callback_token: str = CALLBACK_TOKEN
    ) -> None:
        self.secret_key = secret_key
        self.callback_token = callback_token
        self.invoices: dict[str, Invoice] = {}
        self.calls: Counter[str] = Counter()
        self.asked: Counter[str] = Counter()  # status queries per external id
        self.notify_url = ""
        self.down = False
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()

        def refuse(request: Request) -> JSONResponse | None:
            if self.down:
                return JSONResponse({"error_code": "SERVER_ERROR"}, status_code=503)
            if basic_user(request) != self.secret_key:
                return JSONResponse(
                    {"error_code": "INVALID_API_KEY", "message": "API key is invalid"},
                    status_code=401,
                )
            return None

        @app.post("/v2/invoices")
        async def create(request: Request) -> JSONResponse:
            self.calls["create"] += 1
            if (refusal := refuse(request)) is not None:
                return refusal
            body = await request.json()
            invoice = Invoice(
                external_id=str(body["external_id"]),
                amount=int(body["amount"]),
                currency=str(body.get("currency", "IDR")),
            )
            self.invoices[invoice.id] = invoice
            return JSONResponse(invoice.as_json(str(request.base_url)))

        @app.get("/v2/invoices")
        async def by_external_id(external_id: str, request: Request) -> JSONResponse:
            self.calls["status"] += 1
            self.asked[external_id] += 1
            if (refusal := refuse(request)) is not None:
                return refusal
            found = [i.as_json() for i in self.invoices.values() if i.external_id == external_id]
            return JSONResponse(found)

        @app.get("/v2/invoices/{invoice_id}")
        async def show(invoice_id: str, request: Request) -> JSONResponse:
            self.calls["status"] += 1
            if (refusal := refuse(request)) is not None:
                return refusal
            invoice = self.invoices.get(invoice_id)
            if invoice is not None:
                self.asked[invoice.external_id] += 1
            if invoice is None:
                return JSONResponse(
                    {"error_code": "INVOICE_NOT_FOUND_ERROR", "message": "Not found"},
                    status_code=404,
                )
            return JSONResponse(invoice.as_json(str(request.base_url)))

        @app.post("/refunds")
        async def refund(request: Request) -> JSONResponse:
            self.calls["refund"] += 1
            if (refusal := refuse(request)) is not None:
                return refusal
            body = await request.json()
            invoice = self.invoices.get(str(body.get("invoice_id")))
            if invoice is None or invoice.status not in ("PAID", "SETTLED"):
                return JSONResponse({"error_code": "INVALID_REQUEST"}, status_code=400)
            key = request.headers.get("idempotency-key", "")
            if key not in invoice.refunds:
                invoice.refunds.append(key)
            return JSONResponse(
                {"id": f"rfd-{invoice.id}", "invoice_id": invoice.id, "status": "SUCCEEDED",
                 "amount": invoice.amount, "currency": invoice.currency},
            )  # fmt: skip

        return app

    def only(self) -> Invoice:
        assert len(self.invoices) == 1, list(self.invoices)
        return next(iter(self.invoices.values()))

    def by_external_id(self, external_id: str) -> Invoice:
        return next(i for i in self.invoices.values() if i.external_id == external_id)

    def pay(self, invoice_id: str, method: str = "QR_CODE") -> None:
        self.invoices[invoice_id].status = "PAID"
        self.invoices[invoice_id].payment_method = method

    def expire(self, invoice_id: str) -> None:
        self.invoices[invoice_id].status = "EXPIRED"

    def callback(self, invoice_id: str, **changes: Any) -> dict[str, Any]:
        return {**self.invoices[invoice_id].as_json(), **changes}

    async def notify(
        self,
        invoice_id: str,
        *,
        body: dict[str, Any] | None = None,
        token: str | None = None,
        times: int = 1,
    ) -> list[httpx.Response]:
        payload = body if body is not None else self.callback(invoice_id)
        headers = {"x-callback-token": self.callback_token if token is None else token}
        async with httpx.AsyncClient(timeout=30) as http:
            return [
                await http.post(self.notify_url, json=payload, headers=headers)
                for _ in range(times)
            ]
