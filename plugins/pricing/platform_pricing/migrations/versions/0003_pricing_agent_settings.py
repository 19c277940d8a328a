"""pricing: agents enabled or disabled by their client, and each agent's own settings

``enabled`` (default true: every existing agent stays enabled) is changed by
``POST /agents/{id}/toggle-enabled`` with a compare-and-set on its current value; ``config``
holds the agent's settings (report and heartbeat intervals, a decision engine override),
``{}`` meaning every default.

Revision ID: pricing_0003_agent_settings
Revises: pricing_0002_dirty_hours
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "pricing_0003_agent_settings"
down_revision = "pricing_0002_dirty_hours"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases: a batch rebuild on SQLite would drop the table,
    # and with it (ON DELETE CASCADE) every instance and command of every agent.
    op.add_column(
        "pricing_agents",
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        "pricing_agents",
        sa.Column("config", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE pricing_agents DROP COLUMN config")
    op.execute("ALTER TABLE pricing_agents DROP COLUMN enabled")
