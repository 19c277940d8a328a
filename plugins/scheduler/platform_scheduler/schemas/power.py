"""Request and response models of power control."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core import Line


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
