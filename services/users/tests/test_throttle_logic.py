"""The throttles' rules as pure functions: delays, the account rule, address keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pasar_users.throttle import LoginHistory, ThrottlePolicy, address_key, backoff, login_wait

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POLICY = ThrottlePolicy(
    window_seconds=3600,
    pair_free_failures=5,
    base_delay_seconds=1,
    pair_max_delay_seconds=900,
    account_soft_limit=20,
    account_max_delay_seconds=60,
    address_max_failures=200,
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_backoff_is_free_then_doubles_up_to_the_cap() -> None:
    delays = [backoff(n, free=5, base=1, cap=900) for n in range(17)]
    assert delays[:5] == [0, 0, 0, 0, 0]
    assert delays[5:11] == [1, 2, 4, 8, 16, 32]
    assert delays[14:] == [512, 900, 900]
    assert backoff(10**6, free=5, base=1, cap=900) == 900  # no overflow


def test_a_pair_within_its_free_failures_is_let_through() -> None:
    history = LoginHistory(pair=4, pair_last=T0, account=4, account_last=T0)
    assert login_wait(history, policy=POLICY, now=T0) == 0


def test_a_pair_past_its_free_failures_waits_from_its_last_failure() -> None:
    history = LoginHistory(pair=7, pair_last=T0, account=7, account_last=T0)
    assert login_wait(history, policy=POLICY, now=at(1)) == 3  # 4 s after the 7th
    assert login_wait(history, policy=POLICY, now=at(4)) == 0


def test_an_attacked_account_slows_addresses_that_failed_on_it() -> None:
    history = LoginHistory(pair=1, pair_last=at(-100), account=25, account_last=T0)
    assert login_wait(history, policy=POLICY, now=at(1)) == 31  # 2**5 s after the last


def test_an_attacked_account_lets_a_fresh_address_through() -> None:
    # The owner on their own device: no failure from here, however many elsewhere.
    history = LoginHistory(pair=0, account=10_000, account_last=T0)
    assert login_wait(history, policy=POLICY, now=T0) == 0


def test_an_address_at_its_ceiling_waits_until_the_oldest_counted_failure_leaves() -> None:
    history = LoginHistory(address_limit_reached_at=at(-3000))
    assert login_wait(history, policy=POLICY, now=T0) == 600


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.2", "198.51.100.2"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_address_keys(host: str | None, key: str) -> None:
    assert address_key(host) == key


@pytest.mark.parametrize("host", ["testclient", "1.2.3.4, 5.6.7.8", "x" * 100_000, "1.2.3.4 "])
def test_an_address_that_is_no_ip_is_refused(host: str) -> None:
    with pytest.raises(ValueError):
        address_key(host)
