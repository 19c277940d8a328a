"""SQLAlchemy tables of the payments plugin, all prefixed ``payments_``.

Amounts are integers in the currency's minor unit (see :mod:`platform_payments.money`).
User ids refer to the core's users by value: no foreign keys across plugins. No card data
is ever stored; provider answers are kept redacted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_core import UTCDateTime, plugin_metadata, utcnow


class PaymentsBase(DeclarativeBase):
    """Declarative base bound to the payments plugin's own metadata."""

    metadata = plugin_metadata()


class Order(PaymentsBase):
    """An order: a buyer pays ``total_minor`` of ``currency`` for ``subject``."""

    __tablename__ = "payments_orders"
    __table_args__ = (
        Index("ix_payments_orders_buyer_id", "buyer_id"),
        Index("ix_payments_orders_status", "status"),
        Index("ix_payments_orders_provider_order_id", "provider", "provider_order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    buyer_id: Mapped[int] = mapped_column(Integer)
    subject_plugin: Mapped[str] = mapped_column(String(40))
    subject_kind: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    captured_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refund_pending_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    """Refunds the provider has accepted but not completed: reserved, not yet refunded."""
    status: Mapped[str] = mapped_column(String(24), default="created")
    provider: Mapped[str | None] = mapped_column(String(40))
    provider_order_id: Mapped[str | None] = mapped_column(String(128))
    approval_url: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    capture_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LineItem(PaymentsBase):
    """One line of an order: ``quantity`` times ``unit_minor``."""

    __tablename__ = "payments_line_items"
    __table_args__ = (Index("ix_payments_line_items_order_id", "order_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("payments_orders.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_minor: Mapped[int] = mapped_column(BigInteger)


class Transaction(PaymentsBase):
    """One interaction with a provider and its answer: ``start`` (a payment the payer must
    approve), ``authorize``, ``capture``, ``void``, ``refund``, or ``reversal`` (reported by
    the provider's webhook).

    ``status``: ``completed``, ``pending``, ``declined``, ``failed`` (refused for good),
    ``cancelled`` (a pending refund the provider cancelled) or ``error`` (a transient
    failure: network, timeout, 5xx; retried by the reconcile job). A ``pending`` refund
    reserves its amount (``Order.refund_pending_minor``) until it completes or fails.
    """

    __tablename__ = "payments_transactions"
    __table_args__ = (
        Index("ix_payments_transactions_order_id", "order_id"),
        Index("ix_payments_transactions_provider_ref", "provider", "provider_ref"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("payments_orders.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str] = mapped_column(String(40))
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(128))
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(PaymentsBase):
    """An incoming, verified webhook delivery, stored once per transmission id."""

    __tablename__ = "payments_webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("provider", "delivery_id", name="uq_payments_webhook_deliveries_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))
    delivery_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(128))
    resource_id: Mapped[str | None] = mapped_column(String(128))
    order_id: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
