"""customer email: verified addresses, mail preferences, single-use links, deliveries

* ``users.email_verified_at``, ``users.order_emails`` (default on), ``users.language``
  (default ``id``). Accounts that exist at the upgrade count as verified from their
  creation: they were made before anyone was asked to verify, and must not be locked out
  of ordering by a rule that did not exist when they signed up.
* ``email_tokens``: the sha256 of each verification or password-reset link.
* ``deliveries``: the mail outbox and delivery ledger.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import pasar_kit.db

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _exact(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_verified_at", pasar_kit.db.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("order_emails", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("language", sa.String(length=8), server_default="id", nullable=False)
        )
    users = sa.table(
        "users",
        sa.column("email_verified_at", pasar_kit.db.UTCDateTime()),
        sa.column("created_at", pasar_kit.db.UTCDateTime()),
    )
    op.execute(sa.update(users).values(email_verified_at=users.c.created_at))

    op.create_table(
        "email_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("email", _exact(254), nullable=False),
        sa.Column("created_at", pasar_kit.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pasar_kit.db.UTCDateTime(), nullable=False),
        sa.Column("used_at", pasar_kit.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_email_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_email_tokens")),
    )
    with op.batch_alter_table("email_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_tokens_expires_at"), ["expires_at"])
        batch_op.create_index("ix_email_tokens_user_id_purpose", ["user_id", "purpose"])

    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", _exact(254), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("next_attempt_at", pasar_kit.db.UTCDateTime(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("traceparent", sa.String(length=64), nullable=True),
        sa.Column("created_at", pasar_kit.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", pasar_kit.db.UTCDateTime(), nullable=False),
        sa.Column("sent_at", pasar_kit.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_deliveries_dedupe_key")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_user_id"), ["user_id"])
        batch_op.create_index(batch_op.f("ix_deliveries_order_id"), ["order_id"])
        batch_op.create_index("ix_deliveries_created_at", ["created_at"])
        batch_op.create_index(
            "ix_deliveries_state_next_attempt_at", ["state", "next_attempt_at"]
        )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("email_tokens")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("language")
        batch_op.drop_column("order_emails")
        batch_op.drop_column("email_verified_at")
