"""The signing keys of access tokens, owned by this service and kept in its database.

Keys have a ``generation``; the newest non-retired one signs. A new generation is
inserted, never updated in place, and ``generation`` is unique: when two replicas create
the first key (or rotate) at the same moment, one insert wins and the other reads the
winner back. Older keys stay published in the JWKS until retired, so tokens they signed
keep verifying.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime

import jwt
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pasar_kit.auth import SigningKey, StaticKeys
from pasar_kit.db import Database, retrying
from pasar_users.tables import signing_keys

log = logging.getLogger("pasar.users.keys")


class KeyRing:
    """The keys this process signs with and publishes; replaced whole on reload."""

    def __init__(self, keys: Sequence[SigningKey] = ()) -> None:
        self._keys: tuple[SigningKey, ...] = tuple(keys)
        self.fixed = False

    @classmethod
    def from_pem(cls, kid: str, pem: bytes) -> KeyRing:
        """A ring holding one key from the deployment's configuration; never reloaded."""
        ring = cls([SigningKey.from_pem(kid, pem)])
        ring.fixed = True
        return ring

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    @property
    def signing(self) -> SigningKey | None:
        return self._keys[0] if self._keys else None

    def published(self) -> tuple[SigningKey, ...]:
        return self._keys

    def replace(self, keys: Sequence[SigningKey]) -> None:
        if not self.fixed:
            self._keys = tuple(keys)


class RingKeys:
    """The verifier's key source: ``StaticKeys`` over the ring, re-reading the database
    once when a token names a kid we do not hold (another replica rotated first).

    Unknown kids re-read at most every ``min_reload_seconds``, so forged kids cannot
    turn into a query per request.
    """

    def __init__(self, ring: KeyRing, db: Database, *, min_reload_seconds: float = 5.0) -> None:
        self._ring = ring
        self._db = db
        self._static = StaticKeys(ring.published)
        self._min_reload_seconds = min_reload_seconds
        self._reloaded_at = float("-inf")

    async def get(self, kid: str) -> jwt.PyJWK | None:
        key = await self._static.get(kid)
        if key is not None or self._ring.fixed:
            return key
        now = time.monotonic()
        if now - self._reloaded_at < self._min_reload_seconds:
            return None
        self._reloaded_at = now
        try:
            self._ring.replace(await load_keys(db=self._db) or self._ring.published())
        except SQLAlchemyError:
            return None
        return await self._static.get(kid)


async def load_keys(*, db: Database) -> list[SigningKey]:
    """Every non-retired key, the one to sign with first."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(signing_keys.c.kid, signing_keys.c.private_pem)
            .where(signing_keys.c.retired_at.is_(None))
            .order_by(signing_keys.c.generation.desc())
        )
        return [SigningKey.from_pem(row.kid, row.private_pem.encode()) for row in rows]


async def _insert_next_generation(
    *, db: Database, only_if_empty: bool, now: datetime
) -> str | None:
    key = SigningKey.generate()
    try:
        async with db.write() as conn:
            newest = await conn.scalar(select(func.max(signing_keys.c.generation)))
            if only_if_empty:
                active = await conn.scalar(
                    select(func.count())
                    .select_from(signing_keys)
                    .where(signing_keys.c.retired_at.is_(None))
                )
                if active:
                    return None
            await conn.execute(
                insert(signing_keys).values(
                    kid=key.kid,
                    generation=(newest or 0) + 1,
                    private_pem=key.to_pem().decode(),
                    created_at=now,
                )
            )
    except IntegrityError:
        return None  # another replica inserted this generation first
    return key.kid


async def ensure_signing_key(*, db: Database, now: datetime) -> list[SigningKey]:
    """The published keys, creating the first one (created at ``now``) if there is none
    (race-safe)."""
    keys = await load_keys(db=db)
    if keys:
        return keys
    kid = await retrying(lambda: _insert_next_generation(db=db, only_if_empty=True, now=now))
    if kid is not None:
        log.info("created the first signing key %s", kid)
    return await load_keys(db=db)


async def rotate_signing_key(*, db: Database, now: datetime) -> str:
    """Add a new signing key (created at ``now``) and return its kid; older keys stay
    published."""
    for _ in range(10):
        kid = await retrying(lambda: _insert_next_generation(db=db, only_if_empty=False, now=now))
        if kid is not None:
            log.info("rotated to signing key %s", kid)
            return kid
    raise RuntimeError("could not rotate the signing key: too many concurrent rotations")


async def retire_signing_key(*, db: Database, kid: str, now: datetime) -> bool:
    """Stop publishing ``kid`` (retired at ``now``; tokens it signed stop verifying). The
    newest key cannot be retired: rotate first."""
    async with db.write() as conn:
        newest = await conn.scalar(
            select(signing_keys.c.kid)
            .where(signing_keys.c.retired_at.is_(None))
            .order_by(signing_keys.c.generation.desc())
            .limit(1)
        )
        if newest == kid:
            raise ValueError("the signing key in use cannot be retired; rotate first")
        result = await conn.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == kid, signing_keys.c.retired_at.is_(None))
            .values(retired_at=now)
        )
        return result.rowcount == 1
