"""When a run of failures locks an account, and for how long (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pasar_users.throttle import locked_until

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=300)
LOCKOUT = timedelta(seconds=600)


def at(*seconds: int) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_below_the_limit_is_never_locked() -> None:
    assert locked_until(at(0, 1, 2, 3), limit=5, window=WINDOW, lockout=LOCKOUT) is None


def test_limit_within_window_locks_from_the_last_failure() -> None:
    end = locked_until(at(0, 10, 20, 30, 40), limit=5, window=WINDOW, lockout=LOCKOUT)
    assert end == T0 + timedelta(seconds=40) + LOCKOUT


def test_failures_spread_wider_than_the_window_do_not_lock() -> None:
    assert locked_until(at(0, 100, 200, 300, 400), limit=5, window=WINDOW, lockout=LOCKOUT) is None


def test_the_latest_qualifying_run_decides() -> None:
    end = locked_until(at(0, 1, 2, 3, 4, 5), limit=5, window=WINDOW, lockout=LOCKOUT)
    assert end == T0 + timedelta(seconds=5) + LOCKOUT
