"""Signing keys: created once even when replicas race, rotated, retired, never leaked."""

from __future__ import annotations

import asyncio

import pytest

from pasar_kit.auth import SigningKey, StaticKeys, TokenVerifier, access_claims, jwks_document
from pasar_kit.db import Database, utcnow
from pasar_users.keys import (
    KeyRing,
    ensure_signing_key,
    load_keys,
    retire_signing_key,
    rotate_signing_key,
)


async def test_first_key_is_created_once_under_concurrent_starts(users_db: Database) -> None:
    # users_app already made one; emulate a fresh database with several replicas.
    from sqlalchemy import delete

    from pasar_users.tables import signing_keys

    async with users_db.write() as conn:
        await conn.execute(delete(signing_keys))
    results = await asyncio.gather(
        *(ensure_signing_key(db=users_db, now=utcnow()) for _ in range(6))
    )
    kids = {tuple(key.kid for key in keys) for keys in results}
    assert len(kids) == 1, "every replica reads back the same key"
    assert len(await load_keys(db=users_db)) == 1


async def test_rotation_adds_a_newest_key_and_keeps_the_old_published(users_db: Database) -> None:
    (old,) = await load_keys(db=users_db)
    new_kid = await rotate_signing_key(db=users_db, now=utcnow())
    keys = await load_keys(db=users_db)
    assert [key.kid for key in keys] == [new_kid, old.kid]

    ring = KeyRing(keys)
    assert ring.signing is not None and ring.signing.kid == new_kid
    verifier = TokenVerifier(StaticKeys(ring.published), issuer="pasar-users", audience="pasar")
    old_token = old.sign(
        access_claims("u", issuer="pasar-users", audience="pasar", ttl_seconds=60, role="customer")
    )
    assert (await verifier.verify(old_token)).subject == "u"


async def test_concurrent_rotations_all_succeed_with_distinct_generations(
    users_db: Database,
) -> None:
    kids = await asyncio.gather(*(rotate_signing_key(db=users_db, now=utcnow()) for _ in range(4)))
    assert len(set(kids)) == 4
    assert len(await load_keys(db=users_db)) == 5


async def test_retire_unpublishes_an_old_key_but_not_the_current_one(users_db: Database) -> None:
    (old,) = await load_keys(db=users_db)
    new_kid = await rotate_signing_key(db=users_db, now=utcnow())
    with pytest.raises(ValueError):
        await retire_signing_key(db=users_db, kid=new_kid, now=utcnow())
    assert await retire_signing_key(db=users_db, kid=old.kid, now=utcnow())
    assert not await retire_signing_key(db=users_db, kid=old.kid, now=utcnow())
    assert [key.kid for key in await load_keys(db=users_db)] == [new_kid]


def test_fixed_ring_is_never_replaced() -> None:
    key = SigningKey.generate()
    ring = KeyRing.from_pem("fixed-1", key.to_pem())
    ring.replace([SigningKey.generate()])
    assert [k.kid for k in ring.published()] == ["fixed-1"]


def test_published_keys_carry_no_private_material() -> None:
    document = jwks_document([SigningKey.generate(), SigningKey.generate()])
    for entry in document["keys"]:
        assert set(entry) == {"kty", "crv", "x", "kid", "use", "alg"}
