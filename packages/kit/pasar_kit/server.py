"""How every pasar process is served: uvicorn with a bounded request head and no
forwarding headers trusted unless the operator names the proxies that send them.

uvicorn's httptools protocol accepts a request head of any size: a single 48 MB header is
read into memory before the app sees the request, and the count of header fields has no
limit either. ``BoundedHttpToolsProtocol`` counts the head as it arrives and answers 431
(a problem, like every other refusal) as soon as it is too big, then closes the
connection, so at most one read of the socket (64 KiB) past the limit is ever held.

``GracefulServer`` is uvicorn's server with the shop's shutdown: see ``serve``.

uvicorn also trusts ``X-Forwarded-For`` from 127.0.0.1 unless told otherwise, and every
client of ``pasar up`` comes from 127.0.0.1: anyone could pick the address the login
throttle counts. ``server_options`` trusts forwarding headers only from the addresses
given (``--forwarded-allow-ips`` / ``FORWARDED_ALLOW_IPS``), and from nobody by default.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import time
from types import FrameType
from typing import Any, ClassVar

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pasar_kit.lifecycle import shutdown
from pasar_kit.problems import PROBLEM_JSON, HeaderFieldsTooLarge
from pasar_kit.tracing import shutdown_tracing

log = logging.getLogger("pasar.server")

# How long an idle client connection is kept open: longer than any client of ours keeps
# one (the kit's HTTP client 30 s, httpx 5 s) and than a typical balancer's idle timeout
# (60 s), so the client always closes first. uvicorn's own 5 s raced clients that reuse a
# connection just as it closes it: the request failed with a dropped connection.
KEEPALIVE_SECONDS = 75

# The defaults of ``ProcessSettings.max_header_bytes`` / ``max_header_count``.
MAX_HEADER_BYTES = 32_768
MAX_HEADER_COUNT = 100


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing; httptools reraises it from
    ``feed_data`` as the context of an ``HttpParserCallbackError``."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on the request head.

    Two counts, because httptools reports a header only once it is complete: the bytes of
    the URL and of the finished headers (exact), and the raw bytes of every read that ends
    with the head still unfinished (so one endless header is caught as it streams in).
    """

    max_header_bytes: ClassVar[int] = MAX_HEADER_BYTES
    max_header_count: ClassVar[int] = MAX_HEADER_COUNT

    _in_head = False
    _head_bytes = 0
    _raw_head_bytes = 0
    _header_count = 0

    def data_received(self, data: bytes) -> None:
        # uvicorn's own, but a head refused by a callback is a 431, not a 400.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            cause = exc if isinstance(exc, _HeadTooLarge) else exc.__context__
            if isinstance(cause, _HeadTooLarge):
                self._refuse(str(cause))
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:
            self._raw_head_bytes += len(data)
            if self._raw_head_bytes > self.max_header_bytes:
                self._refuse(f"The request head exceeds {self.max_header_bytes} bytes.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._raw_head_bytes = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_header_count:
            raise _HeadTooLarge(f"The request has more than {self.max_header_count} header fields.")
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            raise _HeadTooLarge(f"The request head exceeds {self.max_header_bytes} bytes.")

    def _refuse(self, detail: str) -> None:
        self._in_head = False
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.warning("refused a request head from %s: %s", client, detail)
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request is still being answered: an answer now would interleave.
            self.transport.close()
            return
        body = json.dumps(HeaderFieldsTooLarge(detail).body()).encode()
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(
            b"content-type: " + PROBLEM_JSON.encode() + b"\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"x-content-type-options: nosniff\r\n"
            b"connection: close\r\n\r\n"
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def bounded_http_protocol(
    *, max_header_bytes: int = MAX_HEADER_BYTES, max_header_count: int = MAX_HEADER_COUNT
) -> type[asyncio.Protocol]:
    """The protocol class to hand uvicorn as ``http=``, with these limits."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_header_bytes": max_header_bytes, "max_header_count": max_header_count},
    )


def server_options(
    *,
    forwarded_allow_ips: str | None = None,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_header_count: int = MAX_HEADER_COUNT,
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` shared by every server.

    ``forwarded_allow_ips`` names the proxies (addresses or networks, comma separated)
    whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed; empty or ``None``
    believes nobody, whatever uvicorn's own default or environment say.
    """
    trusted = (forwarded_allow_ips or "").strip()
    return {
        "http": bounded_http_protocol(
            max_header_bytes=max_header_bytes, max_header_count=max_header_count
        ),
        "proxy_headers": bool(trusted),
        # Never None: uvicorn would then read FORWARDED_ALLOW_IPS or trust 127.0.0.1.
        "forwarded_allow_ips": trusted,
        "server_header": False,
        "timeout_keep_alive": KEEPALIVE_SECONDS,
    }


class GracefulServer(uvicorn.Server):
    """uvicorn's server, shutting down the shop's way on SIGTERM (or Ctrl-C):

    1. the process is marked draining (``pasar_kit.lifecycle``): ``/readyz`` answers 503;
    2. after ``delay`` seconds (0 by default; on SIGTERM only) uvicorn's own shutdown
       runs: the listening socket closes, idle connections close, requests in flight
       finish, for whatever is left of ``grace`` (then they are cancelled);
    3. the app's lifespan ends: background jobs finish their current batch within what is
       still left, and connections to databases and other services close.

    A second Ctrl-C forces the exit, as in uvicorn.
    """

    def __init__(self, config: uvicorn.Config, *, grace: float, delay: float = 0.0) -> None:
        super().__init__(config)
        self.grace = grace
        self.delay = min(delay, grace)
        self._exit_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = not shutdown.draining
        shutdown.begin(self.grace)
        if first and self.delay > 0 and sig == signal.SIGTERM:
            # Keep serving a little while balancers see the 503 and stop sending; the
            # exit itself is decided on the server's next tick (no work in a handler).
            self._captured_signals.append(sig)
            self._exit_at = time.monotonic() + self.delay
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        shutdown.begin(self.grace)  # also when the exit came otherwise than by a signal
        # Requests in flight get what is left of the grace period, the jobs the rest.
        left = shutdown.time_left()
        self.config.timeout_graceful_shutdown = max(1, int(left))
        log.info("shutting down: finishing requests in flight (%.1fs left of the grace)", left)
        await super().shutdown(sockets)
        # The process ends by its own signal next, which runs no exit hooks: send the
        # last spans now.
        shutdown_tracing()
        log.info("stopped, %.1fs of the grace period unused", shutdown.time_left())
