"""core: users and API tokens

Revision ID: core_0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from platform_core.db import UTCDateTime

revision = "core_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "core_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_core_users"),
        sa.UniqueConstraint("username", name="uq_core_users_username"),
        sa.CheckConstraint("role IN ('admin', 'operator', 'member')", name="ck_core_users_role"),
    )
    op.create_table(
        "core_api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_core_api_tokens"),
        sa.UniqueConstraint("digest", name="uq_core_api_tokens_digest"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["core_users.id"],
            ondelete="CASCADE",
            name="fk_core_api_tokens_user_id_core_users",
        ),
    )
    op.create_index("ix_core_api_tokens_user_id", "core_api_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_core_api_tokens_user_id", table_name="core_api_tokens")
    op.drop_table("core_api_tokens")
    op.drop_table("core_users")
