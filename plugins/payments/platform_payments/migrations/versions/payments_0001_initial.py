"""payments: orders, line items, transactions, webhook deliveries

Revision ID: payments_0001
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from platform_core import UTCDateTime

revision = "payments_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("buyer_id", sa.Integer(), nullable=False),
        sa.Column("subject_plugin", sa.String(length=40), nullable=False),
        sa.Column("subject_kind", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("captured_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=True),
        sa.Column("provider_order_id", sa.String(length=128), nullable=True),
        sa.Column("approval_url", sa.Text(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("capture_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payments_orders"),
    )
    op.create_index("ix_payments_orders_buyer_id", "payments_orders", ["buyer_id"])
    op.create_index("ix_payments_orders_status", "payments_orders", ["status"])
    op.create_index(
        "ix_payments_orders_provider_order_id", "payments_orders", ["provider", "provider_order_id"]
    )
    op.create_table(
        "payments_line_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["payments_orders.id"],
            name="fk_payments_line_items_order_id_payments_orders",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_payments_line_items"),
    )
    op.create_index("ix_payments_line_items_order_id", "payments_line_items", ["order_id"])
    op.create_table(
        "payments_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("provider_ref", sa.String(length=128), nullable=True),
        sa.Column("request_id", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["payments_orders.id"],
            name="fk_payments_transactions_order_id_payments_orders",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_payments_transactions"),
    )
    op.create_index("ix_payments_transactions_order_id", "payments_transactions", ["order_id"])
    op.create_index(
        "ix_payments_transactions_provider_ref",
        "payments_transactions",
        ["provider", "provider_ref"],
    )
    op.create_table(
        "payments_webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("resource_id", sa.String(length=128), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payments_webhook_deliveries"),
        sa.UniqueConstraint("provider", "delivery_id", name="uq_payments_webhook_deliveries_id"),
    )


def downgrade() -> None:
    op.drop_table("payments_webhook_deliveries")
    op.drop_index("ix_payments_transactions_provider_ref", table_name="payments_transactions")
    op.drop_index("ix_payments_transactions_order_id", table_name="payments_transactions")
    op.drop_table("payments_transactions")
    op.drop_index("ix_payments_line_items_order_id", table_name="payments_line_items")
    op.drop_table("payments_line_items")
    op.drop_index("ix_payments_orders_provider_order_id", table_name="payments_orders")
    op.drop_index("ix_payments_orders_status", table_name="payments_orders")
    op.drop_index("ix_payments_orders_buyer_id", table_name="payments_orders")
    op.drop_table("payments_orders")
