"""The process's shutdown: when it began and how much of the grace period is left.

One service runs per process, so this state is the process's own. The server marks the
start of the shutdown on SIGTERM (``pasar_kit.server.GracefulServer``); ``/readyz`` then
answers 503 so a balancer stops sending, and the background jobs finish their current
batch within what is left of the grace period (``pasar_kit.workers.Jobs.stop``).
"""

from __future__ import annotations

import time

# The default of ``ProcessSettings.shutdown_grace_seconds``: below Kubernetes' default
# terminationGracePeriodSeconds (30 s), so the process exits before it is killed.
DEFAULT_GRACE_SECONDS = 20.0


class Shutdown:
    def __init__(self) -> None:
        self.grace = DEFAULT_GRACE_SECONDS
        self._began: float | None = None

    @property
    def draining(self) -> bool:
        """A shutdown has begun: take no new work."""
        return self._began is not None

    def begin(self, grace: float | None = None) -> None:
        """Start the shutdown (again is a no-op: the first signal sets the deadline)."""
        if self._began is None:
            if grace is not None:
                self.grace = grace
            self._began = time.monotonic()

    def time_left(self) -> float:
        """Seconds left of the grace period (all of it before a shutdown began)."""
        if self._began is None:
            return self.grace
        return max(0.0, self.grace - (time.monotonic() - self._began))

    def reset(self) -> None:
        """Back to running (tests that run several apps in one process)."""
        self._began = None
        self.grace = DEFAULT_GRACE_SECONDS


shutdown = Shutdown()
