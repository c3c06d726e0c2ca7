"""Throttles on password guessing and on registrations, kept in the database so every
replica counts the same attempts.

A password login for an account from an address faces three rules (numbers are settings):

* **pair** — after ``pair_free_failures`` failures of this account from this address
  within the window, each further attempt must wait a delay that doubles from
  ``base_delay`` up to ``pair_max_delay``, counted from the last failure. A success
  clears the pair. This is what slows a guesser down.
* **account** — once the account has ``account_soft_limit`` failures within the window,
  from any addresses, an address that has itself failed on the account waits as well
  (doubling up to ``account_max_delay``). An address with no failure on the account is
  let through: the owner signing in from their own device is never held back by someone
  else guessing, and a guesser spread over many addresses gets one try per address.
* **address** — an address with ``address_max_failures`` failures within the window,
  over any accounts, is refused until the oldest of them leaves the window. High by
  default: behind a NAT or a proxy many honest people share one address.

An attempt is written down *before* its password is checked and counts as a failure until
it succeeds, and each attempt is judged by the attempts that arrived before it (lower
ids): a burst of concurrent guesses is counted as it arrives, so only the first few get
through, instead of all passing the check before the first failure is recorded. An
attempt refused by the throttle is forgotten again: hammering a closed door does not push
the door further shut.

The other throttles share the table under their own ``kind``, so none counts in another:
the current password on ``/users/me`` (per account: a stolen access token must not
become a fast guessing channel), a service client's secret (per client and address: a
guesser elsewhere cannot hold the real service back), registrations (per address),
verification emails (per account: one per ``verification_resend_seconds`` and a few a
day, those sent on registration or an email change included) and password-reset requests
(per email: past the limit the request is still answered 202 but nothing is sent, so a
mailbox cannot be flooded; per address: 429, over any emails, so it says nothing about
an account).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Clock, Database
from pasar_users.problems import (
    TooManyAttempts,
    TooManyPasswordResets,
    TooManyRegistrations,
    TooManyVerificationEmails,
)
from pasar_users.tables import ADDRESS_LENGTH, attempts

LOGIN = "login"
REAUTH = "reauth"
CLIENT = "client"
REGISTER = "register"
VERIFY = "verify_email"
RESET_EMAIL = "reset_email"
RESET_ADDRESS = "reset_address"

# Verification emails are counted per day (the resend limit's window).
VERIFICATION_WINDOW_SECONDS = 24 * 3600

UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True)
class ThrottlePolicy:
    window_seconds: int = 3600
    pair_free_failures: int = 5
    base_delay_seconds: float = 1.0
    pair_max_delay_seconds: int = 900
    account_soft_limit: int = 20
    account_max_delay_seconds: int = 60
    address_max_failures: int = 200
    registrations_per_address: int = 50
    registration_window_seconds: int = 3600
    verification_resend_seconds: int = 60
    verification_emails_per_day: int = 5
    password_resets_per_email: int = 5
    password_resets_per_address: int = 30
    password_reset_window_seconds: int = 3600


def address_key(host: str | None) -> str:
    """The key a client address is counted under; ``ValueError`` if it is no IP address.

    IPv6 counts by its /64: one subscriber usually holds a whole /64, so counting single
    addresses would hand a guesser 2**64 fresh ones.
    """
    if not host:
        return UNKNOWN_ADDRESS
    if len(host) > ADDRESS_LENGTH:
        raise ValueError("client address too long")
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip), 64), strict=False))  # zone id dropped
    return str(ip)


def backoff(failures: int, *, free: int, base: float, cap: float) -> float:
    """Seconds to wait after the last of ``failures``: none for the first ``free``, then
    ``base``, doubling with each further failure, never more than ``cap``."""
    if failures < free:
        return 0.0
    return min(cap, base * 2.0 ** min(failures - free, 62))


@dataclass(frozen=True)
class LoginHistory:
    """Earlier attempts within the window, as one login attempt sees them."""

    pair: int = 0
    pair_last: datetime | None = None
    account: int = 0
    account_last: datetime | None = None
    # The address's ``address_max_failures``-th most recent failure, when it has that many.
    address_limit_reached_at: datetime | None = None


def login_wait(history: LoginHistory, *, policy: ThrottlePolicy, now: datetime) -> float:
    """How many seconds this attempt comes too early (0: let it through)."""
    waits = [
        _wait(
            history.pair_last,
            backoff(
                history.pair,
                free=policy.pair_free_failures,
                base=policy.base_delay_seconds,
                cap=policy.pair_max_delay_seconds,
            ),
            now,
        )
    ]
    # Only an address that has failed on the account itself is slowed account-wide.
    if history.pair:
        delay = backoff(
            history.account,
            free=policy.account_soft_limit,
            base=policy.base_delay_seconds,
            cap=policy.account_max_delay_seconds,
        )
        waits.append(_wait(history.account_last, delay, now))
    if history.address_limit_reached_at is not None:
        reopens = history.address_limit_reached_at + timedelta(seconds=policy.window_seconds)
        waits.append(_seconds(reopens - now))
    return max(waits)


def _wait(last: datetime | None, delay: float, now: datetime) -> float:
    """Seconds until ``delay`` after ``last`` has passed. No delay means no wait, even
    when ``last`` is a hair later than ``now`` (concurrent attempts, replicas' clocks)."""
    if last is None or delay <= 0:
        return 0.0
    return max(0.0, _seconds(last + timedelta(seconds=delay) - now))


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def _retry_after(wait: float) -> int:
    return max(1, math.ceil(wait))


@dataclass(frozen=True)
class Attempt:
    """An attempt written down and let through; it counts as a failure unless cleared."""

    id: int
    at: datetime


class Throttle:
    """The throttles over ``db``. Attempts are stamped from ``clock`` (the service's), read
    when each is written down."""

    def __init__(self, db: Database, policy: ThrottlePolicy, *, clock: Clock) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock

    # --- password logins ---------------------------------------------------------

    async def login_attempt(self, *, account: str, address: str) -> Attempt:
        """Write the attempt down, or raise ``TooManyAttempts`` (and forget it)."""
        attempt = await self._record(kind=LOGIN, subject=account, address=address)
        history = await self._login_history(attempt, account=account, address=address)
        wait = login_wait(history, policy=self.policy, now=attempt.at)
        if wait > 0:
            await self.forget(attempt)
            raise TooManyAttempts(retry_after=_retry_after(wait))
        return attempt

    async def _login_history(self, attempt: Attempt, *, account: str, address: str) -> LoginHistory:
        since = attempt.at - timedelta(seconds=self.policy.window_seconds)
        earlier = (attempts.c.kind == LOGIN, attempts.c.at > since, attempts.c.id < attempt.id)
        same_address = attempts.c.address == address
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        func.count(),
                        func.max(attempts.c.at),
                        func.coalesce(func.sum(case((same_address, 1), else_=0)), 0),
                        func.max(case((same_address, attempts.c.at))),
                    ).where(*earlier, attempts.c.subject == account)
                )
            ).one()
            # Only the limit-th most recent counts: one indexed range, read from its end.
            nth = await conn.scalar(
                select(attempts.c.at)
                .where(*earlier, same_address)
                .order_by(attempts.c.at.desc())
                .limit(1)
                .offset(self.policy.address_max_failures - 1)
            )
        account_count, account_last, pair_count, pair_last = row
        return LoginHistory(
            pair=int(pair_count),
            pair_last=_aware(pair_last),
            account=int(account_count),
            account_last=_aware(account_last),
            address_limit_reached_at=_aware(nth),
        )

    @staticmethod
    async def login_succeeded(conn: AsyncConnection, *, account: str, address: str) -> None:
        """The owner got in from this address: their mistakes there stop counting (in the
        caller's transaction). Other addresses' failures on the account stay."""
        await conn.execute(
            delete(attempts).where(
                attempts.c.kind == LOGIN,
                attempts.c.subject == account,
                attempts.c.address == address,
            )
        )

    # --- the current password, asked again by /users/me ---------------------------

    async def reauth_attempt(self, *, user_id: str, address: str) -> Attempt:
        """Per account, whatever the address: whoever holds the access token is the one
        guessing, so the delays follow the account."""
        attempt = await self._record(kind=REAUTH, subject=user_id, address=address)
        failures, last = await self._count(attempt, kind=REAUTH, subject=user_id)
        wait = self._pair_wait(failures, last, now=attempt.at)
        if wait > 0:
            await self.forget(attempt)
            raise TooManyAttempts(retry_after=_retry_after(wait))
        return attempt

    async def reauth_succeeded(self, *, user_id: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                delete(attempts).where(attempts.c.kind == REAUTH, attempts.c.subject == user_id)
            )

    # --- service clients' secrets ---------------------------------------------------

    async def client_check(self, *, client_id: str, address: str) -> int:
        """The failures of this client from this address; ``TooManyAttempts`` while they
        are being answered with delays. A client secret is long and random, so
        this bounds wasted work rather than guessing; keyed by address as well, a guesser
        elsewhere cannot hold the real service back."""
        now = self.clock()
        since = now - timedelta(seconds=self.policy.window_seconds)
        async with self.db.read() as conn:
            failures, last = (
                await conn.execute(
                    select(func.count(), func.max(attempts.c.at)).where(
                        attempts.c.kind == CLIENT,
                        attempts.c.subject == client_id,
                        attempts.c.address == address,
                        attempts.c.at > since,
                    )
                )
            ).one()
        wait = self._pair_wait(int(failures), _aware(last), now=now)
        if wait > 0:
            raise TooManyAttempts(retry_after=_retry_after(wait))
        return int(failures)

    async def client_failed(self, *, client_id: str, address: str) -> None:
        await self._record(kind=CLIENT, subject=client_id, address=address)

    async def client_succeeded(self, *, client_id: str, address: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                delete(attempts).where(
                    attempts.c.kind == CLIENT,
                    attempts.c.subject == client_id,
                    attempts.c.address == address,
                )
            )

    # --- registrations ------------------------------------------------------------

    async def registration(self, *, address: str) -> Attempt:
        """Count a registration from ``address`` or raise ``TooManyRegistrations``.

        Each one costs a full argon2 hash, so an address gets a fixed number per window
        whether they succeed or not.
        """
        policy = self.policy
        attempt = await self._record(kind=REGISTER, subject=address, address=address)
        reached = await self._nth_earlier(
            attempt,
            kind=REGISTER,
            subject=address,
            window=policy.registration_window_seconds,
            limit=policy.registrations_per_address,
        )
        if reached is not None:
            await self.forget(attempt)
            reopens = reached + timedelta(seconds=policy.registration_window_seconds)
            raise TooManyRegistrations(retry_after=_retry_after(_seconds(reopens - attempt.at)))
        return attempt

    # --- verification emails ------------------------------------------------------

    @staticmethod
    async def verification_sent(
        conn: AsyncConnection, *, user_id: str, address: str, now: datetime
    ) -> None:
        """Count a verification email the service sent on its own (registration, a new
        address), in the caller's transaction: a resend right after it must wait too."""
        await conn.execute(
            insert(attempts).values(kind=VERIFY, subject=user_id, address=address, at=now)
        )

    async def verification_email(self, *, user_id: str, address: str) -> Attempt:
        """Count a requested verification email or raise ``TooManyVerificationEmails``:
        at most one per ``verification_resend_seconds`` and
        ``verification_emails_per_day`` a day."""
        policy = self.policy
        attempt = await self._record(kind=VERIFY, subject=user_id, address=address)
        last = await self._nth_earlier(
            attempt, kind=VERIFY, subject=user_id, window=VERIFICATION_WINDOW_SECONDS, limit=1
        )
        nth = await self._nth_earlier(
            attempt,
            kind=VERIFY,
            subject=user_id,
            window=VERIFICATION_WINDOW_SECONDS,
            limit=policy.verification_emails_per_day,
        )
        waits = [_wait(last, policy.verification_resend_seconds, attempt.at)]
        if nth is not None:
            reopens = nth + timedelta(seconds=VERIFICATION_WINDOW_SECONDS)
            waits.append(_seconds(reopens - attempt.at))
        wait = max(waits)
        if wait > 0:
            await self.forget(attempt)
            raise TooManyVerificationEmails(retry_after=_retry_after(wait))
        return attempt

    # --- password-reset requests ----------------------------------------------------

    async def password_reset(self, *, email: str, address: str) -> bool:
        """Count a reset request for ``email`` from ``address``. Raises
        ``TooManyPasswordResets`` when the address is over its limit (any emails); returns
        False when the email is over its own (answer as usual, send nothing). The same
        statements run whether or not an account uses ``email``."""
        policy = self.policy
        window = policy.password_reset_window_seconds
        by_address = await self._record(kind=RESET_ADDRESS, subject=address, address=address)
        reached = await self._nth_earlier(
            by_address,
            kind=RESET_ADDRESS,
            subject=address,
            window=window,
            limit=policy.password_resets_per_address,
        )
        if reached is not None:
            await self.forget(by_address)
            reopens = reached + timedelta(seconds=window)
            raise TooManyPasswordResets(retry_after=_retry_after(_seconds(reopens - by_address.at)))
        by_email = await self._record(kind=RESET_EMAIL, subject=email, address=address)
        flooded = await self._nth_earlier(
            by_email,
            kind=RESET_EMAIL,
            subject=email,
            window=window,
            limit=policy.password_resets_per_email,
        )
        if flooded is not None:
            await self.forget(by_email)  # a refused request does not extend the wait
            return False
        return True

    # --- shared -------------------------------------------------------------------

    async def _nth_earlier(
        self, attempt: Attempt, *, kind: str, subject: str, window: int, limit: int
    ) -> datetime | None:
        """When the ``limit``-th most recent earlier attempt within ``window`` was made,
        if there are that many (the limit is reached; it reopens ``window`` after it)."""
        since = attempt.at - timedelta(seconds=window)
        async with self.db.read() as conn:
            nth = await conn.scalar(
                select(attempts.c.at)
                .where(
                    attempts.c.kind == kind,
                    attempts.c.subject == subject,
                    attempts.c.at > since,
                    attempts.c.id < attempt.id,
                )
                .order_by(attempts.c.at.desc())
                .limit(1)
                .offset(limit - 1)
            )
        return _aware(nth)

    def _pair_wait(self, failures: int, last: datetime | None, *, now: datetime) -> float:
        delay = backoff(
            failures,
            free=self.policy.pair_free_failures,
            base=self.policy.base_delay_seconds,
            cap=self.policy.pair_max_delay_seconds,
        )
        return _wait(last, delay, now)

    async def _record(self, *, kind: str, subject: str, address: str) -> Attempt:
        async with self.db.write() as conn:
            now = self.clock()  # once the write began: ids and times then mostly agree
            result = await conn.execute(
                insert(attempts).values(kind=kind, subject=subject, address=address, at=now)
            )
            (attempt_id,) = result.inserted_primary_key or (None,)
        assert attempt_id is not None
        return Attempt(id=int(attempt_id), at=now)

    async def _count(
        self, attempt: Attempt, *, kind: str, subject: str
    ) -> tuple[int, datetime | None]:
        since = attempt.at - timedelta(seconds=self.policy.window_seconds)
        async with self.db.read() as conn:
            failures, last = (
                await conn.execute(
                    select(func.count(), func.max(attempts.c.at)).where(
                        attempts.c.kind == kind,
                        attempts.c.subject == subject,
                        attempts.c.at > since,
                        attempts.c.id < attempt.id,
                    )
                )
            ).one()
        return int(failures), _aware(last)

    async def forget(self, attempt: Attempt) -> None:
        """The attempt never happened (refused, or its password could not be checked)."""
        async with self.db.write() as conn:
            await conn.execute(delete(attempts).where(attempts.c.id == attempt.id))

    async def purge(self) -> int:
        """Forget attempts too old to count in any rule, each kind after its own window."""
        policy = self.policy
        now = self.clock()
        own = {
            (VERIFY,): VERIFICATION_WINDOW_SECONDS,
            (RESET_EMAIL, RESET_ADDRESS): policy.password_reset_window_seconds,
        }
        rest = max(policy.window_seconds, policy.registration_window_seconds)
        purged = 0
        async with self.db.write() as conn:
            for kinds, keep in own.items():
                result = await conn.execute(
                    delete(attempts).where(
                        attempts.c.kind.in_(kinds), attempts.c.at < now - timedelta(seconds=keep)
                    )
                )
                purged += result.rowcount
            others = [kind for kinds in own for kind in kinds]
            result = await conn.execute(
                delete(attempts).where(
                    attempts.c.kind.not_in(others), attempts.c.at < now - timedelta(seconds=rest)
                )
            )
            return purged + result.rowcount


def _aware(value: datetime | None) -> datetime | None:
    # Belt and braces: an aggregate must compare with aware times like a column does.
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
