"""deployments: templates, apps, revisions, quotas, MongoDB databases and viewers

Revision ID: deployments_0001
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from platform_core import UTCDateTime

revision = "deployments_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("retired_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments_templates")),
        sa.UniqueConstraint("name", "version", name="uq_deployments_templates_version"),
    )
    op.create_table(
        "deployments_apps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("cluster", sa.String(length=63), nullable=False),
        sa.Column("namespace", sa.String(length=63), nullable=False),
        sa.Column("base_name", sa.String(length=63), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("applied_revision", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.Column("restarted_at", sa.String(length=40), nullable=True),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("synced_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments_apps")),
        sa.UniqueConstraint("user_id", "name", name="uq_deployments_apps_user_name"),
        sa.UniqueConstraint("host", name=op.f("uq_deployments_apps_host")),
    )
    op.create_index(op.f("ix_deployments_apps_user_id"), "deployments_apps", ["user_id"])
    op.create_table(
        "deployments_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["deployments_apps.id"],
            name=op.f("fk_deployments_revisions_app_id_deployments_apps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments_revisions")),
        sa.UniqueConstraint("app_id", "number", name="uq_deployments_revisions_number"),
    )
    op.create_index(op.f("ix_deployments_revisions_app_id"), "deployments_revisions", ["app_id"])
    op.create_table(
        "deployments_quotas",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("max_apps", sa.Integer(), nullable=False),
        sa.Column("max_replicas", sa.Integer(), nullable=False),
        sa.Column("cpu_millis", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("allow_image_override", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_deployments_quotas")),
    )
    op.create_table(
        "deployments_mongo",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("database", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_enc", sa.Text(), nullable=False),
        sa.Column("data_size", sa.BigInteger(), nullable=False),
        sa.Column("storage_size", sa.BigInteger(), nullable=False),
        sa.Column("collections", sa.Integer(), nullable=False),
        sa.Column("sampled_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("rotated_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_deployments_mongo")),
        sa.UniqueConstraint("database", name=op.f("uq_deployments_mongo_database")),
    )
    op.create_table(
        "deployments_viewers",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cluster", sa.String(length=63), nullable=False),
        sa.Column("namespace", sa.String(length=63), nullable=False),
        sa.Column("base_name", sa.String(length=63), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_enc", sa.Text(), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
        sa.Column("stopped_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_deployments_viewers")),
    )


def downgrade() -> None:
    op.drop_table("deployments_viewers")
    op.drop_table("deployments_mongo")
    op.drop_table("deployments_quotas")
    op.drop_index(op.f("ix_deployments_revisions_app_id"), table_name="deployments_revisions")
    op.drop_table("deployments_revisions")
    op.drop_index(op.f("ix_deployments_apps_user_id"), table_name="deployments_apps")
    op.drop_table("deployments_apps")
    op.drop_table("deployments_templates")
