"""Input no database can store: refused before it reaches a route.

PostgreSQL text cannot hold the NUL character, so a NUL in a body, a query string or a
path would surface as a database error (a 500). Every service refuses it up front with
a 422 problem instead, whatever the field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasar_kit.middleware import HttpMiddleware, UploadRoute, upload_route
from pasar_kit.problems import ValidationFailed, problem_response

# A NUL as it arrives: raw, JSON-escaped, or percent-encoded (query strings, forms).
_NUL_FORMS = (b"\x00", b"\\u0000", b"%00")
_KEEP = max(len(form) for form in _NUL_FORMS) - 1


class InvalidCharacters(ValidationFailed):
    code = "invalid_characters"
    title = "The request contains characters that cannot be stored"


def _has_nul(data: bytes) -> bool:
    return any(form in data for form in _NUL_FORMS)


def _nul_url_problem(_scope: Scope) -> Response:
    return problem_response(InvalidCharacters("The URL contains a NUL character."))


class NulGuardMiddleware(HttpMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        render: Callable[[Scope], Response] | None = None,
        uploads: Sequence[UploadRoute] = (),
    ) -> None:
        super().__init__(app)
        # What a URL with a NUL gets: a problem by default, an HTML page for a storefront.
        self.render = render or _nul_url_problem
        # Binary bodies: a file is full of NUL bytes.
        self.uploads = tuple(uploads)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "\x00" in scope["path"] or _has_nul(scope.get("query_string", b"")):
            await self.render(scope)(scope, receive, send)
            return
        if upload_route(self.uploads, scope) is not None:
            await self.app(scope, receive, send)
            return
        tail = b""

        async def guarded_receive() -> Message:
            nonlocal tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = tail + message.get("body", b"")
                if _has_nul(chunk):
                    raise InvalidCharacters("The body contains a NUL character.")
                tail = chunk[-_KEEP:]
            return message

        await self.app(scope, guarded_receive, send)
