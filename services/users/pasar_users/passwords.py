"""Password hashing with argon2id, off the event loop and within a memory budget.

Every argon2 computation takes ``argon2_memory_kib`` (64 MiB by default) for its
duration, so unbounded concurrency turns a flood of registrations into swapping and
18-second logins. A ``HashingGate`` admits ``slots`` computations at once (by default one
per ``argon2_parallelism`` cores, since each computation runs that many threads: more
would only share the cores and multiply the memory), queues a bounded number more, and
sheds the rest with 503 ``hashing_busy``. Checking a password (a login) goes ahead of
hashing a new one (a registration), and a full queue makes room for a check by shedding
the newest queued hash: a registration flood cannot starve logins.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from enum import IntEnum
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pasar_users.problems import HashingBusy
from pasar_users.settings import Settings

T = TypeVar("T")


class Work(IntEnum):
    """What a caller wants computed; lower goes first."""

    VERIFY = 0
    HASH = 1


class HashingGate:
    """At most ``slots`` computations at once, ``max_waiting`` more queued (verifications
    first, then hashes, each in arrival order), none waiting longer than ``max_wait``."""

    def __init__(self, *, slots: int, max_waiting: int, max_wait_seconds: float) -> None:
        self.slots = slots
        self.max_waiting = max_waiting
        self.max_wait_seconds = max_wait_seconds
        self._free = slots
        self._queues: dict[Work, deque[asyncio.Future[None]]] = {w: deque() for w in Work}

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._queues.values())

    @property
    def running(self) -> int:
        return self.slots - self._free

    @asynccontextmanager
    async def slot(self, work: Work) -> AsyncIterator[None]:
        await self._acquire(work)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, work: Work) -> None:
        if self._free > 0 and self.waiting == 0:
            self._free -= 1
            return
        if self.waiting >= self.max_waiting and not (
            work is Work.VERIFY and self._shed_newest(Work.HASH)
        ):
            raise HashingBusy(retry_after=self._retry_after())
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[work].append(ticket)
        try:
            await asyncio.wait({ticket}, timeout=self.max_wait_seconds)
        except asyncio.CancelledError:
            self._abandon(work, ticket)
            raise
        if not ticket.done():
            self._abandon(work, ticket)
            raise HashingBusy(retry_after=self._retry_after())
        ticket.result()  # raises HashingBusy when shed

    def _shed_newest(self, work: Work) -> bool:
        queue = self._queues[work]
        if not queue:
            return False
        queue.pop().set_exception(HashingBusy(retry_after=self._retry_after()))
        return True

    def _abandon(self, work: Work, ticket: asyncio.Future[None]) -> None:
        if ticket.done() and not ticket.cancelled() and ticket.exception() is None:
            self._release()  # the slot was handed over just as we gave up: pass it on
            return
        ticket.cancel()
        with contextlib.suppress(ValueError):  # already taken off the queue
            self._queues[work].remove(ticket)

    def _release(self) -> None:
        for work in Work:
            queue = self._queues[work]
            while queue:
                ticket = queue.popleft()
                if not ticket.done():
                    ticket.set_result(None)  # the slot passes straight to the waiter
                    return
        self._free += 1

    def _retry_after(self) -> int:
        return 1 if self.waiting < self.max_waiting else 2


class Passwords:
    """argon2id hashing in a thread pool of ``HashingGate.slots`` threads."""

    def __init__(
        self,
        *,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        concurrency: int | None = None,
        max_waiting: int = 32,
        max_wait_seconds: float = 5.0,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # argon2 runs ``parallelism`` threads per computation: one slot per that many
        # cores keeps the cores busy without oversubscribing them.
        slots = concurrency or max(1, (os.cpu_count() or 1) // parallelism)
        self.gate = HashingGate(
            slots=slots, max_waiting=max_waiting, max_wait_seconds=max_wait_seconds
        )
        # Its own threads, as many as slots: the default executor is shared with
        # everything else and would let more computations run than the gate admits.
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="argon2")
        self._dummy: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        return cls(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            concurrency=settings.argon2_concurrency,
            max_waiting=settings.argon2_max_waiting,
            max_wait_seconds=settings.argon2_max_wait_seconds,
        )

    async def prepare(self) -> None:
        """Make the stand-in hash used for unknown accounts (at startup, not per login)."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        """A new hash; ``HashingBusy`` when the gate sheds it."""
        return await self._run(Work.HASH, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with no hash (unknown account) it still spends
        the time of a real verification, so the answer's timing reveals nothing."""
        if password_hash is None:
            await self.prepare()
            assert self._dummy is not None
            password_hash = self._dummy
        return await self._run(Work.VERIFY, self._verify, password_hash, password)

    async def _run(self, work: Work, fn: Callable[..., T], *args: str) -> T:
        async with self.gate.slot(work):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, fn, *args)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """The hash was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
