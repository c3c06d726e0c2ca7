"""Request ids, JSON logs that carry them (and the trace id when tracing is on),
Prometheus metrics and the body-size guard.

All middleware here is plain ASGI: ``BaseHTTPMiddleware`` costs a task per request.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasar_kit.middleware import HttpMiddleware, UploadRoute, upload_route
from pasar_kit.problems import InternalError, PayloadTooLarge, problem_response

REQUEST_ID_HEADER = "X-Request-ID"
access_log = logging.getLogger("pasar.access")
error_log = logging.getLogger("pasar.errors")
request_id_var: ContextVar[str | None] = ContextVar("pasar_request_id", default=None)

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def current_request_id() -> str | None:
    return request_id_var.get()


class RequestIdMiddleware(HttpMiddleware):
    """Take ``X-Request-ID`` from the request (if sane) or make one; echo it back."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if given and _VALID_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        raw = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", raw)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class UnexpectedErrorMiddleware(HttpMiddleware):
    """Turn any exception that escaped the app into a 500 problem with no internals.

    It sits inside the request-id middleware so the 500 carries the id, and it does not
    re-raise, so the server does not log the same traceback twice.
    """

    def __init__(self, app: ASGIApp, render: Callable[[Scope], Response] | None = None) -> None:
        super().__init__(app)
        # What the client sees instead: a problem by default, an HTML page for a storefront.
        self.render = render or _internal_error_problem

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            error_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started:
                await self.render(scope)(scope, receive, send)


def _internal_error_problem(_scope: Scope) -> Response:
    return problem_response(InternalError("An unexpected error occurred."))


class BodyLimitMiddleware(HttpMiddleware):
    """Refuse request bodies over ``max_bytes`` with 413, whether declared or streamed.

    A streamed body is cut off where it crosses the limit: the rest is never read.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        render: Callable[[Scope], Response] | None = None,
        uploads: Sequence[UploadRoute] = (),
    ) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        # A declared oversize body is refused before the app runs: a problem by default
        # (an upload's own), or what ``render`` draws (a storefront's page) for any route.
        self.render = render or self._too_large_problem
        self.rendered = render is not None
        self.uploads = tuple(uploads)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        upload = upload_route(self.uploads, scope)
        max_bytes = upload.max_bytes if upload else self.max_bytes
        problem = upload.problem if upload else PayloadTooLarge
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > max_bytes:
                    if upload is not None and not self.rendered:
                        too_large = problem(f"The body exceeds {max_bytes} bytes.")
                        await problem_response(too_large)(scope, receive, send)
                    else:
                        await self._refuse(scope, receive, send)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise problem(f"The body exceeds {max_bytes} bytes.")
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.render(scope)(scope, receive, send)

    def _too_large_problem(self, _scope: Scope) -> Response:
        return problem_response(PayloadTooLarge(f"The body exceeds {self.max_bytes} bytes."))


class Metrics:
    """Request counters and latency histograms in one registry per app."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests handled",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.service = service


class MetricsMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(self.metrics.service, method, route, str(status)).inc()
            self.metrics.latency.labels(self.metrics.service, method, route).observe(elapsed)
            # Probes and scrapes would drown the log; they stay at DEBUG.
            level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
            access_log.log(
                level,
                "%s %s %d %.1fms",
                method,
                scope["path"],
                status,
                elapsed * 1000,
                extra={"event": "access"},
            )


def route_template(scope: Scope) -> str:
    """The matched route's path template, so ids do not explode label cardinality."""
    # The router leaves the route it picked in the scope; routes added with
    # include_router are only reachable that way (their wrapper has no path).
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", ()):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        trace_id = getattr(record, "trace_id", None) or _trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        service = getattr(record, "service", None)
        if service:
            entry["service"] = service
        for key in ("event", "order_id", "reservation_id", "user_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _trace_id() -> str | None:
    """The trace id of the span in progress (the no-op API's invalid span when tracing is
    off: one context lookup)."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


class _ServiceFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = request_id_var.get() or "-"
        trace_id = _trace_id()
        record.trace_id = trace_id
        record.trace = f" trace={trace_id}" if trace_id else ""
        return True


def configure_logging(service: str, *, level: str = "INFO", json_format: bool = True) -> None:
    """Log to stderr, one JSON object a line carrying the request id and trace id."""
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(service)-8s %(levelname)-7s [%(request_id)s%(trace)s] %(message)s"
            )
        )
    handler.addFilter(_ServiceFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Access lines come from our middleware's metrics; uvicorn's duplicate them.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
