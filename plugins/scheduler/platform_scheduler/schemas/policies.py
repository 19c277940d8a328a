"""Request and response models of policies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from platform_core import Line
from platform_scheduler.schemas.common import DeviceId


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
