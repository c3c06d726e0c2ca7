"""Where a rendered message goes: ``.eml`` files (the default of ``pasar up``) or an SMTP
server. A transport either accepts the message or raises one of two failures: a
``PermanentFailure`` (the server refused it for good: 5xx) fails the delivery now, a
``TemporaryFailure`` (4xx, no connection, a timeout) is retried with backoff."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

log = logging.getLogger("pasar.users.mail")


class DeliveryFailure(Exception):
    """The transport did not accept a message."""


class PermanentFailure(DeliveryFailure):
    """Sending it again would fail the same way (a 5xx answer)."""


class TemporaryFailure(DeliveryFailure):
    """Worth another try later (a 4xx answer, no connection, a timeout)."""


@dataclass(frozen=True)
class Outgoing:
    delivery_id: str
    message: EmailMessage
    # The links in it, for the file transport's log line.
    links: tuple[str, ...]


class Transport(Protocol):
    async def send(self, outgoing: Outgoing, *, now: datetime) -> None: ...

    async def close(self) -> None: ...


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class FileTransport:
    """Writes each message to ``<directory>/<timestamp>-<delivery id>.eml`` and logs one
    line with the recipient, the subject and the links, so a newcomer can click a link
    from the log of ``pasar up`` without a mail server."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, outgoing: Outgoing, *, now: datetime) -> None:
        stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{_UNSAFE.sub('_', outgoing.delivery_id)}.eml"
        try:
            path = await asyncio.to_thread(self._write, name, outgoing.message.as_bytes())
        except OSError as exc:  # a full disk or a missing permission may be mended
            raise TemporaryFailure(f"could not write the message: {exc}") from exc
        log.info(
            "mail to %s: %s | %s | %s",
            outgoing.message["To"],
            outgoing.message["Subject"],
            " ".join(outgoing.links) or "no links",
            path,
        )

    async def close(self) -> None:
        return None

    def _write(self, name: str, data: bytes) -> Path:
        # Temp file then rename: a reader never sees half a message.
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            target = self.directory / name
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target


# An authentication failure is a 5xx but a configuration mistake: keep the mail until
# someone mends the credentials rather than failing every message.
_RETRY_DESPITE_5XX = frozenset({530, 534, 535, 538})


class SmtpTransport:
    """An SMTP server through aiosmtplib: STARTTLS or TLS or plain, an optional login,
    every step bounded by ``timeout``.

    Connections are kept for the next message (at most as many as messages are sent at
    once, none idle longer than ``max_idle_seconds``): connecting, the TLS handshake and
    the login cost more than the message itself. A kept connection that the server has
    closed meanwhile is replaced once; a connection that saw any error is not kept.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str,
        username: str | None,
        password: str | None,
        timeout: float,
        tls_context: ssl.SSLContext | None = None,
        max_idle_seconds: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.tls_context = tls_context
        self.max_idle_seconds = max_idle_seconds
        # Connected clients not in use, the most recently used last.
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def send(self, outgoing: Outgoing, *, now: datetime) -> None:
        client = await self._take()
        if client is not None:
            try:
                await client.send_message(outgoing.message)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                client.close()  # closed by the server while it waited: connect anew
            except Exception as exc:
                client.close()
                raise _failure(exc) from exc
            else:
                self._keep(client)
                return
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.security == "tls",
            # None would upgrade whenever the server offers it; "none" means plain.
            start_tls=self.security == "starttls",
            timeout=self.timeout,
            tls_context=self.tls_context,
        )
        try:
            await client.connect()
            await client.send_message(outgoing.message)
        except Exception as exc:
            client.close()
            raise _failure(exc) from exc
        self._keep(client)

    async def _take(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if now - since < self.max_idle_seconds and client.is_connected:
                return client
            await _quit(client)
        return None

    def _keep(self, client: aiosmtplib.SMTP) -> None:
        self._idle.append((client, time.monotonic()))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            await _quit(client)


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


def _failure(exc: Exception) -> Exception:
    """``exc`` as a ``DeliveryFailure`` when it is an SMTP or network failure (else
    itself: a bug is not a mail server's answer)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        return _classify(min(codes, default=451), str(exc))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _classify(exc.code, f"{exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
        return TemporaryFailure(f"{type(exc).__name__}: {exc}")
    return exc


def _classify(code: int, text: str) -> DeliveryFailure:
    if 500 <= code < 600 and code not in _RETRY_DESPITE_5XX:
        return PermanentFailure(text)
    return TemporaryFailure(text)
