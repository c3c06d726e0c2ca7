"""HTTP semantics every service shares, as plain ASGI middleware (no task per request):
HEAD wherever GET is served, and the headers an API response must always carry."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasar_kit.problems import PayloadTooLarge, Problem


@dataclass(frozen=True)
class UploadRoute:
    """A route whose body is a file: it may be bigger than the app's body limit (up to
    ``max_bytes``, refused beyond with ``problem``, a 413 of the route's own), and it is
    binary, so the NUL guard lets it through (no text from it reaches a database)."""

    method: str
    path: re.Pattern[str]
    max_bytes: int
    problem: type[Problem] = PayloadTooLarge


def upload_route(uploads: Sequence[UploadRoute], scope: Scope) -> UploadRoute | None:
    """The upload route ``scope`` is a request to, if any."""
    for upload in uploads:
        if scope["method"] == upload.method and upload.path.fullmatch(scope["path"]):
            return upload
    return None


class HttpMiddleware:
    """Plain ASGI middleware for HTTP requests: ``handle`` sees each one; anything else
    (lifespan, websockets) passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class HeadMiddleware(HttpMiddleware):
    """HEAD answers exactly as GET would, without the body (RFC 9110, 9.3.2).

    FastAPI routes list only the methods they declare, so HEAD on a GET route was a 405.
    The request runs as GET (no route sees a HEAD) and the body is dropped on the way out;
    ``Content-Length`` stays that of the GET answer. A path without GET still answers 405.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # In place, so outer middleware still sees what the router put in the scope (the
        # route, for metrics), then back to HEAD for the access log.
        scope["method"] = "GET"
        try:
            await self.app(scope, receive, send_without_body)
        finally:
            scope["method"] = "HEAD"


class ApiHeadersMiddleware(HttpMiddleware):
    """``X-Content-Type-Options: nosniff`` on every answer, and ``Cache-Control: no-store``
    on every answer to a request that carries credentials, unless the route chose its
    own caching (the JWKS: ``public, max-age=60``).

    A request with ``Authorization`` is about someone (``/users/me``, their orders, their
    notifications): no shared or browser cache may keep the answer. Anonymous reads (the
    catalogue) are left to the routes.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        credentialed = any(name == b"authorization" for name, _ in scope["headers"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if credentialed and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
