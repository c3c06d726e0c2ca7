"""Traces through real local servers: spans for requests and calls, the traceparent
between them, trace ids in logs, stored traceparents, and nothing at all when off."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from pasar_kit import tracing
from pasar_kit.app import install_operations
from pasar_kit.http import ServiceClient
from pasar_kit.lifecycle import shutdown
from pasar_kit.observability import JsonFormatter, Metrics, RequestIdMiddleware
from pasar_kit.testing import serve
from pasar_kit.tracing import (
    TracingMiddleware,
    configure_tracing,
    current_traceparent,
    span_for_batch,
    span_from_traceparent,
)

log = logging.getLogger("pasar.test.tracing")


class Seen:
    def __init__(self) -> None:
        self.traceparents: list[str | None] = []
        self.logged: list[str] = []


def traced_app(seen: Seen, downstream: str | None) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TracingMiddleware)
    app.add_middleware(RequestIdMiddleware)
    install_operations(app, "test", metrics=Metrics("test"), ready_checks={})

    @app.get("/items/{item_id}")
    async def item(item_id: str, request: Request) -> dict[str, object]:
        seen.traceparents.append(request.headers.get("traceparent"))
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "handled", None, None)
        seen.logged.append(JsonFormatter().format(record))
        if downstream is None:
            return {"id": item_id, "stored": current_traceparent()}
        client = ServiceClient("back", downstream)
        try:
            reply = await client.request("GET", f"/items/{item_id}")
        finally:
            await client.close()
        return {"id": item_id, "back": reply.body}

    return app


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    assert configure_tracing("test", exporter=spans)
    yield spans
    tracing.shutdown_tracing()


@pytest.fixture
async def chain() -> AsyncIterator[tuple[str, Seen, Seen]]:
    front_seen, back_seen = Seen(), Seen()
    async with (
        serve(traced_app(back_seen, None)) as back,
        serve(traced_app(front_seen, back)) as front,
    ):
        yield front, front_seen, back_seen


def by_kind(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [span for span in spans if span.kind == kind]


async def test_a_request_and_its_call_make_one_trace_continuing_the_callers(
    exporter: InMemorySpanExporter, chain: tuple[str, Seen, Seen]
) -> None:
    front, front_seen, back_seen = chain
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    client = ServiceClient("front", front)
    try:
        # As a caller that is itself traced (a storefront, a job): the call continues it.
        with span_from_traceparent("shopper", f"00-{trace_id}-{parent_id}-01"):
            reply = await client.request("GET", "/items/42")
    finally:
        await client.close()
    async with httpx.AsyncClient(base_url=front) as http:
        assert (await http.get("/healthz")).status_code == 200  # probes are not traced
    assert reply.status == 200

    spans = exporter.get_finished_spans()
    servers = by_kind(spans, SpanKind.SERVER)
    clients = by_kind(spans, SpanKind.CLIENT)
    # The caller's call to front, front's call to back; front's and back's requests.
    assert len(spans) == 5 and len(clients) == 2 and len(servers) == 2, [s.name for s in spans]
    assert {format_trace_id(s.context.trace_id) for s in spans} == {trace_id}
    assert {s.name for s in servers} == {"GET /items/{item_id}"}
    ids = {s.context.span_id for s in spans}
    # A tree under the caller's span, itself a child of the traceparent it continued.
    orphans = [s for s in spans if s.parent is None or s.parent.span_id not in ids]
    assert [s.name for s in orphans] == ["shopper"]
    assert orphans[0].parent is not None and format_span_id(orphans[0].parent.span_id) == parent_id
    first_call = next(s for s in clients if s.name == "GET front")
    front_span = next(
        s for s in servers if s.parent and s.parent.span_id == first_call.context.span_id
    )
    back_span = next(s for s in servers if s.context.span_id != front_span.context.span_id)
    assert back_span.parent is not None
    call = next(s for s in clients if s.context.span_id == back_span.parent.span_id)
    assert call.name == "GET back" and call.attributes is not None
    assert call.attributes["http.response.status_code"] == 200

    # What back received is the call's own context, and it logged the trace id.
    assert back_seen.traceparents == [f"00-{trace_id}-{format_span_id(call.context.span_id)}-01"]
    assert json.loads(back_seen.logged[0])["trace_id"] == trace_id
    assert json.loads(front_seen.logged[0])["trace_id"] == trace_id
    # What back would store for later work is its request's span.
    stored = reply.body["back"]["stored"]
    assert stored == f"00-{trace_id}-{format_span_id(back_span.context.span_id)}-01"


async def test_work_done_later_joins_the_stored_trace(exporter: InMemorySpanExporter) -> None:
    with span_from_traceparent("request", None) as request_span:
        stored = current_traceparent()
    assert stored is not None
    with span_from_traceparent("deliver", stored) as delivery:
        pass
    assert delivery.get_span_context().trace_id == request_span.get_span_context().trace_id

    with span_from_traceparent("other request", None):
        other = current_traceparent()
    # A batch of one trace continues it; a mixed batch starts its own, linked to each.
    with span_for_batch("batch", [stored, stored]) as same:
        pass
    assert same.get_span_context().trace_id == request_span.get_span_context().trace_id
    with span_for_batch("batch", [stored, other, None]) as mixed:
        pass
    finished = {s.context.span_id: s for s in exporter.get_finished_spans()}
    mixed_span = finished[mixed.get_span_context().span_id]
    assert mixed_span.parent is None
    assert len(mixed_span.links) == 2
    assert mixed_span.context.trace_id != request_span.get_span_context().trace_id
    # ... and each item's trace shows the batch's work, linked back to it.
    echoes = [
        s for s in finished.values() if [link.context for link in s.links] == [mixed_span.context]
    ]
    assert sorted(format_span_id(s.parent.span_id) for s in echoes if s.parent) == sorted(
        tp.split("-")[2] for tp in (stored, other) if tp
    )
    # Garbage stored in the column is no error: a trace of its own.
    with span_from_traceparent("deliver", "not-a-traceparent") as lost:
        assert lost.get_span_context().is_valid


async def test_tracing_off_records_and_sends_nothing(chain: tuple[str, Seen, Seen]) -> None:
    assert not configure_tracing("test")  # no endpoint anywhere
    front, _front_seen, back_seen = chain
    client = ServiceClient("front", front)
    try:
        reply = await client.request("GET", "/items/7")
    finally:
        await client.close()
    assert reply.status == 200
    assert back_seen.traceparents == [None]  # the kit's client sent none
    assert "trace_id" not in json.loads(back_seen.logged[0])
    assert reply.body["back"]["stored"] is None
    with span_from_traceparent(
        "deliver", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    ):
        assert current_traceparent() is None


async def test_readyz_answers_503_from_the_shutdown_signal_on() -> None:
    seen = Seen()
    async with serve(traced_app(seen, None)) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/readyz")).status_code == 200
        shutdown.begin(5)
        try:
            draining = await http.get("/readyz")
        finally:
            shutdown.reset()
        assert (await http.get("/readyz")).status_code == 200
    assert draining.status_code == 503
    assert draining.json()["code"] == "service_unavailable"
    assert draining.json()["checks"] == {"shutdown": "draining"}
