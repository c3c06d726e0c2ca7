"""The Product-Service's tables (SQLAlchemy Core).

Stock lives on ``products.stock`` (what can still be reserved). Every unit that ever
entered the catalogue is in ``stock_adjustments`` (the creation stock is its first row,
reason "initial"), and every unit that left ``stock`` is on a held or committed
reservation line, which is what ``audit.py`` checks.

The search index (``search/``) is ``product_search`` plus what each database builds on
it natively in migration 0003, outside this metadata: an FTS5 table kept in step by
triggers (SQLite), a generated ``tsvector`` column with a GIN index (PostgreSQL),
FULLTEXT indexes (MariaDB). ``NATIVE_SEARCH_OBJECTS`` names them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql

from pasar_kit.db import UTCDateTime, new_metadata

metadata = new_metadata()

products = Table(
    "products",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("sku", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("stock", BigInteger, nullable=False),
    Column("category", String(100), nullable=False),
    Column("image_url", String(500), nullable=True),
    Column("active", Boolean, nullable=False),
    # Bumped by every catalogue edit; the ETag is made from it.
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint("price >= 0", name="price_not_negative"),
    CheckConstraint("stock >= 0", name="stock_not_negative"),
    # The public list always filters on active and sorts by one of these; the id makes
    # the order total so pages never overlap.
    Index("ix_products_active_name", "active", "name", "id"),
    Index("ix_products_active_price", "active", "price", "id"),
    Index("ix_products_active_created_at", "active", "created_at", "id"),
    Index("ix_products_active_category_name", "active", "category", "name", "id"),
)

stock_adjustments = Table(
    "stock_adjustments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("product_id", String(36), ForeignKey("products.id"), nullable=False, index=True),
    Column("delta", BigInteger, nullable=False),
    Column("reason", String(200), nullable=False),
    # The admin's user id; None for stock the system recorded itself (the seed).
    Column("by", String(36), nullable=True),
    Column("at", UTCDateTime(), nullable=False),
)

reservations = Table(
    "reservations",
    metadata,
    # Chosen by the caller (the Order-Service uses the order id), hence idempotent.
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("client_id", String(100), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # "released" (asked for) or "expired" (the worker's doing), for operators.
    Column("release_reason", String(16), nullable=True),
    CheckConstraint("status IN ('held', 'committed', 'released')", name="status_known"),
    Index("ix_reservations_status_expires_at", "status", "expires_at"),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column("reservation_id", String(64), ForeignKey("reservations.id"), primary_key=True),
    Column("product_id", String(36), ForeignKey("products.id"), primary_key=True),
    Column("quantity", BigInteger, nullable=False),
    # The catalogue at reservation time: the price snapshot the Order-Service uses.
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Index("ix_reservation_lines_product_id", "product_id"),
)

product_images = Table(
    "product_images",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("product_id", String(36), ForeignKey("products.id"), nullable=False),
    # 0 is the main image; a product's images are numbered 0..n-1 without gaps.
    Column("position", Integer, nullable=False),
    # SHA-256 of the original bytes (hex): the stored files' keys are made from it, and
    # rows uploading the same bytes share them.
    Column("content_hash", String(64), nullable=False),
    Column("extension", String(8), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("byte_size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Not unique: a reorder rewrites positions one row at a time.
    Index("ix_product_images_product_id_position", "product_id", "position"),
    Index("ix_product_images_content_hash", "content_hash"),
)


# Search terms are compared byte for byte: MariaDB's default collation would make
# "ss" and "ß" (and other folded pairs) one key.
Term = String(60).with_variant(mysql.VARCHAR(60, collation="utf8mb4_bin"), "mysql", "mariadb")

# One row per product, archived ones too (admins search them): its analysed terms
# (``search.analysis.document``). ``doc_id`` is the rowid SQLite's FTS5 table is keyed
# by (a TEXT primary key's implicit rowid may change on VACUUM); ``active`` is what the
# vocabulary counted for the product, so an edit knows what to take back out.
product_search = Table(
    "product_search",
    metadata,
    Column("doc_id", Integer, primary_key=True, autoincrement=True),
    Column("product_id", String(36), ForeignKey("products.id"), nullable=False, unique=True),
    Column("active", Boolean, nullable=False),
    Column("name_terms", Text, nullable=False),
    Column("body_terms", Text, nullable=False),
)

# How many active products hold each indexed term: the words typos are corrected to.
search_terms = Table(
    "search_terms",
    metadata,
    Column("term", Term, primary_key=True),
    Column("products", Integer, nullable=False),
)

# One-way synonym rules, applied at query time: a query word ``term`` also matches
# each of ``expands_to`` (space-separated analysed terms).
search_synonyms = Table(
    "search_synonyms",
    metadata,
    Column("term", Term, primary_key=True),
    Column("expands_to", Text, nullable=False),
)

# What migration 0003 builds natively for the index, which this metadata cannot say.
NATIVE_SEARCH_OBJECTS = frozenset(
    {
        "product_search_fts",  # SQLite FTS5 and its shadow tables
        "product_search_fts_data",
        "product_search_fts_idx",
        "product_search_fts_content",
        "product_search_fts_docsize",
        "product_search_fts_config",
        "document",  # PostgreSQL's generated tsvector column
        "ix_product_search_document",  # its GIN index
        "ft_product_search_name",  # MariaDB FULLTEXT indexes
        "ft_product_search_all",
    }
)


def outside_native_search(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """An Alembic ``include_object``: everything but the index's native objects."""
    return name not in NATIVE_SEARCH_OBJECTS
