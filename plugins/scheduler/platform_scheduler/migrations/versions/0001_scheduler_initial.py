"""scheduler: bookings, booking slots (exclusion constraint on PostgreSQL), policies, power

Revision ID: scheduler_0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from platform_core import UTCDateTime

revision = "scheduler_0001"
down_revision = None
branch_labels = None
depends_on = None

HOLDING = "('pending', 'approved', 'active')"


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        # Extensions are per database; created in ``public`` so that dropping a (test)
        # schema never drops it. Default operator classes resolve whatever the search_path.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public")
    op.create_table(
        "scheduler_bookings",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("owner_id", sa.Integer, nullable=False),
        sa.Column("owner_name", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_at", UTCDateTime, nullable=False),
        sa.Column("end_at", UTCDateTime, nullable=False),
        sa.Column("series_id", sa.String(36), nullable=True),
        sa.Column("power_on_start", sa.Boolean, nullable=False),
        sa.Column("power_off_end", sa.Boolean, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decision_note", sa.String(500), nullable=True),
        sa.Column("reminded_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_bookings"),
        sa.CheckConstraint("end_at > start_at", name="ck_scheduler_bookings_window"),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'active', 'completed', 'rejected', "
            "'cancelled', 'expired')",
            name="ck_scheduler_bookings_status",
        ),
    )
    op.create_index("ix_scheduler_bookings_owner", "scheduler_bookings", ["owner_id", "status"])
    op.create_index(
        "ix_scheduler_bookings_status_start", "scheduler_bookings", ["status", "start_at"]
    )
    op.create_index("ix_scheduler_bookings_status_end", "scheduler_bookings", ["status", "end_at"])
    op.create_index("ix_scheduler_bookings_series_id", "scheduler_bookings", ["series_id"])

    op.create_table(
        "scheduler_booking_devices",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("booking_id", sa.Integer, nullable=False),
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.Column("start_at", UTCDateTime, nullable=False),
        sa.Column("end_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_booking_devices"),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["scheduler_bookings.id"],
            name="fk_scheduler_booking_devices_booking_id_scheduler_bookings",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_scheduler_booking_devices_booking_id", "scheduler_booking_devices", ["booking_id"]
    )
    op.create_index(
        "ix_scheduler_booking_devices_device_start",
        "scheduler_booking_devices",
        ["device_id", "start_at"],
    )
    op.create_index(
        "ix_scheduler_booking_devices_device_end",
        "scheduler_booking_devices",
        ["device_id", "end_at"],
    )
    if postgres:
        # The guarantee: holding slots of one device never overlap (half-open windows, so
        # back-to-back bookings are fine). SQLite serializes check + insert instead.
        op.execute(
            "ALTER TABLE scheduler_booking_devices ADD CONSTRAINT "
            "ex_scheduler_booking_devices_no_overlap EXCLUDE USING gist "
            "(device_id WITH =, tstzrange(start_at, end_at, '[)') WITH &&) "
            f"WHERE (status IN {HOLDING})"
        )

    op.create_table(
        "scheduler_policies",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("device_type_id", sa.Integer, nullable=True),
        sa.Column("tag", sa.String(50), nullable=True),
        sa.Column("auto_approve", sa.Boolean, nullable=False),
        sa.Column("max_minutes", sa.Integer, nullable=True),
        sa.Column("max_days_ahead", sa.Integer, nullable=True),
        sa.Column("max_concurrent", sa.Integer, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_policies"),
        sa.UniqueConstraint("name", name="uq_scheduler_policies_name"),
        sa.CheckConstraint(
            "(device_type_id IS NULL) <> (tag IS NULL)", name="ck_scheduler_policies_target"
        ),
    )
    op.create_table(
        "scheduler_power_configs",
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.Column("driver", sa.String(40), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("outlet", sa.String(200), nullable=True),
        sa.Column("credentials", sa.String(64), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_scheduler_power_configs"),
    )
    op.create_table(
        "scheduler_power_audit",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("result", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_power_audit"),
    )
    op.create_index("ix_scheduler_power_audit_device_id", "scheduler_power_audit", ["device_id"])
    op.create_table(
        "scheduler_write_lock",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("counter", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_write_lock"),
    )
    op.execute("INSERT INTO scheduler_write_lock (id, counter) VALUES (1, 0)")


def downgrade() -> None:
    for table in (
        "scheduler_write_lock",
        "scheduler_power_audit",
        "scheduler_power_configs",
        "scheduler_policies",
        "scheduler_booking_devices",
        "scheduler_bookings",
    ):
        op.drop_table(table)
