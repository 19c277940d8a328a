"""core: the record of every change to a user account (core_user_audit)

Revision ID: core_0006
Revises: core_0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from platform_core.db import UTCDateTime

revision = "core_0006"
down_revision = "core_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "core_user_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("actor_id", sa.Integer, nullable=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_core_user_audit_at", "core_user_audit", ["at"])
    op.create_index("ix_core_user_audit_user_id", "core_user_audit", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_core_user_audit_user_id", table_name="core_user_audit")
    op.drop_index("ix_core_user_audit_at", table_name="core_user_audit")
    op.drop_table("core_user_audit")
