"""argon2id hashing: parameters, long passwords, rehash detection, unknown accounts."""

from __future__ import annotations

from pasar_users.passwords import Passwords
from pasar_users.settings import Settings


def cheap(time_cost: int = 1) -> Passwords:
    return Passwords(time_cost=time_cost, memory_kib=64, parallelism=1)


async def test_hash_is_argon2id_and_verifies() -> None:
    passwords = cheap()
    hashed = await passwords.hash("correct horse")
    assert hashed.startswith("$argon2id$")
    assert await passwords.verify(hashed, "correct horse")
    assert not await passwords.verify(hashed, "correct horsE")


async def test_long_passwords_are_not_truncated() -> None:
    passwords = cheap()
    long = "x" * 1000
    hashed = await passwords.hash(long)
    assert await passwords.verify(hashed, long)
    assert not await passwords.verify(hashed, long[:-1] + "y")
    assert not await passwords.verify(hashed, long[:72])


async def test_unknown_account_verifies_against_a_stand_in_hash() -> None:
    passwords = cheap()
    assert not await passwords.verify(None, "anything at all")


async def test_garbage_hash_never_matches() -> None:
    assert not await cheap().verify("not-a-hash", "anything")


async def test_needs_rehash_when_parameters_change() -> None:
    old = await cheap(time_cost=1).hash("pw-12345678")
    assert not cheap(time_cost=1).needs_rehash(old)
    assert cheap(time_cost=2).needs_rehash(old)
    assert cheap().needs_rehash("garbage")


def test_defaults_meet_owasp_minimums() -> None:
    settings = Settings(_env_file=None)
    # OWASP: argon2id with m >= 19 MiB, t >= 2, p >= 1.
    assert settings.argon2_memory_kib >= 19 * 1024
    assert settings.argon2_time_cost >= 2
    assert settings.argon2_parallelism >= 1
