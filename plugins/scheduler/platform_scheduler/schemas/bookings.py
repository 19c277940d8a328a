"""Request and response models of bookings."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core import IdPage, Text
from platform_scheduler.schemas.common import DeviceId, Status, Timestamp


class Recurrence(BaseModel):
    """Repeat the window daily or weekly while an occurrence starts before ``until``."""

    model_config = ConfigDict(extra="forbid")

    frequency: Literal["daily", "weekly"]
    until: Timestamp


class BookingIn(BaseModel):
    """A booking request."""

    model_config = ConfigDict(extra="forbid")

    device_ids: list[DeviceId] = Field(min_length=1, max_length=1000)
    start: Timestamp
    end: Timestamp
    purpose: Text = Field("", max_length=500)
    include_connected: bool = False
    recurrence: Recurrence | None = None
    power_on_start: bool = False
    power_off_end: bool = False


class BookingPatch(BaseModel):
    """Extend, shorten or move a booking, or change its purpose."""

    model_config = ConfigDict(extra="forbid")

    start: Timestamp | None = None
    end: Timestamp | None = None
    purpose: Text | None = Field(None, max_length=500)


class Decision(BaseModel):
    """An approver's optional note."""

    model_config = ConfigDict(extra="forbid")

    note: Text | None = Field(None, max_length=500)


class BookingOut(BaseModel):
    """A booking as the API shows it."""

    id: int
    owner_id: int
    owner: str
    purpose: str
    status: Status
    start: datetime
    end: datetime
    device_ids: list[int]
    series_id: str | None
    power_on_start: bool
    power_off_end: bool
    decided_by: str | None
    decision_note: str | None
    created_at: datetime
    updated_at: datetime


class BookingCreated(BookingOut):
    """The created booking (the first occurrence) and every occurrence's id."""

    occurrence_ids: list[int]


class BookingPage(IdPage[BookingOut]):
    """A page of bookings; pass ``next_cursor`` as ``cursor`` for the next one."""
