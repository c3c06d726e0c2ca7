"""Headers every answer carries: a strict Content-Security-Policy (no inline script or
style, no framing), no MIME sniffing, a tight referrer policy, and pages that are not
kept in shared caches (a signed-in shopper's pages not even in the browser's)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasar_kit.middleware import HttpMiddleware


class SecurityHeadersMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, *, image_origins: str, https: bool) -> None:
        super().__init__(app)
        policy = (
            "default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' data: {image_origins}; font-src 'self'; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
        )
        self.headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if https:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(header for header in self.headers if header[0] not in names)
                if b"cache-control" not in names and _is_html(headers):
                    session = scope.get("state", {}).get("session")
                    signed_in = session is not None and session.account is not None
                    headers.append(
                        (b"cache-control", b"no-store" if signed_in else b"private, no-cache")
                    )
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(b"text/html")
        for name, value in headers
    )
