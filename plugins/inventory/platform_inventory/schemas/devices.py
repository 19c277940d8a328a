"""Request and response models of devices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from platform_core import JsonText, Line, Page
from platform_inventory.schemas.common import Face, Name, Status, _In, _Out

Tag = Field(min_length=1, max_length=50)


class DeviceIn(_In):
    """A new device; ports are created from the type's ``port_names``."""

    name: Line = Name
    device_type_id: int = Field(ge=1, le=2**31 - 1)
    status: Status = "active"
    serial: Line | None = Field(None, min_length=1, max_length=100)
    asset_tag: Line | None = Field(None, min_length=1, max_length=100)
    location_id: int | None = Field(None, ge=1, le=2**31 - 1)
    rack_id: int | None = Field(None, ge=1, le=2**31 - 1)
    position: int | None = Field(None, ge=1, le=100)
    face: Face | None = None
    tags: list[Line] = Field(default_factory=list, max_length=50)
    custom_fields: dict[Line, JsonText] = Field(default_factory=dict, max_length=50)


class DevicePatch(_In):
    """Changes to a device; fields left out stay as they are, ``null`` clears."""

    name: Line | None = Field(None, min_length=1, max_length=100)
    device_type_id: int | None = Field(None, ge=1, le=2**31 - 1)
    status: Status | None = None
    serial: Line | None = Field(None, min_length=1, max_length=100)
    asset_tag: Line | None = Field(None, min_length=1, max_length=100)
    location_id: int | None = Field(None, ge=1, le=2**31 - 1)
    rack_id: int | None = Field(None, ge=1, le=2**31 - 1)
    position: int | None = Field(None, ge=1, le=100)
    face: Face | None = None
    tags: list[Line] | None = Field(None, max_length=50)
    custom_fields: dict[Line, JsonText] | None = Field(None, max_length=50)


class DeviceOut(_Out):
    """A device."""

    id: int
    name: str
    device_type_id: int
    manufacturer_id: int
    status: str
    serial: str | None
    asset_tag: str | None
    location_id: int | None
    rack_id: int | None
    position: int | None
    face: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class DevicePage(Page[DeviceOut]):
    """A page of devices."""
