"""A real SMTP server for tests and benchmarks (aiosmtpd on 127.0.0.1), collecting what it
accepts. It can be stopped and started again on the same port (a mail server outage)
and told to refuse messages with a given reply (``550 ...`` permanent, ``451 ...``
temporary)."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.refuse is not None:
            return self.sink.refuse
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.sink.accept(message, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class MailSink:
    """``starttls``: offer STARTTLS with this server context and require it; ``tls``: TLS
    from the first byte; ``login``: require AUTH with this (user, password)."""

    def __init__(
        self,
        port: int | None = None,
        *,
        starttls: ssl.SSLContext | None = None,
        tls: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.port = port or _free_port()
        self.starttls = starttls
        self.tls = tls
        self.login = login
        self.messages: list[EmailMessage] = []
        # Accepted at (time.monotonic()), per message, for latency measurements.
        self.accepted_at: list[float] = []
        self.envelopes: list[list[str]] = []
        self.refuse: str | None = None
        self.on_accept: Callable[[EmailMessage], None] | None = None
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def accept(self, message: EmailMessage, recipients: list[str]) -> None:
        with self._lock:
            self.messages.append(message)
            self.accepted_at.append(time.monotonic())
            self.envelopes.append(recipients)
        if self.on_accept is not None:
            self.on_accept(message)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.login is not None
        given = (
            (auth_data.login.decode(), auth_data.password.decode())
            if isinstance(auth_data, LoginPassword)
            else None
        )
        return AuthResult(success=given == self.login, handled=False)

    def start(self) -> MailSink:
        options: dict[str, Any] = {}
        if self.starttls is not None:
            options.update(tls_context=self.starttls, require_starttls=True)
        if self.login is not None:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                # Implicit TLS is not seen as TLS by aiosmtpd: only STARTTLS can insist.
                auth_require_tls=self.starttls is not None,
            )
        self._controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=self.tls,
            server_hostname="127.0.0.1",
            **options,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def message_ids(self) -> list[str]:
        with self._lock:
            return [str(m["Message-ID"]) for m in self.messages]

    @staticmethod
    def text(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        content: str = part.get_content()
        return content

    @staticmethod
    def html(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("html",))
        assert part is not None
        content: str = part.get_content()
        return content
