"""One order placement is one trace across users, products and orders, as real
processes exporting over OTLP/HTTP to a collector in this test process.

users and products find the collector through the standard OTEL_EXPORTER_OTLP_ENDPOINT,
orders through its own ORDERS_OTLP_ENDPOINT: both ways of configuring it are used.
"""

from __future__ import annotations

import gzip
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp.web
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from shoplib import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Fleet,
    bearer,
    create_product_async,
    eventually_async,
    login_async,
    orders_env,
    prepare_databases,
    products_env,
    register_async,
    users_env,
)
from testdata import ADDRESS

from pasar_kit.testing import fresh_database

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int


class Collector:
    """An OTLP/HTTP trace receiver (protobuf), keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    async def receive(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = await request.read()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Span(
                            service,
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            span.kind,
                        )
                    )
        return aiohttp.web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def trace(self, trace_id: str) -> list[Span]:
        return [span for span in self.spans if span.trace_id == trace_id]


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, Collector]]:
    received = Collector()
    app = aiohttp.web.Application()
    app.router.add_post("/v1/traces", received.receive)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Fresh databases, made outside the test's event loop (a server one is made there)."""
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(fresh_database(f"trace_{name}", tmp_path))
            for name in ("users", "products", "orders")
        }
        prepare_databases(urls)
        yield urls


async def test_a_placement_is_one_trace_across_the_three_services(
    collector: tuple[str, Collector], databases: dict[str, str], tmp_path: Path
) -> None:
    endpoint, received = collector
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    urls = databases
    users_db, products_db, orders_db = urls["users"], urls["products"], urls["orders"]
    with Fleet(tmp_path) as fleet:  # stopped before the databases go
        secret = secrets.token_urlsafe(24)
        users = fleet.add("users", users_env(users_db, secret, **otel))
        users.start()
        users.wait_ready()
        products = fleet.add("products", products_env(products_db, users.url, **otel))
        orders = fleet.add(
            "orders",
            orders_env(
                orders_db,
                users.url,
                products.url,
                secret,
                ORDERS_OTLP_ENDPOINT=endpoint,
                OTEL_BSP_SCHEDULE_DELAY="100",
                ORDERS_LOG_LEVEL="INFO",
                ORDERS_OUTBOX_INTERVAL_SECONDS="0.5",
            ),
        )
        fleet.start_all()

        async with httpx.AsyncClient(timeout=60) as http:
            admin = await login_async(http, users.url, ADMIN_EMAIL, ADMIN_PASSWORD)
            product = await create_product_async(http, products.url, admin, stock=5)
            _user_id, token = await register_async(http, users.url, "traced@example.com")
            # The shopper's own trace context, as a traced storefront would send it.
            trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
            response = await http.post(
                f"{orders.url}/orders",
                headers={**bearer(token), "traceparent": f"00-{trace_id}-{caller_span}-01"},
                json={
                    "items": [{"product_id": product["id"], "quantity": 2}],
                    "shipping_address": ADDRESS,
                },
            )
            assert response.status_code == 201, response.text

            async def notified() -> bool:
                notes = await http.get(f"{users.url}/users/me/notifications", headers=bearer(token))
                return bool(notes.json()["items"])

            await eventually_async(notified, timeout=60)

            async def complete() -> list[Span]:
                spans = received.trace(trace_id)
                names = {(s.service, s.name) for s in spans}
                # The notification's delivery, handed to users, joined the trace.
                handed = {"POST /internal/notifications/batch", "POST /internal/notifications"}
                delivered = any(s == "pasar-users" and n in handed for s, n in names)
                # And the order mail the notification caused, sent by users' mail sender.
                mailed = ("pasar-users", "mail send") in names
                return spans if delivered and mailed else []

            spans = await eventually_async(complete, timeout=30)

    services = {span.service for span in spans}
    assert services == {"pasar-users", "pasar-products", "pasar-orders"}, spans
    names = {(span.service, span.name) for span in spans}
    assert ("pasar-orders", "POST /orders") in names
    assert any(s == "pasar-products" and n.startswith("POST /internal/") for s, n in names), names
    assert any(s == "pasar-users" and n.startswith("GET /internal/users/") for s, n in names), names
    assert ("pasar-orders", "outbox deliver") in names
    assert ("pasar-users", "mail send") in names
    # One tree: the placement's span is the child of the caller's, every other span a
    # descendant of it.
    ids = {span.span_id for span in spans}
    roots = [span for span in spans if span.parent_id not in ids]
    assert [(r.name, r.parent_id) for r in roots] == [("POST /orders", caller_span)], roots
    # Nothing the shop did for this placement went into another trace.
    placement_ids = {span.span_id for span in spans}
    assert all(
        span.trace_id == trace_id for span in received.spans if span.parent_id in placement_ids
    )
    # Its log lines carry the trace id.
    assert f"trace={trace_id}" in orders.log_path.read_text()
    print(
        f"\ntrace {trace_id}: {len(spans)} spans, "
        + ", ".join(sorted(f"{s}:{n}" for s, n in names))
    )
