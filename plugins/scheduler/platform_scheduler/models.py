"""SQLAlchemy tables of the scheduler plugin, all prefixed ``scheduler_``.

A booking holds one or more devices; each held device is a row of
``scheduler_booking_devices`` (a *slot*) carrying a copy of the booking's window and status,
so that PostgreSQL can forbid overlapping slots of one device with an exclusion constraint
(``btree_gist``, created by the migration). Device and user ids refer to the inventory and
the core by value: no foreign keys across plugins.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_core import UTCDateTime, plugin_metadata, utcnow

STATUSES = ("pending", "approved", "active", "completed", "rejected", "cancelled", "expired")
HOLDING = ("pending", "approved", "active")
"""Statuses whose slots hold their devices (never overlapping on one device)."""


class SchedulerBase(DeclarativeBase):
    """Declarative base bound to the scheduler's own metadata."""

    metadata = plugin_metadata()


class Booking(SchedulerBase):
    """A booking of devices for the half-open window ``[start_at, end_at)``."""

    __tablename__ = "scheduler_bookings"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="window"),
        CheckConstraint(
            "status IN ('pending', 'approved', 'active', 'completed', 'rejected', "
            "'cancelled', 'expired')",
            name="status",
        ),
        Index("ix_scheduler_bookings_owner", "owner_id", "status"),
        Index("ix_scheduler_bookings_status_start", "status", "start_at"),
        Index("ix_scheduler_bookings_status_end", "status", "end_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(Integer)
    owner_name: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(20))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    series_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    power_on_start: Mapped[bool] = mapped_column(Boolean, default=False)
    power_off_end: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision_note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Slot(SchedulerBase):
    """One device held by one booking (window and status mirror the booking's)."""

    __tablename__ = "scheduler_booking_devices"
    __table_args__ = (
        Index("ix_scheduler_booking_devices_device_start", "device_id", "start_at"),
        Index("ix_scheduler_booking_devices_device_end", "device_id", "end_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("scheduler_bookings.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))


class Policy(SchedulerBase):
    """Booking rules for the devices of one device type or carrying one tag."""

    __tablename__ = "scheduler_policies"
    __table_args__ = (CheckConstraint("(device_type_id IS NULL) <> (tag IS NULL)", name="target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    device_type_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tag: Mapped[str | None] = mapped_column(String(50), nullable=True)
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=True)
    max_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_days_ahead: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_concurrent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PowerConfig(SchedulerBase):
    """How to power a device: driver, address, outlet and a credentials *reference*."""

    __tablename__ = "scheduler_power_configs"

    device_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    driver: Mapped[str] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(String(200))
    outlet: Mapped[str | None] = mapped_column(String(200), nullable=True)
    credentials: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PowerAudit(SchedulerBase):
    """One power action: who, on what, with which result."""

    __tablename__ = "scheduler_power_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(10))
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WriteLock(SchedulerBase):
    """A one-row table: updating it first makes a SQLite write transaction serialized."""

    __tablename__ = "scheduler_write_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    counter: Mapped[int] = mapped_column(Integer, default=0)
