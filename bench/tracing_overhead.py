"""CPU per request of the kit's app with tracing absent, off and on.

Drives a ``pasar_kit.app.service_app`` (every kit middleware) directly over ASGI, no
network, on one route (``GET /items/{item_id}``), and reports process CPU per request:

* before: the app without the tracing middleware (the kit as it was);
* off: the middleware present, no endpoint configured (what a shop without a collector
  runs);
* on: spans recorded and handed, one by one, to an exporter that discards them (the
  export to a collector runs on the batch processor's own thread, not per request).

Usage: python bench/tracing_overhead.py [N]
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from starlette.types import Message

from pasar_kit import tracing
from pasar_kit.app import service_app
from pasar_kit.tracing import TracingMiddleware, configure_tracing


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@asynccontextmanager
async def nothing(_app: FastAPI) -> AsyncIterator[None]:
    yield


def build(*, with_tracing: bool) -> FastAPI:
    app = service_app("bench", title="bench", description="bench", lifespan=nothing)
    if not with_tracing:
        app.user_middleware = [m for m in app.user_middleware if m.cls != TracingMiddleware]  # type: ignore[comparison-overlap]

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    return app


async def per_request(app: FastAPI, n: int) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/items/42",
        "raw_path": b"/items/42",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    for _ in range(200):  # warm up: the middleware stack is built on the first call
        await app(dict(scope), receive, send)
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        for _ in range(n):
            await app(dict(scope), receive, send)
        best = min(best, (time.process_time() - began) / n)
    return best


async def main(n: int) -> None:
    logging.disable(logging.INFO)  # the access log would dominate
    before = await per_request(build(with_tracing=False), n)
    configure_tracing("bench")  # no endpoint: off
    off = await per_request(build(with_tracing=True), n)
    configure_tracing("bench", exporter=Discard())
    on = await per_request(build(with_tracing=True), n)
    tracing.shutdown_tracing()
    print(f"CPU per request over {n} requests (best of 3):")
    print(f"  before (no tracing middleware): {before * 1e6:7.1f} us")
    print(f"  tracing off:                    {off * 1e6:7.1f} us ({(off - before) * 1e6:+.1f})")
    print(f"  tracing on (spans discarded):   {on * 1e6:7.1f} us ({(on - before) * 1e6:+.1f})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
