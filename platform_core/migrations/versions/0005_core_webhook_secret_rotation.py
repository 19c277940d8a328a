"""core: keep a webhook's previous secret, and until when, for rotation without downtime

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from platform_core.db import UTCDateTime

revision = "core_0005"
down_revision = "core_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("core_webhooks") as batch:
        batch.add_column(sa.Column("previous_secret", sa.String(100), nullable=True))
        batch.add_column(sa.Column("previous_secret_expires_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("core_webhooks") as batch:
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_secret")
