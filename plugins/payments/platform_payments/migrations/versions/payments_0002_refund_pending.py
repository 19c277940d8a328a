"""payments: pending refunds reserve their amount on the order

Revision ID: payments_0002
Revises: payments_0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "payments_0002"
down_revision = "payments_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments_orders") as batch:
        batch.add_column(
            sa.Column("refund_pending_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
    # refunds recorded as pending before this revision were counted as refunded: move them
    # to the reservation, so the order is refunded only when the provider completes them
    pending = sa.text(
        "SELECT order_id, SUM(amount_minor) FROM payments_transactions"
        " WHERE kind = 'refund' AND status = 'pending' GROUP BY order_id"
    )
    conn = op.get_bind()
    for order_id, minor in conn.execute(pending).all():
        conn.execute(
            sa.text(
                "UPDATE payments_orders SET refund_pending_minor = :m,"
                " refunded_minor = refunded_minor - :m WHERE id = :id"
            ),
            {"m": int(minor), "id": order_id},
        )
    conn.execute(
        sa.text(
            "UPDATE payments_orders SET status = CASE WHEN refunded_minor = 0 THEN 'paid'"
            " WHEN refunded_minor < captured_minor THEN 'partially_refunded'"
            " ELSE 'refunded' END WHERE refund_pending_minor > 0"
        )
    )


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE payments_orders SET refunded_minor = refunded_minor + refund_pending_minor,"
            " status = CASE WHEN refunded_minor + refund_pending_minor < captured_minor"
            " THEN 'partially_refunded' ELSE 'refunded' END WHERE refund_pending_minor > 0"
        )
    )
    with op.batch_alter_table("payments_orders") as batch:
        batch.drop_column("refund_pending_minor")
