"""example: notes table

Revision ID: example_0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from platform_core import UTCDateTime

revision = "example_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "example_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_example_notes"),
        sa.UniqueConstraint("owner_id", "title", name="uq_example_notes_owner_title"),
    )
    op.create_index("ix_example_notes_owner_id", "example_notes", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_example_notes_owner_id", table_name="example_notes")
    op.drop_table("example_notes")
