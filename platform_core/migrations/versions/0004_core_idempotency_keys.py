"""core: idempotency keys of POST requests and their stored responses

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from platform_core.db import UTCDateTime

revision = "core_0004"
down_revision = "core_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "core_idempotency_keys",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lock_token", sa.String(32), nullable=False),
        sa.Column("locked_until", UTCDateTime, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response_headers", sa.JSON, nullable=True),
        sa.Column("response_body", sa.LargeBinary, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_core_idempotency_keys"),
        sa.UniqueConstraint("owner", "key", name="uq_core_idempotency_keys_owner_key"),
    )
    op.create_index("ix_core_idempotency_keys_expires_at", "core_idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_core_idempotency_keys_expires_at", table_name="core_idempotency_keys")
    op.drop_table("core_idempotency_keys")
