"""inventory: manufacturers, device types, locations, racks, devices, ports, connections, changes

Revision ID: inventory_0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from platform_core import UTCDateTime

revision = "inventory_0001"
down_revision = None
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "inventory_manufacturers",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_inventory_manufacturers"),
        sa.UniqueConstraint("name", name="uq_inventory_manufacturers_name"),
    )
    op.create_table(
        "inventory_device_types",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("manufacturer_id", sa.Integer, nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("u_height", sa.Integer, nullable=False),
        sa.Column("full_depth", sa.Boolean, nullable=False),
        sa.Column("port_names", sa.JSON, nullable=False),
        sa.Column("custom_fields", sa.JSON, nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_inventory_device_types"),
        sa.ForeignKeyConstraint(
            ["manufacturer_id"],
            ["inventory_manufacturers.id"],
            name="fk_inventory_device_types_manufacturer_id",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("manufacturer_id", "model", name="uq_inventory_device_types_model"),
        sa.CheckConstraint(
            "u_height >= 0 AND u_height <= 100", name="ck_inventory_device_types_u_height"
        ),
    )
    op.create_index(
        "ix_inventory_device_types_manufacturer_id", "inventory_device_types", ["manufacturer_id"]
    )
    op.create_table(
        "inventory_locations",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("parent_id", sa.Integer, nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_inventory_locations"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["inventory_locations.id"],
            name="fk_inventory_locations_parent_id_inventory_locations",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("name", name="uq_inventory_locations_name"),
    )
    op.create_index("ix_inventory_locations_parent_id", "inventory_locations", ["parent_id"])
    op.create_table(
        "inventory_racks",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("location_id", sa.Integer, nullable=False),
        sa.Column("u_height", sa.Integer, nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_inventory_racks"),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["inventory_locations.id"],
            name="fk_inventory_racks_location_id_inventory_locations",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("location_id", "name", name="uq_inventory_racks_location_name"),
        sa.CheckConstraint("u_height >= 1 AND u_height <= 100", name="ck_inventory_racks_u_height"),
    )
    op.create_index("ix_inventory_racks_location_id", "inventory_racks", ["location_id"])
    op.create_table(
        "inventory_devices",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("device_type_id", sa.Integer, nullable=False),
        sa.Column("manufacturer_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("serial", sa.String(100), nullable=True),
        sa.Column("asset_tag", sa.String(100), nullable=True),
        sa.Column("location_id", sa.Integer, nullable=True),
        sa.Column("rack_id", sa.Integer, nullable=True),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("face", sa.String(10), nullable=True),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("custom_fields", sa.JSON, nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_inventory_devices"),
        sa.ForeignKeyConstraint(
            ["device_type_id"],
            ["inventory_device_types.id"],
            name="fk_inventory_devices_device_type_id_inventory_device_types",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["manufacturer_id"],
            ["inventory_manufacturers.id"],
            name="fk_inventory_devices_manufacturer_id_inventory_manufacturers",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["inventory_locations.id"],
            name="fk_inventory_devices_location_id_inventory_locations",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["rack_id"],
            ["inventory_racks.id"],
            name="fk_inventory_devices_rack_id_inventory_racks",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("name", name="uq_inventory_devices_name"),
        sa.UniqueConstraint("asset_tag", name="uq_inventory_devices_asset_tag"),
        sa.UniqueConstraint("manufacturer_id", "serial", name="uq_inventory_devices_serial"),
        sa.CheckConstraint(
            "status IN ('planned', 'active', 'offline', 'maintenance', 'retired')",
            name="ck_inventory_devices_status",
        ),
        sa.CheckConstraint(
            "face IS NULL OR face IN ('front', 'rear')", name="ck_inventory_devices_face"
        ),
        sa.CheckConstraint(
            "(rack_id IS NULL AND position IS NULL) OR (rack_id IS NOT NULL)",
            name="ck_inventory_devices_placement",
        ),
    )
    for name, columns in (
        ("ix_inventory_devices_created", ["created_at", "id"]),
        ("ix_inventory_devices_updated", ["updated_at", "id"]),
        ("ix_inventory_devices_status_name", ["status", "name"]),
        ("ix_inventory_devices_type_name", ["device_type_id", "name"]),
        ("ix_inventory_devices_location_name", ["location_id", "name"]),
        ("ix_inventory_devices_rack_name", ["rack_id", "name"]),
    ):
        op.create_index(name, "inventory_devices", columns)
    op.create_table(
        "inventory_device_tags",
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.Column("tag", sa.String(50), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "tag", name="pk_inventory_device_tags"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["inventory_devices.id"],
            name="fk_inventory_device_tags_device_id_inventory_devices",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_inventory_device_tags_tag", "inventory_device_tags", ["tag", "device_id"])
    op.create_table(
        "inventory_custom_field_values",
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "name", name="pk_inventory_custom_field_values"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["inventory_devices.id"],
            name="fk_inventory_custom_field_values_device_id_inventory_devices",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_inventory_custom_field_values_value",
        "inventory_custom_field_values",
        ["name", "value"],
    )
    op.create_table(
        "inventory_rack_units",
        sa.Column("rack_id", sa.Integer, nullable=False),
        sa.Column("face", sa.String(10), nullable=False),
        sa.Column("unit", sa.Integer, nullable=False),
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("rack_id", "face", "unit", name="pk_inventory_rack_units"),
        sa.ForeignKeyConstraint(
            ["rack_id"],
            ["inventory_racks.id"],
            name="fk_inventory_rack_units_rack_id_inventory_racks",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["inventory_devices.id"],
            name="fk_inventory_rack_units_device_id_inventory_devices",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("face IN ('front', 'rear')", name="ck_inventory_rack_units_face"),
    )
    op.create_index("ix_inventory_rack_units_device_id", "inventory_rack_units", ["device_id"])
    op.create_table(
        "inventory_ports",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inventory_ports"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["inventory_devices.id"],
            name="fk_inventory_ports_device_id_inventory_devices",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("device_id", "name", name="uq_inventory_ports_device_name"),
    )
    op.create_table(
        "inventory_connections",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_inventory_connections"),
    )
    op.create_table(
        "inventory_cable_ends",
        sa.Column("connection_id", sa.Integer, nullable=False),
        sa.Column("side", sa.String(1), nullable=False),
        sa.Column("port_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "side", name="pk_inventory_cable_ends"),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["inventory_connections.id"],
            name="fk_inventory_cable_ends_connection_id_inventory_connections",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["port_id"],
            ["inventory_ports.id"],
            name="fk_inventory_cable_ends_port_id_inventory_ports",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("port_id", name="uq_inventory_cable_ends_port_id"),
        sa.CheckConstraint("side IN ('a', 'b')", name="ck_inventory_cable_ends_side"),
    )
    op.create_table(
        "inventory_changes",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("object_type", sa.String(30), nullable=False),
        sa.Column("object_id", sa.Integer, nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.Column("actor", sa.String(150), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inventory_changes"),
    )
    op.create_index(
        "ix_inventory_changes_object", "inventory_changes", ["object_type", "object_id", "id"]
    )
    op.create_index("ix_inventory_changes_request_id", "inventory_changes", ["request_id"])


def downgrade() -> None:
    for table in (
        "inventory_changes",
        "inventory_cable_ends",
        "inventory_connections",
        "inventory_ports",
        "inventory_rack_units",
        "inventory_custom_field_values",
        "inventory_device_tags",
        "inventory_devices",
        "inventory_racks",
        "inventory_locations",
        "inventory_device_types",
        "inventory_manufacturers",
    ):
        op.drop_table(table)
