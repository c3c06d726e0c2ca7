"""Payments at a gateway (Midtrans, Xendit) and the notifications the gateways send.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 14:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pasar_kit.db

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=True),
        sa.Column("redirect_url", sa.String(500), nullable=True),
        sa.Column("qr_string", sa.Text(), nullable=True),
        sa.Column("va_number", sa.String(64), nullable=True),
        sa.Column("expires_at", pasar_kit.db.UTCDateTime(), nullable=True),
        sa.Column("settled_at", pasar_kit.db.UTCDateTime(), nullable=True),
        sa.Column("check_after", pasar_kit.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", pasar_kit.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", pasar_kit.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    op.create_index(
        "ix_payments_order_attempt", "payments", ["order_id", "attempt"], unique=True
    )
    op.create_index("ix_payments_check", "payments", ["check_after"])
    op.create_table(
        "payment_notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("received_at", pasar_kit.db.UTCDateTime(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=True),
        sa.Column("order_id", sa.String(36), nullable=True),
        sa.Column("gateway_status", sa.String(32), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_notifications")),
    )
    op.create_index(
        "ix_payment_notifications_order", "payment_notifications", ["order_id", "id"]
    )
    op.create_index(
        "ix_payment_notifications_received", "payment_notifications", ["received_at"]
    )


def downgrade() -> None:
    op.drop_table("payment_notifications")
    op.drop_table("payments")
