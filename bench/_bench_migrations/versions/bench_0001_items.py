"""bench: items table read by bench/get_one_row.py

Revision ID: bench_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "bench_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``bench_items``."""
    op.create_table(
        "bench_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bench_items"),
    )


def downgrade() -> None:
    """Drop ``bench_items``."""
    op.drop_table("bench_items")
