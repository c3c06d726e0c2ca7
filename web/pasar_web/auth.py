"""Signing in and out, and keeping a signed-in shopper's access token fresh.

Access tokens live minutes; the session also holds the rotating refresh token. A token
close to expiry is exchanged before a call, and a call answered 401 is tried once with a
fresh one, so a shopper never sees a token expire. Rotation is strict in the users
service (a refresh token used twice revokes its whole login), and a browser often sends
two requests at once, so refreshes of one token are made once per process and the
result is kept for a minute for the latecomers.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

import jwt

from pasar_web.api import ApiProblem, UsersApi
from pasar_web.models import TokenSet, User
from pasar_web.session import Account, Session

# Renew this long before the access token expires (clock skew, a slow request).
RENEW_MARGIN_SECONDS = 60
_REMEMBER_SECONDS = 60


class SignedOut(Exception):
    """The shopper's login is over (logged out elsewhere, deactivated, expired)."""


class Refresher:
    """Exchanges refresh tokens, at most once each in this process."""

    def __init__(self, users: UsersApi, clock: Callable[[], float] = time.monotonic) -> None:
        self.users = users
        self.clock = clock
        self._running: dict[str, asyncio.Task[TokenSet]] = {}
        self._done: OrderedDict[str, tuple[float, TokenSet]] = OrderedDict()

    async def refresh(self, refresh_token: str) -> TokenSet:
        now = self.clock()
        while self._done and now - next(iter(self._done.values()))[0] > _REMEMBER_SECONDS:
            self._done.popitem(last=False)
        remembered = self._done.get(refresh_token)
        if remembered is not None:
            return remembered[1]
        task = self._running.get(refresh_token)
        if task is None:
            task = asyncio.create_task(self.users.refresh(refresh_token))
            self._running[refresh_token] = task
            task.add_done_callback(lambda _: self._running.pop(refresh_token, None))
        tokens = await asyncio.shield(task)
        self._done[refresh_token] = (self.clock(), tokens)
        return tokens


def account_from(tokens: TokenSet, user: User, *, now: float | None = None) -> Account:
    return Account(
        id=user.id,
        email=user.email,
        name=user.full_name,
        role=user.role,
        access_token=tokens.access_token,
        expires_at=(now if now is not None else time.time()) + tokens.expires_in,
        refresh_token=tokens.refresh_token or "",
    )


class ShopperAuth:
    """The signed-in shopper's credentials for the calls of one request."""

    def __init__(
        self, session: Session, refresher: Refresher, clock: Callable[[], float] = time.time
    ) -> None:
        if session.account is None:
            raise SignedOut()
        self.session = session
        self.refresher = refresher
        self.clock = clock

    @property
    def account(self) -> Account:
        if self.session.account is None:
            raise SignedOut()
        return self.session.account

    async def token(self) -> str:
        if self.account.expires_at - self.clock() < RENEW_MARGIN_SECONDS:
            return await self.renewed()
        return self.account.access_token

    async def renewed(self) -> str:
        account = self.account
        try:
            tokens = await self.refresher.refresh(account.refresh_token)
        except ApiProblem as problem:
            # invalid_grant: revoked, reused, expired, or the account was deactivated.
            self.session.sign_out()
            raise SignedOut() from problem
        account.access_token = tokens.access_token
        account.expires_at = self.clock() + tokens.expires_in
        account.refresh_token = tokens.refresh_token or account.refresh_token
        # The role may have changed since the login (an admin demoted, or promoted).
        account.role = _role(tokens.access_token) or account.role
        self.session.changed = True
        return account.access_token


def _role(access_token: str) -> str | None:
    """The role claim; the token came straight from the User-Service, which the
    services verify on every call, so reading it unverified here grants nothing."""
    try:
        claims = jwt.decode(access_token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    role = claims.get("role")
    return role if isinstance(role, str) else None
