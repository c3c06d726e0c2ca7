"""The Order-Service's tables (SQLAlchemy Core)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from pasar_kit.db import UTCDateTime, new_metadata

metadata = new_metadata()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
_Serial = BigInteger().with_variant(Integer(), "sqlite")

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    # Public statuses plus the internal "placing" / "recovering" (never shown).
    Column("status", String(20), nullable=False),
    Column("total", BigInteger, nullable=False, default=0),
    Column("currency", String(3), nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("note", String(500), nullable=True),
    # Set by a successful charge; the card itself is never stored.
    Column("payment_reference", String(64), nullable=True),
    Column("paid_at", UTCDateTime(), nullable=True),
    # Set when a cancellation still has to hand the stock back; cleared once it has.
    Column("release_due_at", UTCDateTime(), nullable=True),
    # While payments are on: 1..max_unpaid_orders for an order that holds stock unpaid
    # (placing, recovering, pending_payment), NULL otherwise. Unique per user, so the
    # database itself caps a customer's unpaid orders, however many placements race.
    Column("unpaid_slot", Integer, nullable=True),
    # A payment that is charging the card holds this lease, so a concurrent payment of the
    # same order waits for its result instead of charging too; a dead request's lease ends.
    Column("charge_claimed_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_orders_user_created", "user_id", "created_at"),
    Index("ix_orders_status_created", "status", "created_at"),
    Index("ix_orders_created", "created_at"),
    Index("ix_orders_release_due_at", "release_due_at"),
    Index("ix_orders_user_unpaid_slot", "user_id", "unpaid_slot", unique=True),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(36), ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("product_id", String(64), nullable=False),
    Column("sku", String(100), nullable=False),
    Column("name", String(255), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("line_total", BigInteger, nullable=False),
)

status_history = Table(
    "status_history",
    metadata,
    Column("id", _Serial, primary_key=True, autoincrement=True),
    Column(
        "order_id",
        String(36),
        ForeignKey("orders.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("status", String(20), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    # Who made the change: a user id, or "system" for background jobs.
    Column("by", String(64), nullable=False),
    Column("note", String(500), nullable=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # in_flight | done
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, index=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", _Serial, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("order_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("type", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("message", String(255), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    # The W3C traceparent of the request that made the change (null when tracing is off):
    # the relay's delivery joins that trace.
    Column("traceparent", String(64), nullable=True),
    Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),
    Index("ix_outbox_order", "order_id", "id"),
)

# A customer's saved cart, so it follows them across devices: product ids and
# quantities only (prices are always the catalogue's, at placement).
carts = Table(
    "carts",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("items", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# One row per payment made at a gateway (midtrans, xendit). ``id`` is the reference the
# gateway knows it by, ``<order id>-<attempt>``: gateways refuse an order id twice, so a
# payment tried again after a failed call is a new attempt (online_payments.py).
payments = Table(
    "payments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("order_id", String(36), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("provider", String(16), nullable=False),
    # creating (asked, no answer yet) | pending | settled | expired | failed | abandoned
    Column("status", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    # The gateway's own id (Midtrans transaction id, Xendit invoice id) once known.
    Column("gateway_id", String(64), nullable=True),
    Column("redirect_url", String(500), nullable=True),
    Column("qr_string", Text, nullable=True),
    Column("va_number", String(64), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("settled_at", UTCDateTime(), nullable=True),
    # When the status job next asks the gateway (also its claim: pushed ahead while asking).
    Column("check_after", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_payments_order_attempt", "order_id", "attempt", unique=True),
    Index("ix_payments_check", "check_after"),
)

# Every notification a gateway sent, as it came, for an operator to read.
payment_notifications = Table(
    "payment_notifications",
    metadata,
    Column("id", _Serial, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("verified", Boolean, nullable=False),
    # paid, cancelled, refund_due, duplicate, pending, unknown_payment, amount_mismatch...
    Column("outcome", String(32), nullable=False),
    Column("payment_id", String(64), nullable=True),
    Column("order_id", String(36), nullable=True),
    Column("gateway_status", String(32), nullable=True),
    Column("body", Text, nullable=False),
    Index("ix_payment_notifications_order", "order_id", "id"),
    Index("ix_payment_notifications_received", "received_at"),
)
