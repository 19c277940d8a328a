"""Request and response models of the inventory plugin's API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core import JsonText, Line, Page, TextValues

Name = Field(min_length=1, max_length=100)
Status = Literal["planned", "active", "offline", "maintenance", "retired"]
Face = Literal["front", "rear"]
CustomValue = str | int | bool | date | None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ManufacturerIn(_In):
    """A new manufacturer."""

    name: Line = Name


class ManufacturerPatch(_In):
    """Changes to a manufacturer."""

    name: Line | None = Field(None, min_length=1, max_length=100)


class ManufacturerOut(_Out):
    """A manufacturer."""

    id: int
    name: str
    created_at: datetime
    updated_at: datetime


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


class LocationIn(_In):
    """A new location; ``parent_id`` places it in the tree."""

    name: Line = Name
    kind: Line = Field("site", min_length=1, max_length=40)
    parent_id: int | None = Field(None, ge=1, le=2**31 - 1)


class LocationPatch(_In):
    """Changes to a location."""

    name: Line | None = Field(None, min_length=1, max_length=100)
    kind: Line | None = Field(None, min_length=1, max_length=40)
    parent_id: int | None = Field(None, ge=1, le=2**31 - 1)


class LocationOut(_Out):
    """A location."""

    id: int
    name: str
    kind: str
    parent_id: int | None
    created_at: datetime
    updated_at: datetime


class RackIn(_In):
    """A new rack."""

    name: Line = Name
    location_id: int = Field(ge=1, le=2**31 - 1)
    u_height: int = Field(42, ge=1, le=100)


class RackPatch(_In):
    """Changes to a rack."""

    name: Line | None = Field(None, min_length=1, max_length=100)
    u_height: int | None = Field(None, ge=1, le=100)


class RackOut(_Out):
    """A rack."""

    id: int
    name: str
    location_id: int
    u_height: int
    created_at: datetime
    updated_at: datetime


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


class PortIn(_In):
    """A new port on a device."""

    name: Line = Field(min_length=1, max_length=64)


class PortOut(_Out):
    """A port, with the connection it belongs to (if any)."""

    id: int
    device_id: int
    name: str
    connection_id: int | None = None


class ConnectionIn(_In):
    """A new connection between two ports."""

    a_port_id: int = Field(ge=1, le=2**31 - 1)
    b_port_id: int = Field(ge=1, le=2**31 - 1)
    label: Line = Field("", max_length=100)


class ConnectionPatch(_In):
    """Changes to a connection (its ends are fixed: delete and reconnect instead)."""

    label: Line = Field(max_length=100)


class ConnectionOut(BaseModel):
    """A connection between two ports."""

    id: int
    a_port_id: int
    b_port_id: int
    label: str
    created_at: datetime
    updated_at: datetime


class ManufacturerPage(Page[ManufacturerOut]):
    """A page of manufacturers."""


class DeviceTypePage(Page[DeviceTypeOut]):
    """A page of device types."""


class LocationPage(Page[LocationOut]):
    """A page of locations."""


class RackPage(Page[RackOut]):
    """A page of racks."""


class DevicePage(Page[DeviceOut]):
    """A page of devices."""


class ConnectionPage(Page[ConnectionOut]):
    """A page of connections."""


class ChangeOut(_Out):
    """One recorded change."""

    id: int
    object_type: str
    object_id: int
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    actor: str | None
    request_id: str | None
    created_at: datetime


class ChangePage(Page[ChangeOut]):
    """A page of changes, oldest first."""


class TopologyNode(BaseModel):
    """A device reached from the start, at ``depth`` hops."""

    device_id: int
    name: str
    depth: int


class TopologyLink(BaseModel):
    """A connection between two reached devices, with its ports."""

    connection_id: int
    a_device_id: int
    a_port: str
    b_device_id: int
    b_port: str


class Topology(BaseModel):
    """The devices connected to a device, to ``depth`` hops (breadth first)."""

    device_id: int
    depth: int
    truncated: bool
    devices: list[TopologyNode]
    links: list[TopologyLink]


class PathHop(BaseModel):
    """One port along a path."""

    port_id: int
    port: str
    device_id: int
    device: str


class PortPath(BaseModel):
    """The path from a port to its far end; ``complete`` is false when unconnected."""

    complete: bool
    hops: list[PathHop]
    connections: list[int]


class ImportIssue(BaseModel):
    """One problem of an import row."""

    line: int
    field: str
    message: str


class ImportReport(BaseModel):
    """The outcome of an import (or of a dry run: nothing written)."""

    dry_run: bool
    created: int
    updated: int
    connections: int
    request_id: str | None
