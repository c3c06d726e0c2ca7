"""User accounts: registration, profiles, passwords, roles and activation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Database, retrying, utcnow
from pasar_kit.problems import Forbidden
from pasar_users.passwords import Passwords
from pasar_users.problems import (
    AccountInactive,
    EmailTaken,
    LastAdmin,
    UserNotFound,
    WrongPassword,
)
from pasar_users.settings import Settings
from pasar_users.tables import AnyRow, users
from pasar_users.tokens import revoke_user_families

CUSTOMER = "customer"
ADMIN = "admin"


@dataclass(frozen=True)
class User:
    id: str
    email: str
    full_name: str
    phone: str | None
    address: str | None
    role: str
    active: bool
    created_at: datetime


_PUBLIC = (
    users.c.id,
    users.c.email,
    users.c.full_name,
    users.c.phone,
    users.c.address,
    users.c.role,
    users.c.active,
    users.c.created_at,
)


def _user(row: AnyRow) -> User:
    return User(**row._asdict())


def normalize_email(email: str) -> str:
    """The stored form: the unique index then compares case-insensitively everywhere."""
    return email.strip().lower()


async def _insert_user(
    *,
    db: Database,
    email: str,
    password_hash: str,
    full_name: str,
    role: str,
) -> User:
    now = utcnow()
    user_id = str(uuid.uuid4())
    email = normalize_email(email)
    values = {
        "id": user_id,
        "email": email,
        "full_name": full_name,
        "phone": None,
        "address": None,
        "password_hash": password_hash,
        "role": role,
        "active": True,
        "created_at": now,
        "updated_at": now,
    }

    async def insert_row() -> None:
        async with db.write() as conn:
            await conn.execute(insert(users).values(values))

    try:
        await retrying(insert_row)
    except IntegrityError as exc:
        # The unique index decides, so concurrent registrations cannot both succeed.
        raise EmailTaken("An account with this email already exists.") from exc
    return User(
        id=user_id,
        email=email,
        full_name=full_name,
        phone=None,
        address=None,
        role=role,
        active=True,
        created_at=now,
    )


async def register(
    *, db: Database, passwords: Passwords, email: str, password: str, full_name: str
) -> User:
    password_hash = await passwords.hash(password)
    return await _insert_user(
        db=db, email=email, password_hash=password_hash, full_name=full_name, role=CUSTOMER
    )


async def get_user(*, db: Database, user_id: str) -> User:
    async with db.read() as conn:
        row = (await conn.execute(select(*_PUBLIC).where(users.c.id == user_id))).first()
    if row is None:
        raise UserNotFound()
    return _user(row)


async def get_active_user(*, db: Database, user_id: str) -> User:
    """The caller's own account; a token outliving a deactivation is refused."""
    user = await get_user(db=db, user_id=user_id)
    if not user.active:
        raise AccountInactive()
    return user


async def require_admin(*, db: Database, user_id: str) -> User:
    """The caller is, right now, an active admin (a token's role can be minutes stale)."""
    async with db.read() as conn:
        row = (await conn.execute(select(*_PUBLIC).where(users.c.id == user_id))).first()
    if row is None or not row.active or row.role != ADMIN:
        raise Forbidden("Only an active admin may do this.")
    return _user(row)


async def update_profile(*, db: Database, user_id: str, changes: dict[str, Any]) -> User:
    """Edit ``full_name``, ``phone``, ``address`` and ``email`` (409 if the email is taken)."""
    allowed = {k: v for k, v in changes.items() if k in ("full_name", "phone", "address", "email")}
    if "email" in allowed:
        allowed["email"] = normalize_email(allowed["email"])

    async def apply() -> None:
        async with db.write() as conn:
            row = await _locked_user(conn, user_id)
            if not row.active:
                raise AccountInactive()
            if allowed:
                await conn.execute(
                    update(users)
                    .where(users.c.id == user_id)
                    .values(**allowed, updated_at=utcnow())
                )

    try:
        await retrying(apply)
    except IntegrityError as exc:
        raise EmailTaken("An account with this email already exists.") from exc
    return await get_user(db=db, user_id=user_id)


async def _locked_user(conn: AsyncConnection, user_id: str) -> AnyRow:
    row = (
        await conn.execute(
            select(*_PUBLIC, users.c.password_hash).where(users.c.id == user_id).with_for_update()
        )
    ).first()
    if row is None:
        raise UserNotFound()
    return row


async def change_password(
    *,
    db: Database,
    passwords: Passwords,
    user_id: str,
    current_password: str,
    new_password: str,
) -> None:
    """Set a new password after checking the current one; every refresh token dies."""
    async with db.read() as conn:
        current_hash = await conn.scalar(
            select(users.c.password_hash).where(users.c.id == user_id, users.c.active.is_(True))
        )
    if current_hash is None:
        raise AccountInactive()
    if not await passwords.verify(current_hash, current_password):
        raise WrongPassword()
    new_hash = await passwords.hash(new_password)
    async with db.write() as conn:
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=new_hash, updated_at=utcnow())
        )
        await revoke_user_families(conn, user_id=user_id)


async def list_users(
    *, db: Database, q: str | None, limit: int, offset: int
) -> tuple[list[User], int]:
    """Users matching ``q`` in email or name (case-insensitive), oldest first."""
    condition = None
    if q:
        needle = q.strip().lower()
        condition = or_(
            users.c.email.contains(needle, autoescape=True),
            func.lower(users.c.full_name).contains(needle, autoescape=True),
        )
    page = select(*_PUBLIC).order_by(users.c.created_at, users.c.id).limit(limit).offset(offset)
    count = select(func.count()).select_from(users)
    if condition is not None:
        page = page.where(condition)
        count = count.where(condition)
    async with db.read() as conn:
        rows = (await conn.execute(page)).all()
        total = await conn.scalar(count)
    return [_user(row) for row in rows], int(total or 0)


async def set_role_and_activation(
    *, db: Database, user_id: str, role: str | None, active: bool | None
) -> User:
    """An admin's change of ``role``/``active``; the last active admin must remain one.

    Every active admin row is locked first, in id order, so two admins demoting each
    other at once are serialised and cannot leave the shop without one.
    """
    await retrying(
        lambda: _set_role_and_activation(db=db, user_id=user_id, role=role, active=active)
    )
    return await get_user(db=db, user_id=user_id)


async def _set_role_and_activation(
    *, db: Database, user_id: str, role: str | None, active: bool | None
) -> None:
    async with db.write() as conn:
        admins = (
            await conn.scalars(
                select(users.c.id)
                .where(users.c.role == ADMIN, users.c.active.is_(True))
                .order_by(users.c.id)
                .with_for_update()
            )
        ).all()
        row = await _locked_user(conn, user_id)
        new_role = role if role is not None else row.role
        new_active = active if active is not None else row.active
        was_admin = row.role == ADMIN and row.active
        if was_admin and not (new_role == ADMIN and new_active) and len(admins) <= 1:
            raise LastAdmin("Make another user an admin first.")
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(role=new_role, active=new_active, updated_at=utcnow())
        )
        if row.active and not new_active:
            await revoke_user_families(conn, user_id=user_id)


async def ensure_admin(
    *,
    db: Database,
    email: str,
    password: str,
    full_name: str = "Administrator",
    passwords: Passwords | None = None,
) -> str:
    """An active admin with this email and password: created, or an existing account
    promoted, reactivated and given the password. Returns the user id."""
    passwords = passwords or Passwords.from_settings(Settings())
    password_hash = await passwords.hash(password)
    email = normalize_email(email)
    for _ in range(3):
        async with db.write() as conn:
            user_id = await conn.scalar(
                select(users.c.id).where(users.c.email == email).with_for_update()
            )
            if user_id is not None:
                await conn.execute(
                    update(users)
                    .where(users.c.id == user_id)
                    .values(
                        role=ADMIN, active=True, password_hash=password_hash, updated_at=utcnow()
                    )
                )
                await revoke_user_families(conn, user_id=user_id)
                return str(user_id)
        try:
            user = await _insert_user(
                db=db, email=email, password_hash=password_hash, full_name=full_name, role=ADMIN
            )
        except EmailTaken:
            continue  # created concurrently: promote it on the next pass
        return user.id
    raise RuntimeError(f"could not create or promote the admin {email}")
