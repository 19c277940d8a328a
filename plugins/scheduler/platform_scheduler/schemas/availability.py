"""Request and response models of availability and recommendations."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, TypeAdapter
from typing_extensions import TypedDict


class Slot(BaseModel):
    """A free interval."""

    start: datetime
    end: datetime


class DeviceAvailability(BaseModel):
    """One device's free slots within the asked window."""

    device_id: int
    name: str
    free: list[Slot]


class Availability(BaseModel):
    """Free slots per device."""

    start: datetime
    end: datetime
    duration_minutes: int
    devices: list[DeviceAvailability]


class _SlotData(TypedDict):
    start: datetime
    end: datetime


class _DeviceAvailabilityData(TypedDict):
    device_id: int
    name: str
    free: list[_SlotData]


class _AvailabilityData(TypedDict):
    start: datetime
    end: datetime
    duration_minutes: int
    devices: list[_DeviceAvailabilityData]


AVAILABILITY_JSON = TypeAdapter(_AvailabilityData)


class Recommendation(BaseModel):
    """A device free for the whole window, with its fragmentation score and why."""

    device_id: int
    name: str
    score: float
    gap_before_minutes: int
    gap_after_minutes: int
    reason: str


class Recommendations(BaseModel):
    """Devices of a type free for the window, least fragmenting first."""

    start: datetime
    end: datetime
    items: list[Recommendation]
