"""User accounts: registration, profiles, passwords, roles and activation, and the
account mail around them (verifying the address, resetting a forgotten password, the
security notices). Mail is only written to the outbox here, in the transaction of what
caused it; the links are minted by the sender when it sends (see the README)."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import idna
from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pasar_kit.db import Clock, Database, retrying
from pasar_kit.problems import Forbidden, Unauthorized
from pasar_users import email_tokens
from pasar_users.mail import outbox
from pasar_users.passwords import Passwords
from pasar_users.problems import (
    AccountInactive,
    CurrentPasswordRequired,
    EmailAlreadyVerified,
    EmailTaken,
    HashingBusy,
    InvalidToken,
    LastAdmin,
    UserNotFound,
    WrongPassword,
)
from pasar_users.tables import AnyRow, users
from pasar_users.throttle import UNKNOWN_ADDRESS, Throttle
from pasar_users.tokens import revoke_user_families

CUSTOMER = "customer"
ADMIN = "admin"

Language = Literal["id", "en"]
DEFAULT_LANGUAGE: Language = "id"
# A link token is 43 characters (32 random bytes); anything much longer is no token.
TOKEN_MAX_LENGTH = 100


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
    email_verified: bool
    order_emails: bool
    language: str


_PUBLIC = (
    users.c.id,
    users.c.email,
    users.c.full_name,
    users.c.phone,
    users.c.address,
    users.c.role,
    users.c.active,
    users.c.created_at,
    users.c.email_verified_at,
    users.c.order_emails,
    users.c.language,
)


def _user(row: AnyRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        full_name=row.full_name,
        phone=row.phone,
        address=row.address,
        role=row.role,
        active=row.active,
        created_at=row.created_at,
        email_verified=row.email_verified_at is not None,
        order_emails=bool(row.order_emails),
        language=row.language,
    )


def normalize_email(email: str) -> str:
    """The one form an address is stored, looked up and compared in.

    Unicode NFC, so ``é`` typed precomposed or as ``e`` + combining accent is one
    address; lower case (pasar has always treated the whole address case-insensitively);
    an internationalised domain in its Unicode form, so ``xn--`` spelling and Unicode
    spelling are one domain. Anything that is no valid domain is only lower-cased: it
    can never have been registered, and a lookup must still work (``admin@pasar.local``).
    """
    email = unicodedata.normalize("NFC", email.strip())
    local, at, domain = email.rpartition("@")
    if not at:
        return unicodedata.normalize("NFC", email.lower())
    try:
        domain = idna.decode(idna.encode(domain, uts46=True))
    except (idna.IDNAError, UnicodeError):
        domain = domain.lower()
    # Lower-casing can undo NFC (e.g. a capital with a combining mark): normalise last.
    return unicodedata.normalize("NFC", f"{local.lower()}@{domain.lower()}")


def normalize_query(text: str) -> str:
    """A search needle in the stored form's terms (NFC, lower case)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text.strip()).lower())


async def _insert_user(
    *,
    db: Database,
    email: str,
    password_hash: str,
    full_name: str,
    role: str,
    now: datetime,
    language: Language = DEFAULT_LANGUAGE,
    verified: bool = False,
    address: str = UNKNOWN_ADDRESS,
) -> User:
    """The account row and, unless it starts ``verified``, its verification email (one
    transaction: no account without its mail, no mail without its account)."""
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
        "email_verified_at": now if verified else None,
        "order_emails": True,
        "language": language,
    }

    async def insert_row() -> None:
        async with db.write() as conn:
            await conn.execute(insert(users).values(values))
            if not verified:
                await outbox.enqueue(
                    conn,
                    template="verify_email",
                    recipient=email,
                    language=language,
                    now=now,
                    user_id=user_id,
                )
                await Throttle.verification_sent(conn, user_id=user_id, address=address, now=now)

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
        email_verified=verified,
        order_emails=True,
        language=language,
    )


async def register(
    *,
    db: Database,
    passwords: Passwords,
    email: str,
    password: str,
    full_name: str,
    now: datetime,
    throttle: Throttle | None = None,
    address: str = UNKNOWN_ADDRESS,
    language: Language = DEFAULT_LANGUAGE,
) -> User:
    """A new customer, created at ``now``, with a verification email in the outbox (the
    caller nudges the sender once this returns). Counted per address before the
    (expensive) hash is made; trusted callers (the command line's demo seed) pass no
    throttle."""
    attempt = await throttle.registration(address=address) if throttle is not None else None
    try:
        password_hash = await passwords.hash(password)
    except HashingBusy:
        if throttle is not None and attempt is not None:
            await throttle.forget(attempt)  # shed before any work: it does not count
        raise
    return await _insert_user(
        db=db,
        email=email,
        password_hash=password_hash,
        full_name=full_name,
        role=CUSTOMER,
        now=now,
        language=language,
        address=address,
    )


# Built once (see ``pasar_kit.db``): every order placed asks for its user.
_BY_ID = select(*_PUBLIC).where(users.c.id == bindparam("uid"))


async def get_user(*, db: Database, user_id: str) -> User:
    async with db.read() as conn:
        row = (await conn.execute(_BY_ID, {"uid": user_id})).first()
    if row is None:
        raise UserNotFound()
    return _user(row)


def issued_before(not_before: datetime | None, issued_at: float) -> bool:
    """A token issued at ``issued_at`` (its ``iat``) is void: the account's tokens were
    revoked after it was issued. The same rule as every consumer of the revocation feed."""
    return not_before is not None and issued_at < not_before.timestamp()


async def _token_owner(db: Database, user_id: str) -> AnyRow | None:
    async with db.read() as conn:
        return (
            await conn.execute(
                select(*_PUBLIC, users.c.tokens_not_before).where(users.c.id == user_id)
            )
        ).first()


async def get_active_user(*, db: Database, user_id: str, issued_at: float) -> User:
    """The caller's own account, from a token issued at ``issued_at``: 403 when the
    account is deactivated, 401 when its tokens were revoked after this one was issued."""
    row = await _token_owner(db, user_id)
    if row is None:
        raise UserNotFound()
    if not row.active:
        raise AccountInactive()
    if issued_before(row.tokens_not_before, issued_at):
        raise Unauthorized("The access token has been revoked; sign in again.")
    return _user(row)


async def require_admin(*, db: Database, user_id: str, issued_at: float) -> User:
    """The caller is, right now, an active admin (a token's role can be minutes stale)."""
    row = await _token_owner(db, user_id)
    if row is None or not row.active:
        raise Forbidden("Only an active admin may do this.")
    if issued_before(row.tokens_not_before, issued_at):
        raise Unauthorized("The access token has been revoked; sign in again.")
    if row.role != ADMIN:
        raise Forbidden("Only an active admin may do this.")
    return _user(row)


async def token_revocations(
    *, db: Database, horizon_seconds: int, now: datetime
) -> list[tuple[str, datetime]]:
    """Users whose tokens were revoked within the ``horizon_seconds`` before ``now``,
    oldest first.

    One range scan of ``ix_users_tokens_not_before``: cheap however many users there are.
    """
    since = now - timedelta(seconds=horizon_seconds)
    async with db.read() as conn:
        rows = await conn.execute(
            select(users.c.id, users.c.tokens_not_before)
            .where(users.c.tokens_not_before >= since)
            .order_by(users.c.tokens_not_before, users.c.id)
        )
        return [(row.id, row.tokens_not_before) for row in rows]


async def confirm_password(
    *,
    db: Database,
    passwords: Passwords,
    throttle: Throttle,
    user_id: str,
    address: str,
    password: str,
) -> str:
    """Check the signed-in user's current password, throttled per account (a stolen
    access token must not become a fast guessing channel). Returns the hash checked."""
    async with db.read() as conn:
        current_hash = await conn.scalar(
            select(users.c.password_hash).where(users.c.id == user_id, users.c.active.is_(True))
        )
    if current_hash is None:
        raise AccountInactive()
    attempt = await throttle.reauth_attempt(user_id=user_id, address=address)
    try:
        matches = await passwords.verify(current_hash, password)
    except HashingBusy:
        await throttle.forget(attempt)  # not a guess: it was never checked
        raise
    if not matches:
        raise WrongPassword()
    await throttle.reauth_succeeded(user_id=user_id)
    return str(current_hash)


async def update_profile(
    *,
    db: Database,
    passwords: Passwords,
    throttle: Throttle,
    user_id: str,
    address: str,
    changes: dict[str, Any],
    now: datetime,
    current_password: str | None = None,
) -> User:
    """Edit ``full_name``, ``phone``, ``address``, ``email`` (409 if the email is taken),
    ``order_emails`` and ``language``, stamped as updated at ``now``.

    A new email needs the current password: the email is where a password reset would
    go, so changing it with a stolen access token alone would take the account over. It
    is unverified until its link is clicked; the old address is told of the change and
    the new one gets a verification email (the caller nudges the sender).
    """
    allowed = {k: v for k, v in changes.items() if k in _EDITABLE}
    confirmed_hash: str | None = None
    if "email" in allowed:
        allowed["email"] = normalize_email(allowed["email"])
        current = await get_user(db=db, user_id=user_id)
        if allowed["email"] == current.email:
            del allowed["email"]  # unchanged: nothing to confirm
        elif current_password is None:
            raise CurrentPasswordRequired()
        else:
            confirmed_hash = await confirm_password(
                db=db,
                passwords=passwords,
                throttle=throttle,
                user_id=user_id,
                address=address,
                password=current_password,
            )

    async def apply() -> None:
        async with db.write() as conn:
            row = await _locked_user(conn, user_id)
            if not row.active:
                raise AccountInactive()
            if confirmed_hash is not None and row.password_hash != confirmed_hash:
                raise WrongPassword()  # the password changed since we checked it
            new_email = allowed.get("email")
            moved = new_email is not None and new_email != row.email
            values = {**allowed, "email_verified_at": None} if moved else allowed
            if values:
                await conn.execute(
                    update(users).where(users.c.id == user_id).values(**values, updated_at=now)
                )
            if moved:
                assert new_email is not None
                language = allowed.get("language", row.language)
                await outbox.enqueue(
                    conn,
                    template="email_changed",
                    recipient=row.email,
                    language=language,
                    now=now,
                    context={"new_email": new_email},
                    user_id=user_id,
                )
                await outbox.enqueue(
                    conn,
                    template="verify_email",
                    recipient=new_email,
                    language=language,
                    now=now,
                    user_id=user_id,
                )
                await Throttle.verification_sent(conn, user_id=user_id, address=address, now=now)

    try:
        await retrying(apply)
    except IntegrityError as exc:
        raise EmailTaken("An account with this email already exists.") from exc
    return await get_user(db=db, user_id=user_id)


_EDITABLE = ("full_name", "phone", "address", "email", "order_emails", "language")


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
    throttle: Throttle,
    user_id: str,
    address: str,
    current_password: str,
    new_password: str,
    clock: Clock,
) -> None:
    """Set a new password after checking the current one (throttled per account); every
    refresh token dies and every access token issued until now is revoked, and a
    ``password_changed`` notice goes to the account's address (the caller nudges the
    sender). The instant of the change is read from ``clock`` under the user's row lock."""
    current_hash = await confirm_password(
        db=db,
        passwords=passwords,
        throttle=throttle,
        user_id=user_id,
        address=address,
        password=current_password,
    )
    new_hash = await passwords.hash(new_password)

    async def apply() -> None:
        async with db.write() as conn:
            row = await _locked_user(conn, user_id)
            if row.password_hash != current_hash:
                raise WrongPassword()  # changed meanwhile: the password given is stale
            # Taken under the row lock, so a login reading the row after us issues its
            # token later than this instant (see grants.py).
            now = clock()
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=new_hash, updated_at=now, tokens_not_before=now)
            )
            await revoke_user_families(conn, user_id=user_id, now=now)
            await _password_changed_notice(conn, row, now=now)

    await retrying(apply)


async def _password_changed_notice(conn: AsyncConnection, row: AnyRow, *, now: datetime) -> None:
    await outbox.enqueue(
        conn,
        template="password_changed",
        recipient=row.email,
        language=row.language,
        now=now,
        user_id=row.id,
    )


async def verify_email(*, db: Database, token: str, now: datetime) -> None:
    """Mark the address verified with a link's token (one transaction): 400
    ``invalid_token`` when the token is unknown, used, voided or expired, or was mailed
    to an address the account no longer has, or the account is deactivated."""

    async def apply() -> None:
        async with db.write() as conn:
            redeemed = await email_tokens.redeem(conn, token=token, purpose="verify_email", now=now)
            if redeemed is None:
                raise InvalidToken()
            row = await _locked_user(conn, redeemed.user_id)
            if not row.active or row.email != redeemed.email:
                raise InvalidToken()  # rolled back: the token stays as it was
            if row.email_verified_at is None:
                await conn.execute(
                    update(users)
                    .where(users.c.id == row.id)
                    .values(email_verified_at=now, updated_at=now)
                )

    await retrying(apply)


async def request_verification(
    *, db: Database, throttle: Throttle, user_id: str, address: str, now: datetime
) -> None:
    """Another verification email for the signed-in user: 409 when the address is
    already verified, 429 past the resend limits (``Throttle.verification_email``)."""
    if (await get_user(db=db, user_id=user_id)).email_verified:
        raise EmailAlreadyVerified("Your email address is already verified.")
    await throttle.verification_email(user_id=user_id, address=address)
    async with db.write() as conn:
        row = await _locked_user(conn, user_id)
        if row.email_verified_at is not None:
            raise EmailAlreadyVerified("Your email address is already verified.")
        await outbox.enqueue(
            conn,
            template="verify_email",
            recipient=row.email,
            language=row.language,
            now=now,
            user_id=user_id,
        )


async def request_password_reset(
    *, db: Database, throttle: Throttle, email: str, address: str, now: datetime
) -> bool:
    """Queue a reset link for ``email``, whoever it belongs to: the same statements run
    whether or not an account has this address (the sender resolves it and drops the
    message when none does), so neither the answer nor its timing tells. False when
    ``email`` is past its own limit (nothing queued); 429 past the address's limit."""
    email = normalize_email(email)
    if not await throttle.password_reset(email=email, address=address):
        return False
    async with db.write() as conn:
        await outbox.enqueue(
            conn,
            template="password_reset",
            recipient=email,
            # The account's language is the sender's to find: looking it up here would
            # make the work differ between known and unknown addresses.
            language=DEFAULT_LANGUAGE,
            now=now,
        )
    return True


async def reset_password(
    *, db: Database, passwords: Passwords, token: str, new_password: str, clock: Clock
) -> None:
    """Set a new password with a reset link's token. The hash is made first (outside any
    transaction); then one transaction spends the token, sets the password, revokes
    every token the account holds, marks the address verified (its owner just proved
    it) and queues a ``password_changed`` notice. Two confirmations racing with one
    token: the token's conditional update lets exactly one through. 400
    ``invalid_token`` for a bad token, a deactivated account or an address changed since
    the link was sent (the caller nudges the sender on success)."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        raise InvalidToken()  # no hash is spent on what cannot be a token
    new_hash = await passwords.hash(new_password)

    async def apply() -> None:
        async with db.write() as conn:
            redeemed = await email_tokens.redeem(
                conn, token=token, purpose="password_reset", now=clock()
            )
            if redeemed is None:
                raise InvalidToken()
            row = await _locked_user(conn, redeemed.user_id)
            if not row.active or row.email != redeemed.email:
                raise InvalidToken()  # rolled back: the token stays as it was
            now = clock()  # under the row lock, as in change_password
            await conn.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(
                    password_hash=new_hash,
                    updated_at=now,
                    tokens_not_before=now,
                    email_verified_at=func.coalesce(users.c.email_verified_at, now),
                )
            )
            await revoke_user_families(conn, user_id=row.id, now=now)
            await _password_changed_notice(conn, row, now=now)

    await retrying(apply)


async def list_users(
    *, db: Database, q: str | None, limit: int, offset: int
) -> tuple[list[User], int]:
    """Users matching ``q`` in email or name (case-insensitive), oldest first."""
    condition = None
    if q:
        needle = normalize_query(q)
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
    *, db: Database, user_id: str, role: str | None, active: bool | None, clock: Clock
) -> User:
    """An admin's change of ``role``/``active``; the last active admin must remain one.

    Every active admin row is locked first, in id order, so two admins demoting each
    other at once are serialised and cannot leave the shop without one. The instant of
    the change is read from ``clock`` under those locks.
    """
    await retrying(
        lambda: _set_role_and_activation(
            db=db, user_id=user_id, role=role, active=active, clock=clock
        )
    )
    return await get_user(db=db, user_id=user_id)


async def _set_role_and_activation(
    *, db: Database, user_id: str, role: str | None, active: bool | None, clock: Clock
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
        now = clock()  # under the row lock, as in change_password
        values: dict[str, Any] = {"role": new_role, "active": new_active, "updated_at": now}
        if new_role != row.role or (row.active and not new_active):
            # The powers of tokens already issued end now, not when they expire.
            values["tokens_not_before"] = now
        await conn.execute(update(users).where(users.c.id == user_id).values(**values))
        if row.active and not new_active:
            await revoke_user_families(conn, user_id=user_id, now=now)


async def ensure_admin(
    *,
    db: Database,
    email: str,
    password: str,
    passwords: Passwords,
    clock: Clock,
    full_name: str = "Administrator",
) -> str:
    """An active admin with this email and password: created, or an existing account
    promoted, reactivated and given the password (the instant read from ``clock``, the
    real time unless given, under the row lock as in ``change_password``). Returns the
    user id. The address counts as verified and no mail is sent: whoever runs this
    (the command line, at deployment) owns the account by definition."""
    password_hash = await passwords.hash(password)
    email = normalize_email(email)
    for _ in range(3):
        async with db.write() as conn:
            user_id = await conn.scalar(
                select(users.c.id).where(users.c.email == email).with_for_update()
            )
            if user_id is not None:
                now = clock()
                await conn.execute(
                    update(users)
                    .where(users.c.id == user_id)
                    .values(
                        role=ADMIN,
                        active=True,
                        password_hash=password_hash,
                        updated_at=now,
                        tokens_not_before=now,  # a new password: earlier tokens end
                        email_verified_at=func.coalesce(users.c.email_verified_at, now),
                    )
                )
                await revoke_user_families(conn, user_id=user_id, now=now)
                return str(user_id)
        try:
            user = await _insert_user(
                db=db,
                email=email,
                password_hash=password_hash,
                full_name=full_name,
                role=ADMIN,
                now=clock(),
                verified=True,
            )
        except EmailTaken:
            continue  # created concurrently: promote it on the next pass
        return user.id
    raise RuntimeError(f"could not create or promote the admin {email}")
