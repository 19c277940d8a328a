"""pricing: ML models (named, versioned ONNX artifacts) and the model behind each decision

``pricing_ml_models`` holds one row per model name with its active version (one active
version per name by construction); ``pricing_ml_model_versions`` the uploaded artifacts
(bytes in the database, with digest, size, declared input schema and uploader).
``pricing_decisions`` gains the model version that made a decision (nullable: every
existing decision was made by a rule engine).

Revision ID: pricing_0004_ml_models
Revises: pricing_0003_agent_settings
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from platform_core import UTCDateTime

revision = "pricing_0004_ml_models"
down_revision = "pricing_0003_agent_settings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pricing_ml_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("active_version_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pricing_ml_models")),
        sa.UniqueConstraint("name", name=op.f("uq_pricing_ml_models_name")),
    )
    op.create_table(
        "pricing_ml_model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("input_schema", sa.JSON(), nullable=False),
        sa.Column("input_name", sa.String(length=200), nullable=False),
        sa.Column("output_kind", sa.String(length=16), nullable=False),
        sa.Column("opset", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("activated_at", UTCDateTime, nullable=True),
        sa.Column("rolled_back_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["pricing_ml_models.id"],
            name=op.f("fk_pricing_ml_model_versions_model_id_pricing_ml_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pricing_ml_model_versions")),
        sa.UniqueConstraint("model_id", "version", name="uq_pricing_ml_model_versions_version"),
        sqlite_autoincrement=True,  # ids never reused: onnxruntime sessions are cached by id
    )
    # Plain ALTER TABLE on both databases (a batch rebuild on SQLite is not needed for
    # nullable columns and would copy every decision).
    op.add_column("pricing_decisions", sa.Column("model_version_id", sa.Integer(), nullable=True))
    op.add_column("pricing_decisions", sa.Column("model_name", sa.String(64), nullable=True))
    op.add_column("pricing_decisions", sa.Column("model_version", sa.String(64), nullable=True))
    op.create_index(
        op.f("ix_pricing_decisions_model_version_id"),
        "pricing_decisions",
        ["model_version_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pricing_decisions_model_version_id"), table_name="pricing_decisions")
    for column in ("model_version", "model_name", "model_version_id"):
        op.execute(f"ALTER TABLE pricing_decisions DROP COLUMN {column}")
    op.drop_table("pricing_ml_model_versions")
    op.drop_table("pricing_ml_models")
