"""Each request speaks the shopper's language (cookie, then Accept-Language, then the
shop's default), in the shop's time zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasar_kit.middleware import HttpMiddleware
from pasar_web.i18n import LANGUAGE_COOKIE, choose_language, speaking


class LanguageMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, *, default: str, zone: ZoneInfo) -> None:
        super().__init__(app)
        self.default = default
        self.zone = zone

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        cookie = accept = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie = cookie_parser(value.decode("latin-1")).get(LANGUAGE_COOKIE)
            elif name == b"accept-language":
                accept = value.decode("latin-1")
        language = choose_language(cookie, accept, self.default)
        scope.setdefault("state", {})["language"] = language

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if any(n == b"content-type" and v.startswith(b"text/html") for n, v in headers):
                    headers.append((b"content-language", language.encode()))
                    headers.append((b"vary", b"Accept-Language, Cookie"))
                message["headers"] = headers
            await send(message)

        with speaking(language, self.zone):
            await self.app(scope, receive, send_with_language)
