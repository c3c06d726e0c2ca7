"""Refresh-token families: rotation, reuse detection, expiry, revocation (domain level)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from pasar_kit.db import Database, utcnow
from pasar_users import accounts, tokens
from pasar_users.problems import InvalidGrant
from pasar_users.tables import refresh_families, refresh_tokens


async def new_user(app: FastAPI) -> str:
    user = await accounts.register(
        db=app.state.db,
        passwords=app.state.runtime.passwords,
        email="rotation@example.com",
        password="long enough",
        full_name="Rotation",
        now=utcnow(),
    )
    return user.id


async def login(db: Database, user_id: str, ttl: int = 3600) -> str:
    async with db.write() as conn:
        return await tokens.start_family(conn, user_id=user_id, ttl_seconds=ttl, now=utcnow())


def test_refresh_tokens_are_stored_hashed() -> None:
    assert tokens.hash_refresh_token("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


async def test_rotation_issues_a_new_token_and_retires_the_old(users_app: FastAPI) -> None:
    db = users_app.state.db
    user_id = await new_user(users_app)
    first = await login(db, user_id)
    rotation = await tokens.rotate(db=db, token=first, now=utcnow())
    assert rotation.user_id == user_id and rotation.role == "customer"
    assert rotation.refresh_token != first
    second = await tokens.rotate(db=db, token=rotation.refresh_token, now=utcnow())
    assert second.refresh_token not in (first, rotation.refresh_token)
    async with db.read() as conn:
        stored = (await conn.scalars(select(refresh_tokens.c.token_hash))).all()
    assert tokens.hash_refresh_token(first) in stored
    assert first not in stored  # never the token itself


async def test_reusing_a_rotated_token_revokes_the_family(users_app: FastAPI) -> None:
    db = users_app.state.db
    user_id = await new_user(users_app)
    first = await login(db, user_id)
    latest = (await tokens.rotate(db=db, token=first, now=utcnow())).refresh_token
    with pytest.raises(InvalidGrant):
        await tokens.rotate(db=db, token=first, now=utcnow())  # the replay
    with pytest.raises(InvalidGrant):
        await tokens.rotate(
            db=db, token=latest, now=utcnow()
        )  # the legitimate holder is logged out too


async def test_other_families_survive_a_replay(users_app: FastAPI) -> None:
    db = users_app.state.db
    user_id = await new_user(users_app)
    stolen = await login(db, user_id)
    other_device = await login(db, user_id)
    await tokens.rotate(db=db, token=stolen, now=utcnow())
    with pytest.raises(InvalidGrant):
        await tokens.rotate(db=db, token=stolen, now=utcnow())
    assert (await tokens.rotate(db=db, token=other_device, now=utcnow())).user_id == user_id


async def test_expiry_counts_from_the_login_not_the_last_rotation(users_app: FastAPI) -> None:
    db = users_app.state.db
    user_id = await new_user(users_app)
    token = await login(db, user_id, ttl=3600)
    token = (
        await tokens.rotate(db=db, token=token, now=utcnow() + timedelta(minutes=50))
    ).refresh_token
    with pytest.raises(InvalidGrant):
        await tokens.rotate(db=db, token=token, now=utcnow() + timedelta(minutes=61))


async def test_unknown_token_is_invalid(users_app: FastAPI) -> None:
    with pytest.raises(InvalidGrant):
        await tokens.rotate(db=users_app.state.db, token="never-issued", now=utcnow())


async def test_logout_revokes_the_family(users_app: FastAPI) -> None:
    db = users_app.state.db
    user_id = await new_user(users_app)
    first = await login(db, user_id)
    latest = (await tokens.rotate(db=db, token=first, now=utcnow())).refresh_token
    assert await tokens.revoke_family_of(db=db, token=first, now=utcnow())
    with pytest.raises(InvalidGrant):
        await tokens.rotate(db=db, token=latest, now=utcnow())
    assert not await tokens.revoke_family_of(db=db, token="unknown", now=utcnow())


async def test_revoke_user_families_kills_every_login(users_app: FastAPI) -> None:
    db = users_app.state.db
    user_id = await new_user(users_app)
    devices = [await login(db, user_id) for _ in range(3)]
    async with db.write() as conn:
        assert await tokens.revoke_user_families(conn, user_id=user_id, now=utcnow()) == 3
    for token in devices:
        with pytest.raises(InvalidGrant):
            await tokens.rotate(db=db, token=token, now=utcnow())


async def test_purge_deletes_only_expired_families(users_app: FastAPI) -> None:
    db = users_app.state.db
    user_id = await new_user(users_app)
    async with db.write() as conn:
        await tokens.start_family(
            conn, user_id=user_id, ttl_seconds=60, now=utcnow() - timedelta(hours=1)
        )
    alive = await login(db, user_id)
    assert await tokens.purge_expired(db=db, now=utcnow()) == 1
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(refresh_families)) == 1
        assert await conn.scalar(select(func.count()).select_from(refresh_tokens)) == 1
    assert (await tokens.rotate(db=db, token=alive, now=utcnow())).user_id == user_id
