"""Background jobs that run inside a service process (expiry, outbox relay, recovery).

Each job is a plain ``async def run_once() -> int`` that tests call directly; here it is
only scheduled. Jobs must be safe when several replicas run them at once; that is the
job's own business (SKIP LOCKED or a conditional update), not the scheduler's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, Select, Table, update

from pasar_kit.db import Database, retrying, skip_locked
from pasar_kit.lifecycle import shutdown

log = logging.getLogger("pasar.workers")


async def claim_with_lease(
    db: Database, due: Select[Any], *, table: Table, lease: Mapping[str, Any]
) -> Sequence[Row[Any]]:
    """Claim the rows ``due`` selects (each with an ``id``) for this worker alone.

    The rows are locked (``SKIP LOCKED``: other replicas take the next ones), marked with
    ``lease`` (values that move them out of ``due`` until the lease ends, so a crashed
    worker's claim simply lapses) and the claim is committed before any slow work. A
    claim that deadlocks with a concurrent insert (MariaDB gap locks) rolled back whole
    and is run again.
    """

    async def claim() -> Sequence[Row[Any]]:
        async with db.write() as conn:
            locked = due.with_for_update(**skip_locked(db.dialect))
            rows: Sequence[Row[Any]] = (await conn.execute(locked)).all()
            if rows:
                await conn.execute(
                    update(table).where(table.c.id.in_([row.id for row in rows])).values(**lease)
                )
            return rows

    return await retrying(claim)


def retry_delay(attempts: int, *, base: float, cap: float) -> timedelta:
    """How long an outbox row waits after its ``attempts``-th failure: about base, 2*base,
    4*base ..., never above ``cap``. The jitter keeps the many rows one outage failed
    from retrying in lockstep."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=min(cap, delay * random.uniform(0.8, 1.2)))


class Periodic:
    """One job run on its tick, at once when nudged, and again at once after a full batch.

    Stopping never cuts a batch short: a run in progress (a claim, HTTP calls, the commit
    that records them) finishes first, within the timeout; a job waiting for its tick
    stops at once.
    """

    def __init__(self, name: str, job: Callable[[], Awaitable[int]], interval: float) -> None:
        self.name = name
        self.job = job
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._running = False
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name=self.name)

    def nudge(self) -> None:
        """Run the job now rather than at the next tick (new work just arrived)."""
        self._wake.set()

    async def stop(self, within: float = 10.0) -> None:
        """Let the current batch finish (for at most ``within`` seconds), then end."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        if self._running:
            # ``wait`` rather than ``wait_for``: a timeout must not cancel the batch here,
            # only below, once it had its time.
            await asyncio.wait({task}, timeout=within)
            if not task.done():
                log.warning("background job %s outlived the grace period; cancelled", self.name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._task = None

    async def _loop(self) -> None:
        # Replicas started together should not tick in lockstep (a nudge still wakes it).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=random.uniform(0, self.interval / 2))
        while not self._stopping:
            # Cleared before the run, not after: a nudge that arrives while the job runs
            # must cause another run, not wait for the next tick.
            self._wake.clear()
            self._running = True
            try:
                done = await self.job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background job %s failed; it runs again next tick", self.name)
                done = 0
            finally:
                self._running = False
            if self._stopping:
                return
            if done:
                continue  # a full batch: there may be more waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)


class Jobs:
    """A service's background jobs: declared by name, started and stopped together."""

    def __init__(self) -> None:
        self._jobs: dict[str, Periodic] = {}

    def add(self, name: str, job: Callable[[], Awaitable[int]], interval: float) -> None:
        self._jobs[name] = Periodic(name, job, interval)

    def start(self) -> None:
        for job in self._jobs.values():
            job.start()

    async def stop(self, within: float | None = None) -> None:
        """Stop every job together: each finishes its current batch within ``within``
        seconds (default: what is left of the process's shutdown grace period)."""
        limit = shutdown.time_left() if within is None else within
        await asyncio.gather(*(job.stop(limit) for job in self._jobs.values()))

    def nudge(self, name: str) -> None:
        """Run a job now (new work was just committed) rather than at its next tick."""
        job = self._jobs.get(name)
        if job is not None:
            job.nudge()
