"""core: remember each user's last successful login

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from platform_core.db import UTCDateTime

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("core_users") as batch:
        batch.add_column(sa.Column("last_login_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("core_users") as batch:
        batch.drop_column("last_login_at")
