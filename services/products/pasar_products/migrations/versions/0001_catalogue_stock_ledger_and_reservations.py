"""catalogue, stock ledger and reservations

Revision ID: 0001
Revises:
Create Date: 2026-11-25 15:22:23.890842
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pasar_kit.db

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('products',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('stock', sa.BigInteger(), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('image_url', sa.String(length=500), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', pasar_kit.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pasar_kit.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('price >= 0', name=op.f('ck_products_price_not_negative')),
    sa.CheckConstraint('stock >= 0', name=op.f('ck_products_stock_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('sku', name=op.f('uq_products_sku'))
    )
    op.create_index('ix_products_active_category_name', 'products', ['active', 'category', 'name', 'id'], unique=False)
    op.create_index('ix_products_active_created_at', 'products', ['active', 'created_at', 'id'], unique=False)
    op.create_index('ix_products_active_name', 'products', ['active', 'name', 'id'], unique=False)
    op.create_index('ix_products_active_price', 'products', ['active', 'price', 'id'], unique=False)

    op.create_table('reservations',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=True),
    sa.Column('expires_at', pasar_kit.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', pasar_kit.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pasar_kit.db.UTCDateTime(), nullable=False),
    sa.Column('release_reason', sa.String(length=16), nullable=True),
    sa.CheckConstraint("status IN ('held', 'committed', 'released')", name=op.f('ck_reservations_status_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservations'))
    )
    op.create_index('ix_reservations_status_expires_at', 'reservations', ['status', 'expires_at'], unique=False)

    op.create_table('reservation_lines',
    sa.Column('reservation_id', sa.String(length=64), nullable=False),
    sa.Column('product_id', sa.String(length=36), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('unit_price', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_reservation_lines_product_id_products')),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservations.id'], name=op.f('fk_reservation_lines_reservation_id_reservations')),
    sa.PrimaryKeyConstraint('reservation_id', 'product_id', name=op.f('pk_reservation_lines'))
    )
    op.create_index('ix_reservation_lines_product_id', 'reservation_lines', ['product_id'], unique=False)

    op.create_table('stock_adjustments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('product_id', sa.String(length=36), nullable=False),
    sa.Column('delta', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('by', sa.String(length=36), nullable=True),
    sa.Column('at', pasar_kit.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_stock_adjustments_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_adjustments'))
    )
    op.create_index(op.f('ix_stock_adjustments_product_id'), 'stock_adjustments', ['product_id'], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; MariaDB refuses to drop an FK's index first.
    op.drop_table('stock_adjustments')
    op.drop_table('reservation_lines')
    op.drop_table('reservations')
    op.drop_table('products')
