"""The users service's tables (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
)

from pasar_kit.db import UTCDateTime, new_metadata

metadata = new_metadata()

# A result row of any shape (SQLAlchemy types rows by their column tuple).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]

EMAIL_LENGTH = 254  # RFC 5321 path limit
NAME_LENGTH = 200

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    # Stored normalised (stripped, lower-case), so a plain unique index is case-insensitive.
    Column("email", String(EMAIL_LENGTH), nullable=False, unique=True),
    Column("full_name", String(NAME_LENGTH), nullable=False),
    Column("phone", String(32), nullable=True),
    Column("address", String(500), nullable=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_users_role_active", users.c.role, users.c.active)

# A family is one login: every refresh token rotated from it shares its absolute expiry,
# and revoking the family kills all of them at once.
refresh_families = Table(
    "refresh_families",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    # sha256 hex of the opaque token: a database leak yields no usable token.
    Column("token_hash", String(64), primary_key=True),
    Column(
        "family_id",
        String(36),
        ForeignKey("refresh_families.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    # Unique: two replicas creating the first key (or rotating) at once cannot both win.
    Column("generation", Integer, nullable=False, unique=True),
    Column("private_pem", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime, nullable=True),
)

# Failed logins, append-only so concurrent attempts never contend on one counter row.
login_failures = Table(
    "login_failures",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("account", String(EMAIL_LENGTH + 8), nullable=True),
    Column("address", String(64), nullable=True),
    Column("failed_at", UTCDateTime, nullable=False),
)
Index("ix_login_failures_account_failed_at", login_failures.c.account, login_failures.c.failed_at)
Index("ix_login_failures_address_failed_at", login_failures.c.address, login_failures.c.failed_at)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(36), primary_key=True),
    # The sender's event id: at-least-once delivery is stored exactly once.
    Column("event_id", String(100), nullable=False, unique=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("order_id", String(64), nullable=True),
    Column("status", String(32), nullable=True),
    Column("message", String(1000), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("read_at", UTCDateTime, nullable=True),
)
Index("ix_notifications_user_id_occurred_at", notifications.c.user_id, notifications.c.occurred_at)
