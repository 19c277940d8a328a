"""pricing: dirty hours, marked by a trigger on every price point insert, so the hourly
aggregation re-aggregates hours that points reached after they were aggregated

A trigger (not the application) writes the marks: every insert path (agent reports by
``COPY``, CSV imports, direct SQL) marks the hours it touched in its own transaction, so a
mark is visible exactly when its points are. PostgreSQL: one statement-level trigger with a
transition table (one ``INSERT ... SELECT DISTINCT`` per statement, no per-row cost, no row
contention: marks are appended, duplicates allowed). SQLite: a row trigger that skips an
hour already marked. Marks of existing points are not needed: everything stored before
this revision was aggregated by the forward pass or lies after its frontier.

Revision ID: pricing_0002_dirty_hours
Revises: pricing_0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from platform_core import UTCDateTime

revision = "pricing_0002_dirty_hours"
down_revision = "pricing_0001"
branch_labels = None
depends_on = None

PG_FUNCTION = """
CREATE FUNCTION pricing_mark_dirty_hours() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO pricing_dirty_hours (client_id, pool_id, hour)
    SELECT DISTINCT client_id, pool_id,
           date_trunc('hour', observed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    FROM new_points;
    RETURN NULL;
END
$$
"""
PG_TRIGGER = """
CREATE TRIGGER pricing_price_points_dirty_hours AFTER INSERT ON pricing_price_points
REFERENCING NEW TABLE AS new_points FOR EACH STATEMENT
EXECUTE FUNCTION pricing_mark_dirty_hours()
"""
# SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text: the hour is a prefix.
SQLITE_TRIGGER = """
CREATE TRIGGER pricing_price_points_dirty_hours AFTER INSERT ON pricing_price_points
BEGIN
    INSERT INTO pricing_dirty_hours (client_id, pool_id, hour)
    SELECT NEW.client_id, NEW.pool_id, substr(NEW.observed_at, 1, 13) || ':00:00.000000'
    WHERE NOT EXISTS (
        SELECT 1 FROM pricing_dirty_hours
        WHERE client_id = NEW.client_id AND pool_id = NEW.pool_id
          AND hour = substr(NEW.observed_at, 1, 13) || ':00:00.000000'
    );
END
"""


def upgrade() -> None:
    op.create_table(
        "pricing_dirty_hours",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("hour", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pricing_dirty_hours")),
    )
    op.create_index(
        "ix_pricing_dirty_hours_hour", "pricing_dirty_hours", ["client_id", "pool_id", "hour"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS pricing_price_points_dirty_hours ON pricing_price_points"
        if op.get_bind().dialect.name == "postgresql"
        else "DROP TRIGGER IF EXISTS pricing_price_points_dirty_hours"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS pricing_mark_dirty_hours()")
    op.drop_index("ix_pricing_dirty_hours_hour", table_name="pricing_dirty_hours")
    op.drop_table("pricing_dirty_hours")
