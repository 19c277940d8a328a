"""Pydantic request and response models of the scheduler's API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from platform_core import IdPage, Line, Text

MAX_ID = 2**31 - 1
DeviceId = Annotated[int, Field(ge=1, le=MAX_ID)]
Status = Literal["pending", "approved", "active", "completed", "rejected", "cancelled", "expired"]


def _bounded(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2999:
        raise ValueError("the year must be between 2000 and 2999")
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(_bounded)]
"""A timezone-aware timestamp (naive ones are refused with 422)."""


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


class PolicyIn(BaseModel):
    """A policy for one device type or one tag (give exactly one)."""

    model_config = ConfigDict(extra="forbid")

    name: Line = Field(min_length=1, max_length=100)
    device_type_id: DeviceId | None = None
    tag: Line | None = Field(None, min_length=1, max_length=50)
    auto_approve: bool = True
    max_minutes: int | None = Field(None, ge=1, le=525_600)
    max_days_ahead: int | None = Field(None, ge=0, le=3650)
    max_concurrent: int | None = Field(None, ge=1, le=10_000)


class PolicyPatch(BaseModel):
    """Change a policy (``null`` clears a limit)."""

    model_config = ConfigDict(extra="forbid")

    name: Line | None = Field(None, min_length=1, max_length=100)
    device_type_id: DeviceId | None = None
    tag: Line | None = Field(None, min_length=1, max_length=50)
    auto_approve: bool | None = None
    max_minutes: int | None = Field(None, ge=1, le=525_600)
    max_days_ahead: int | None = Field(None, ge=0, le=3650)
    max_concurrent: int | None = Field(None, ge=1, le=10_000)


class PolicyOut(BaseModel):
    """A policy."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    device_type_id: int | None
    tag: str | None
    auto_approve: bool
    max_minutes: int | None
    max_days_ahead: int | None
    max_concurrent: int | None


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
"""Serializes the service's availability dicts to the JSON of ``Availability`` without
validating them again (thousands of slots: validation dominated the response time)."""


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


class PowerConfigIn(BaseModel):
    """How to power a device; ``credentials`` is a reference name, never the secret."""

    model_config = ConfigDict(extra="forbid")

    driver: Line = Field(min_length=1, max_length=40)
    address: Line = Field(min_length=1, max_length=200)
    outlet: Line | None = Field(None, min_length=1, max_length=200)
    credentials: Line | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class PowerConfigOut(BaseModel):
    """A device's power config (the credentials reference, never a secret)."""

    model_config = ConfigDict(from_attributes=True)

    device_id: int
    driver: str
    address: str
    outlet: str | None
    credentials: str | None
    updated_at: datetime


class PowerIn(BaseModel):
    """A power action; ``force`` (admins) overrides someone else's current booking."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["on", "off", "cycle"]
    force: bool = False


class PowerResult(BaseModel):
    """The outcome of a power action."""

    device_id: int
    action: str
    result: str
    forced: bool


class PowerState(BaseModel):
    """A device's power state as its driver reports it."""

    device_id: int
    driver: str
    state: str


class PowerAuditOut(BaseModel):
    """One audited power action."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: int
    actor: str
    action: str
    forced: bool
    result: str
    detail: str
    at: datetime
