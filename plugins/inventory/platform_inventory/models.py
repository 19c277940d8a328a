"""Tables of the inventory plugin, all prefixed ``inventory_``.

Two invariants are held by the database itself, not only by the service:

- rack space: ``inventory_rack_units`` has one row per occupied (rack, face, unit), primary
  key on the three; a full-depth device occupies its units on both faces;
- one connection per port end: a connection's ends live in ``inventory_cable_ends`` whose
  ``port_id`` is unique (so a port is in at most one connection, whichever end) and whose
  primary key ``(connection_id, side)`` allows one ``a`` and one ``b`` end per connection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_core import UTCDateTime, plugin_metadata, utcnow

STATUSES = ("planned", "active", "offline", "maintenance", "retired")


class InventoryBase(DeclarativeBase):
    """Declarative base owning the plugin's own metadata."""

    metadata = plugin_metadata()


class Manufacturer(InventoryBase):
    """A maker of device types; names are unique."""

    __tablename__ = "inventory_manufacturers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DeviceType(InventoryBase):
    """A model of a manufacturer: height in U, depth, port templates, custom field definitions."""

    __tablename__ = "inventory_device_types"
    __table_args__ = (
        UniqueConstraint("manufacturer_id", "model", name="uq_inventory_device_types_model"),
        CheckConstraint("u_height >= 0 AND u_height <= 100", name="u_height"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    manufacturer_id: Mapped[int] = mapped_column(
        ForeignKey(
            "inventory_manufacturers.id",
            ondelete="RESTRICT",
            name="fk_inventory_device_types_manufacturer_id",  # the convention's is > 63 chars
        ),
        index=True,
    )
    model: Mapped[str] = mapped_column(String(100))
    u_height: Mapped[int] = mapped_column(Integer, default=1)
    full_depth: Mapped[bool] = mapped_column(Boolean, default=True)
    port_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    custom_fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Location(InventoryBase):
    """A node of the location tree (site > room > ...); names are unique."""

    __tablename__ = "inventory_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(40), default="site")
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("inventory_locations.id", ondelete="RESTRICT"), index=True, nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Rack(InventoryBase):
    """A rack in a location, ``u_height`` units tall (unit 1 at the bottom)."""

    __tablename__ = "inventory_racks"
    __table_args__ = (
        UniqueConstraint("location_id", "name", name="uq_inventory_racks_location_name"),
        CheckConstraint("u_height >= 1 AND u_height <= 100", name="u_height"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    location_id: Mapped[int] = mapped_column(
        ForeignKey("inventory_locations.id", ondelete="RESTRICT"), index=True
    )
    u_height: Mapped[int] = mapped_column(Integer, default=42)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Device(InventoryBase):
    """A device: unique name and asset tag, serial unique per manufacturer, placement."""

    __tablename__ = "inventory_devices"
    __table_args__ = (
        UniqueConstraint("manufacturer_id", "serial", name="uq_inventory_devices_serial"),
        CheckConstraint(
            "status IN ('planned', 'active', 'offline', 'maintenance', 'retired')", name="status"
        ),
        CheckConstraint("face IS NULL OR face IN ('front', 'rear')", name="face"),
        CheckConstraint(
            "(rack_id IS NULL AND position IS NULL) OR (rack_id IS NOT NULL)", name="placement"
        ),
        Index("ix_inventory_devices_created", "created_at", "id"),
        Index("ix_inventory_devices_updated", "updated_at", "id"),
        Index("ix_inventory_devices_status_name", "status", "name"),
        Index("ix_inventory_devices_type_name", "device_type_id", "name"),
        Index("ix_inventory_devices_location_name", "location_id", "name"),
        Index("ix_inventory_devices_rack_name", "rack_id", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    device_type_id: Mapped[int] = mapped_column(
        ForeignKey("inventory_device_types.id", ondelete="RESTRICT")
    )
    # Denormalised from the type so that the database holds "serial unique per manufacturer".
    manufacturer_id: Mapped[int] = mapped_column(
        ForeignKey("inventory_manufacturers.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(20), default="active")
    serial: Mapped[str | None] = mapped_column(String(100), nullable=True)
    asset_tag: Mapped[str | None] = mapped_column(String(100), unique=True, nullable=True)
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("inventory_locations.id", ondelete="RESTRICT"), nullable=True
    )
    rack_id: Mapped[int | None] = mapped_column(
        ForeignKey("inventory_racks.id", ondelete="RESTRICT"), nullable=True
    )
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    face: Mapped[str | None] = mapped_column(String(10), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DeviceTag(InventoryBase):
    """One tag of a device (the indexed copy of ``Device.tags`` used by the ``tag`` filter)."""

    __tablename__ = "inventory_device_tags"
    __table_args__ = (Index("ix_inventory_device_tags_tag", "tag", "device_id"),)

    device_id: Mapped[int] = mapped_column(
        ForeignKey("inventory_devices.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)


class CustomFieldValue(InventoryBase):
    """One custom field value of a device, as text (the indexed copy used by ``cf_`` filters)."""

    __tablename__ = "inventory_custom_field_values"
    __table_args__ = (Index("ix_inventory_custom_field_values_value", "name", "value"),)

    device_id: Mapped[int] = mapped_column(
        ForeignKey("inventory_devices.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class RackUnit(InventoryBase):
    """One occupied unit of one face of a rack; the primary key forbids double booking."""

    __tablename__ = "inventory_rack_units"
    __table_args__ = (CheckConstraint("face IN ('front', 'rear')", name="face"),)

    rack_id: Mapped[int] = mapped_column(
        ForeignKey("inventory_racks.id", ondelete="CASCADE"), primary_key=True
    )
    face: Mapped[str] = mapped_column(String(10), primary_key=True)
    unit: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(
        ForeignKey("inventory_devices.id", ondelete="CASCADE"), index=True
    )


class Port(InventoryBase):
    """A named port of a device."""

    __tablename__ = "inventory_ports"
    __table_args__ = (UniqueConstraint("device_id", "name", name="uq_inventory_ports_device_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("inventory_devices.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))


class Connection(InventoryBase):
    """A cable joining two ports; its two ends are rows of ``inventory_cable_ends``."""

    __tablename__ = "inventory_connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CableEnd(InventoryBase):
    """One end (``a`` or ``b``) of a connection; ``port_id`` is unique across all ends."""

    __tablename__ = "inventory_cable_ends"
    __table_args__ = (CheckConstraint("side IN ('a', 'b')", name="side"),)

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("inventory_connections.id", ondelete="CASCADE"), primary_key=True
    )
    side: Mapped[str] = mapped_column(String(1), primary_key=True)
    port_id: Mapped[int] = mapped_column(
        ForeignKey("inventory_ports.id", ondelete="CASCADE"), unique=True
    )


class Change(InventoryBase):
    """One create, update or delete of an inventory object, with before/after snapshots."""

    __tablename__ = "inventory_changes"
    __table_args__ = (Index("ix_inventory_changes_object", "object_type", "object_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_type: Mapped[str] = mapped_column(String(30))
    object_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    actor: Mapped[str | None] = mapped_column(String(150), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
