"""Traces: an OpenTelemetry span for every request served and every call to another
service, the W3C ``traceparent`` carried between them, exported over OTLP/HTTP.

Off unless an endpoint is configured (``otlp_endpoint``, or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``): then no SDK is
even imported, the middleware passes each request straight on after one attribute test,
and nothing is injected into outgoing calls.

A small middleware and a few lines in the kit's client rather than the contrib
instrumentations: the kit's client is aiohttp (not httpx), and the contrib packages
(0.66b1, beta) pin an older API and semantic conventions than the SDK we pin (1.45.1 and
0.66b1 against 1.45.2 and 0.66b2); we also want spans named by route template, the probes
left out and the no-op path free.

For work that outlives its request (an outbox row, a mail queued for later), store
``current_traceparent()`` with the row and run its delivery inside
``span_from_traceparent(name, traceparent)``: the delivery joins the request's trace.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import Message, Receive, Scope, Send

from pasar_kit.middleware import HttpMiddleware
from pasar_kit.observability import QUIET_PATHS, current_request_id, route_template

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

_PROPAGATOR = TraceContextTextMapPropagator()


class _State:
    tracer: trace.Tracer | None = None
    provider: TracerProvider | None = None


_state = _State()


def enabled() -> bool:
    return _state.tracer is not None


def configure_tracing(
    service: str,
    *,
    endpoint: str | None = None,
    sample_ratio: float = 1.0,
    exporter: SpanExporter | None = None,
) -> bool:
    """Start recording this process's spans as ``service`` (``pasar-<service>`` unless
    ``OTEL_SERVICE_NAME`` says otherwise); True when tracing is on.

    ``endpoint`` is a collector's base URL (spans go to ``<endpoint>/v1/traces``); without
    it the standard OTEL_EXPORTER_OTLP_* variables are read; with neither (and no
    ``exporter``, which tests pass) tracing stays off. Call once per process.
    """
    from_env = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if exporter is None and not endpoint and not from_env:
        shutdown_tracing()
        return False
    # Imported only here: a process without tracing never loads the SDK.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = endpoint.rstrip("/") + "/v1/traces" if endpoint else None  # None: from env
        processor: BatchSpanProcessor | SimpleSpanProcessor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=url)
        )
    else:
        processor = SimpleSpanProcessor(exporter)
    name = os.environ.get("OTEL_SERVICE_NAME") or f"pasar-{service}"
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}),
        # A call that arrives traced keeps its caller's decision, so a trace is whole.
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    provider.add_span_processor(processor)
    shutdown_tracing()
    _state.provider = provider
    _state.tracer = provider.get_tracer("pasar_kit")
    return True


def shutdown_tracing() -> None:
    """Send what is still buffered and stop (the server calls it as it exits: a process
    ended by its signal runs no exit hooks)."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is not None:
        provider.shutdown()


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the span in progress, to store with work done later;
    None when tracing is off or nothing is being traced."""
    if _state.tracer is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def current_trace_id() -> str | None:
    """The trace id (32 hex digits) of the span in progress, if any."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def _parent(traceparent: str | None) -> Context | None:
    if not traceparent:
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent})


@contextmanager
def span_from_traceparent(
    name: str, traceparent: str | None, *, kind: SpanKind = SpanKind.CONSUMER
) -> Iterator[Span]:
    """A span, current for the block, that continues the trace of ``traceparent`` (as
    ``current_traceparent`` gave it); a new trace when it is None or malformed. Calls
    made through the kit's client inside the block carry it on."""
    tracer = _state.tracer
    if tracer is None:
        yield INVALID_SPAN
        return
    # An empty context, not the current one: a job's work belongs to its own request.
    parent = _parent(traceparent) or Context()
    with tracer.start_as_current_span(name, context=parent, kind=kind) as span:
        yield span


@contextmanager
def span_for_batch(
    name: str, traceparents: Sequence[str | None], *, kind: SpanKind = SpanKind.PRODUCER
) -> Iterator[Span]:
    """A span for one piece of work done for several stored items at once (a batch of
    outbox rows): it continues their trace when they all share one. Otherwise it starts
    a trace of its own, linked to each of theirs, and each of their traces gets a span
    of the same name and time linked back to it, so every item's trace shows the work."""
    tracer = _state.tracer
    if tracer is None:
        yield INVALID_SPAN
        return
    present = [tp for tp in traceparents if tp]
    distinct = set(present)
    if len(distinct) == 1 and len(present) == len(traceparents):
        with span_from_traceparent(name, distinct.pop(), kind=kind) as span:
            yield span
        return
    parents: list[tuple[Context, Link]] = []
    for tp in sorted(distinct):
        context = _parent(tp)
        span_context = trace.get_current_span(context).get_span_context()
        if context is not None and span_context.is_valid:
            parents.append((context, Link(span_context)))
    started = time.time_ns()
    with tracer.start_as_current_span(
        name,
        context=Context(),
        kind=kind,
        links=[link for _, link in parents],
        attributes={"messaging.batch.message_count": len(traceparents)},
    ) as span:
        try:
            yield span
        finally:
            batch = Link(span.get_span_context())
            for context, _ in parents:
                tracer.start_span(
                    name, context=context, kind=kind, links=[batch], start_time=started
                ).end()


@contextmanager
def client_span(
    peer: str, method: str, url: str, headers: MutableMapping[str, str]
) -> Iterator[Span]:
    """A span for one outgoing call (each attempt its own), with its ``traceparent`` /
    ``tracestate`` added to ``headers``; nothing at all when tracing is off."""
    tracer = _state.tracer
    if tracer is None:
        yield INVALID_SPAN
        return
    with tracer.start_as_current_span(
        f"{method} {peer}",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "url.full": url, "peer.service": peer},
    ) as span:
        _PROPAGATOR.inject(headers)
        yield span


def record_status(span: Span, status: int) -> None:
    """The HTTP status on a span; a 5xx marks it failed."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


class TracingMiddleware(HttpMiddleware):
    """A server span for every request (probes and scrapes excepted), continuing the
    caller's trace when it sent a ``traceparent``; named by route template."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = _state.tracer
        if tracer is None or scope["path"] in QUIET_PATHS:
            await self.app(scope, receive, send)
            return
        carrier: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in (b"traceparent", b"tracestate"):
                carrier[name.decode()] = value.decode("latin-1")
        parent = _PROPAGATOR.extract(carrier) if carrier else Context()
        method = scope["method"]
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer.start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:
            rid = current_request_id()
            if rid:
                span.set_attribute("pasar.request_id", rid)
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                record_status(span, status)
