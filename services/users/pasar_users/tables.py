"""The User-Service's tables (SQLAlchemy Core)."""

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
    true,
)
from sqlalchemy.dialects import mysql

from pasar_kit.db import UTCDateTime, new_metadata

metadata = new_metadata()

# A result row of any shape (SQLAlchemy types rows by their column tuple).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]

EMAIL_LENGTH = 254  # RFC 5321 path limit
NAME_LENGTH = 200
ADDRESS_LENGTH = 64  # an IPv6 address with a zone fits; stored keys are shorter


def exact_string(length: int) -> String:
    """A string compared byte for byte everywhere. MariaDB's default collation would
    call ``jose@`` and ``josé@`` (or ``ss`` and ``ß``) equal, which SQLite and PostgreSQL
    do not: the values are normalised by the application, so the database must not
    fold them further."""
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    # Stored normalised (accounts.normalize_email: NFC, lower-case), so a plain unique
    # index compares addresses the way people mean them.
    Column("email", exact_string(EMAIL_LENGTH), nullable=False, unique=True),
    Column("full_name", String(NAME_LENGTH), nullable=False),
    Column("phone", String(32), nullable=True),
    Column("address", String(500), nullable=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Access tokens issued before this instant no longer count (deactivation, role or
    # password change); published by GET /internal/token-revocations.
    Column("tokens_not_before", UTCDateTime, nullable=True),
    # Set when the owner proved the address is theirs (a verification or reset link);
    # cleared when the address changes.
    Column("email_verified_at", UTCDateTime, nullable=True),
    # The customer's choice: order mail (security mail always goes).
    Column("order_emails", Boolean, nullable=False, server_default=true()),
    # The language of their mail: "id" (Bahasa Indonesia) or "en".
    Column("language", String(8), nullable=False, server_default="id"),
)
Index("ix_users_role_active", users.c.role, users.c.active)
Index("ix_users_tokens_not_before", users.c.tokens_not_before)

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

# The throttles' memory (see throttle.py): one row per attempt that counts against a
# ``subject`` (an email, a client id, a user id) from an ``address``. Append-only, so
# concurrent attempts never contend on one counter row; ``kind`` keeps the throttles
# apart, so no one throttle's rows ever count in another's.
attempts = Table(
    "attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(16), nullable=False),
    Column("subject", exact_string(EMAIL_LENGTH), nullable=False),
    Column("address", String(ADDRESS_LENGTH), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
Index("ix_attempts_kind_subject_at", attempts.c.kind, attempts.c.subject, attempts.c.at)
Index("ix_attempts_kind_address_at", attempts.c.kind, attempts.c.address, attempts.c.at)

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

# Single-use links mailed to a user (verify the email, reset the password). Only a
# sha256 of the token is kept; ``email`` is the address the link was sent to, so a
# verification link dies when the address changes.
email_tokens = Table(
    "email_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("email", exact_string(EMAIL_LENGTH), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("used_at", UTCDateTime, nullable=True),
)
Index("ix_email_tokens_user_id_purpose", email_tokens.c.user_id, email_tokens.c.purpose)

# Every message to a person, from request to final state: the mail outbox the sender
# drains and, kept afterwards, the delivery ledger admins read. A message is written in
# the transaction of what caused it; ``dedupe_key`` makes a cause yield one message
# however often it is replayed (e.g. a notification event and the recipient).
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("dedupe_key", String(200), nullable=True, unique=True),
    Column("channel", String(16), nullable=False),
    Column("recipient", exact_string(EMAIL_LENGTH), nullable=False),
    # Null for a message to an address with no account behind it (a reset request for
    # an unknown email, dropped by the sender without a trace outside this row).
    Column("user_id", String(36), nullable=True, index=True),
    Column("order_id", String(64), nullable=True, index=True),
    Column("template", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    # JSON: what the template needs beyond the user (order lines, total, status, note).
    Column("context", Text, nullable=False),
    # pending -> sent | failed (attempts exhausted) | dropped (nothing to send)
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(1000), nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # The RFC 5322 Message-ID, fixed at the first attempt so a retry is the same message.
    Column("message_id", String(255), nullable=True),
    Column("traceparent", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
)
Index("ix_deliveries_state_next_attempt_at", deliveries.c.state, deliveries.c.next_attempt_at)
Index("ix_deliveries_created_at", deliveries.c.created_at)
