"""Request and response models of ports, connections and the topology."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from platform_core import Line, Page
from platform_inventory.schemas.common import _In, _Out


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


class ConnectionPage(Page[ConnectionOut]):
    """A page of connections."""


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
