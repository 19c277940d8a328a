"""scheduler: power addresses and outlets rewritten in their canonical forms

Rows stored before addresses were canonicalised compare as raw text, so the outlet guard
missed a device on the same outlet spelled differently. A row whose address a built-in
driver cannot read is left as it is (and logged): re-saving its config names the problem.
Downgrade keeps the canonical forms (they are valid configs).

Revision ID: scheduler_0002_power_addresses
Revises: scheduler_0001
Create Date: 2026-12-06
"""

import logging

import sqlalchemy as sa
from alembic import op
from platform_scheduler.outlets import canonical_address, canonical_outlet

revision = "scheduler_0002_power_addresses"
down_revision = "scheduler_0001"
branch_labels = None
depends_on = None

log = logging.getLogger("platform_scheduler.migrations")

configs = sa.table(
    "scheduler_power_configs",
    sa.column("device_id", sa.Integer),
    sa.column("driver", sa.String),
    sa.column("address", sa.String),
    sa.column("outlet", sa.String),
)


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(configs.c.device_id, configs.c.driver, configs.c.address, configs.c.outlet)
    ).all()
    for device_id, driver, address, outlet in rows:
        try:
            new_address = canonical_address(driver, address)
        except ValueError as exc:
            log.warning("power config of device %s kept as is: %s", device_id, exc)
            new_address = address
        if len(new_address) > 200:
            new_address = address
        new_outlet = canonical_outlet(driver, outlet)
        if (new_address, new_outlet) != (address, outlet):
            bind.execute(
                configs.update()
                .where(configs.c.device_id == device_id)
                .values(address=new_address, outlet=new_outlet)
            )


def downgrade() -> None:
    pass
