"""core: job runs, event outbox and deliveries, webhooks, notifications

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from platform_core.db import UTCDateTime

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "core_job_runs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("job", sa.String(200), nullable=False),
        sa.Column("scheduled_for", UTCDateTime, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("enqueued_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_core_job_runs"),
        sa.UniqueConstraint("job", "scheduled_for", "attempt", name="uq_core_job_runs_slot"),
    )
    op.create_index("ix_core_job_runs_job_id", "core_job_runs", ["job", "id"])
    op.create_index("ix_core_job_runs_state_lease", "core_job_runs", ["state", "lease_until"])

    op.create_table(
        "core_events",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("plugin", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(100), nullable=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("dispatched_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_core_events"),
        sa.UniqueConstraint("uid", name="uq_core_events_uid"),
    )
    op.create_index("ix_core_events_name", "core_events", ["name"])
    op.create_index("ix_core_events_dispatched_id", "core_events", ["dispatched_at", "id"])

    op.create_table(
        "core_event_deliveries",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("handler", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("locked_until", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_core_event_deliveries"),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["core_events.id"],
            ondelete="CASCADE",
            name="fk_core_event_deliveries_event_id_core_events",
        ),
        sa.UniqueConstraint("event_id", "handler", name="uq_core_event_deliveries_event_handler"),
    )
    op.create_index(
        "ix_core_event_deliveries_due", "core_event_deliveries", ["state", "next_attempt_at"]
    )

    op.create_table(
        "core_webhooks",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("patterns", sa.JSON, nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_core_webhooks"),
    )
    op.create_table(
        "core_webhook_deliveries",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("webhook_id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("locked_until", UTCDateTime, nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_core_webhook_deliveries"),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["core_webhooks.id"],
            ondelete="CASCADE",
            name="fk_core_webhook_deliveries_webhook_id_core_webhooks",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["core_events.id"],
            ondelete="CASCADE",
            name="fk_core_webhook_deliveries_event_id_core_events",
        ),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_core_webhook_deliveries_pair"),
    )
    op.create_index(
        "ix_core_webhook_deliveries_due", "core_webhook_deliveries", ["state", "next_attempt_at"]
    )
    op.create_table(
        "core_webhook_attempts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("delivery_id", sa.Integer, nullable=False),
        sa.Column("attempted_at", UTCDateTime, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_core_webhook_attempts"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["core_webhook_deliveries.id"],
            ondelete="CASCADE",
            name="fk_core_webhook_attempts_delivery_id_core_webhook_deliveries",
        ),
    )
    op.create_index(
        "ix_core_webhook_attempts_delivery_id", "core_webhook_attempts", ["delivery_id"]
    )

    op.create_table(
        "core_notifications",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("event_uid", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("read_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_core_notifications"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["core_users.id"],
            ondelete="CASCADE",
            name="fk_core_notifications_user_id_core_users",
        ),
        sa.UniqueConstraint("user_id", "event_uid", name="uq_core_notifications_user_event"),
    )
    op.create_index(
        "ix_core_notifications_inbox", "core_notifications", ["user_id", "read_at", "id"]
    )


def downgrade() -> None:
    op.drop_table("core_notifications")
    op.drop_table("core_webhook_attempts")
    op.drop_table("core_webhook_deliveries")
    op.drop_table("core_webhooks")
    op.drop_table("core_event_deliveries")
    op.drop_table("core_events")
    op.drop_table("core_job_runs")
