"""Unpaid-order slots (a per-customer cap on orders holding stock unpaid) and the lease
a payment holds while it charges the card.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pasar_kit.db

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The statuses whose orders hold stock without a payment (see pasar_orders.status).
_UNPAID = ("placing", "recovering", "pending_payment")


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("unpaid_slot", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("charge_claimed_until", pasar_kit.db.UTCDateTime(), nullable=True)
        )
    # Orders already waiting for payment take slots 1, 2, ... per customer, oldest first,
    # so they count against the cap (slots past it are simply never free for new ones).
    orders = sa.table(
        "orders",
        sa.column("id", sa.String),
        sa.column("user_id", sa.String),
        sa.column("status", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("unpaid_slot", sa.Integer),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(orders.c.id, orders.c.user_id)
        .where(orders.c.status.in_(_UNPAID))
        .order_by(orders.c.user_id, orders.c.created_at, orders.c.id)
    ).all()
    slots: dict[str, int] = {}
    for order_id, user_id in rows:
        slots[user_id] = slots.get(user_id, 0) + 1
        bind.execute(
            sa.update(orders).where(orders.c.id == order_id).values(unpaid_slot=slots[user_id])
        )
    op.create_index(
        "ix_orders_user_unpaid_slot", "orders", ["user_id", "unpaid_slot"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_orders_user_unpaid_slot", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("charge_claimed_until")
        batch.drop_column("unpaid_slot")
