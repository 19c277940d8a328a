"""Request and response models of device types."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from platform_core import Line, Page, TextValues
from platform_inventory.schemas.common import Name, _In, _Out


class CustomFieldDef(_In):
    """A custom field definition of a device type."""

    name: Line = Field(pattern=r"^[a-z][a-z0-9_]{0,49}$")
    type: Literal["string", "int", "bool", "date", "enum"]
    required: bool = False
    default: Annotated[str | int | bool | None, TextValues] = None
    choices: list[Line] | None = Field(None, max_length=100)


class DeviceTypeIn(_In):
    """A new device type."""

    manufacturer_id: int = Field(ge=1, le=2**31 - 1)
    model: Line = Name
    u_height: int = Field(1, ge=0, le=100)
    full_depth: bool = True
    port_names: list[Line] = Field(default_factory=list, max_length=512)
    custom_fields: list[CustomFieldDef] = Field(default_factory=list, max_length=50)


class DeviceTypePatch(_In):
    """Changes to a device type (custom fields apply to devices created or changed later)."""

    model: Line | None = Field(None, min_length=1, max_length=100)
    u_height: int | None = Field(None, ge=0, le=100)
    full_depth: bool | None = None
    port_names: list[Line] | None = Field(None, max_length=512)
    custom_fields: list[CustomFieldDef] | None = Field(None, max_length=50)


class DeviceTypeOut(_Out):
    """A device type."""

    id: int
    manufacturer_id: int
    model: str
    u_height: int
    full_depth: bool
    port_names: list[str]
    custom_fields: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class DeviceTypePage(Page[DeviceTypeOut]):
    """A page of device types."""
