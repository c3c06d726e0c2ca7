"""The session: an encrypted, signed, httpOnly cookie; the web process stores nothing.

It carries the shopper's tokens, their cart (product ids and quantities, never prices),
the CSRF secret and one-shot flash messages. Fernet (AES-CBC + HMAC-SHA256, from
``cryptography``) both hides and authenticates it, so a shopper can neither read their
refresh token out of it nor forge one; ``MultiFernet`` keeps older secrets readable so a
rotation signs nobody out. The cookie stays far under browsers' 4 KB: the cart holds at
most ``MAX_CART_LINES`` lines.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasar_kit.middleware import HttpMiddleware

log = logging.getLogger("pasar.web.session")

MAX_CART_LINES = 30
MAX_QUANTITY = 1000


@dataclass
class Account:
    """The signed-in shopper, and the tokens the services gave them."""

    id: str
    email: str
    name: str
    role: str
    access_token: str
    expires_at: float  # epoch seconds
    refresh_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass
class Session:
    csrf: str = ""
    account: Account | None = None
    # product id -> quantity, in the order the shopper added them
    cart: dict[str, int] = field(default_factory=dict)
    flashes: list[tuple[str, str]] = field(default_factory=list)
    changed: bool = False

    def csrf_token(self) -> str:
        """The form token of this session, made on first use."""
        if not self.csrf:
            self.csrf = secrets.token_urlsafe(24)
            self.changed = True
        return self.csrf

    def flash(self, message: str, level: str = "info") -> None:
        self.flashes.append((level, message))
        self.changed = True

    def take_flashes(self) -> list[tuple[str, str]]:
        shown, self.flashes = self.flashes, []
        if shown:
            self.changed = True
        return shown

    def sign_in(self, account: Account) -> None:
        """A new login: a fresh CSRF secret too, so no token from before it works."""
        self.account = account
        self.csrf = secrets.token_urlsafe(24)
        self.changed = True

    def sign_out(self) -> None:
        """Forget everything: on a shared phone the next person must find nothing."""
        self.account = None
        self.cart = {}
        self.csrf = secrets.token_urlsafe(24)
        self.changed = True

    def set_cart(self, cart: dict[str, int]) -> None:
        self.cart = dict(list(cart.items())[:MAX_CART_LINES])
        self.changed = True

    @property
    def empty(self) -> bool:
        return self.account is None and not self.cart and not self.flashes

    def dump(self) -> dict[str, Any]:
        data: dict[str, Any] = {"c": self.csrf}
        if self.account is not None:
            a = self.account
            data["a"] = [
                a.id,
                a.email,
                a.name,
                a.role,
                a.access_token,
                a.expires_at,
                a.refresh_token,
            ]
        if self.cart:
            data["k"] = [[product_id, quantity] for product_id, quantity in self.cart.items()]
        if self.flashes:
            data["f"] = [list(entry) for entry in self.flashes]
        return data

    @classmethod
    def load(cls, data: dict[str, Any]) -> Session:
        session = cls(csrf=str(data.get("c", "")))
        if "a" in data:
            id_, email, name, role, access, expires_at, refresh = data["a"]
            session.account = Account(
                id=str(id_),
                email=str(email),
                name=str(name),
                role=str(role),
                access_token=str(access),
                expires_at=float(expires_at),
                refresh_token=str(refresh),
            )
        for product_id, quantity in data.get("k", [])[:MAX_CART_LINES]:
            session.cart[str(product_id)] = max(1, min(MAX_QUANTITY, int(quantity)))
        session.flashes = [(str(level), str(text)) for level, text in data.get("f", [])]
        return session


def _fernet_key(secret: str) -> bytes:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"pasar-web-session"
    ).derive(secret.encode())
    return base64.urlsafe_b64encode(derived)


class SessionCodec:
    """Session <-> cookie value. The first secret encrypts; all of them decrypt."""

    def __init__(self, secrets_: list[str], *, max_age_seconds: int) -> None:
        if not secrets_:
            raise ValueError("at least one session secret is needed")
        self._fernet = MultiFernet([Fernet(_fernet_key(s)) for s in secrets_])
        self.max_age_seconds = max_age_seconds

    def encode(self, session: Session) -> str:
        raw = json.dumps(session.dump(), separators=(",", ":")).encode()
        return self._fernet.encrypt_at_time(raw, int(time.time())).decode()

    def decode(self, value: str) -> Session | None:
        """The session in ``value``, or None when it is forged, garbled or too old."""
        try:
            raw = self._fernet.decrypt(value.encode(), ttl=self.max_age_seconds)
            data = json.loads(raw)
            return Session.load(data) if isinstance(data, dict) else None
        except (InvalidToken, ValueError, TypeError, KeyError):
            return None


class SessionMiddleware(HttpMiddleware):
    """Loads the session into ``request.state.session``; writes it back only if changed."""

    def __init__(self, app: ASGIApp, *, codec: SessionCodec, secure: bool) -> None:
        super().__init__(app)
        self.codec = codec
        self.secure = secure
        # The __Host- prefix pins the cookie to this exact host and path, over HTTPS.
        self.cookie_name = "__Host-pasar" if secure else "pasar_session"

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                given = cookie_parser(value.decode("latin-1")).get(self.cookie_name)
                break
        session = (self.codec.decode(given) if given else None) or Session()
        scope.setdefault("state", {})["session"] = session

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and session.changed:
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", self._cookie(session, had=given is not None)))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _cookie(self, session: Session, *, had: bool) -> bytes:
        attributes = "Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")
        if session.empty and not session.csrf:
            value, max_age = "", 0
        else:
            value, max_age = self.codec.encode(session), self.codec.max_age_seconds
        return f"{self.cookie_name}={value}; Max-Age={max_age}; {attributes}".encode()
