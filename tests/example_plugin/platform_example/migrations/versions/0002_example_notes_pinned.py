"""example: notes can be pinned

Revision ID: example_0002
Revises: example_0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "example_0002"
down_revision = "example_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("example_notes") as batch:
        batch.add_column(sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("example_notes") as batch:
        batch.drop_column("pinned")
