"""Events the inventory plugin publishes (``inventory.<thing>.<verb>``)."""

from __future__ import annotations

from typing import ClassVar

from platform_core import Event


class DeviceCreated(Event):
    """A device was created (through the API; imports publish ``inventory.import.completed``)."""

    event_name: ClassVar[str] = "inventory.device.created"

    device_id: int
    name: str
    status: str


class DeviceUpdated(Event):
    """A device was changed; ``changed`` lists the fields whose value changed."""

    event_name: ClassVar[str] = "inventory.device.updated"

    device_id: int
    name: str
    status: str
    changed: list[str]


class DeviceRetired(Event):
    """A device's status became ``retired`` (published with ``inventory.device.updated``)."""

    event_name: ClassVar[str] = "inventory.device.retired"

    device_id: int
    name: str


class DeviceDeleted(Event):
    """A device was deleted."""

    event_name: ClassVar[str] = "inventory.device.deleted"

    device_id: int
    name: str


class ImportCompleted(Event):
    """An import was committed: how many devices it created and updated, and its request id."""

    event_name: ClassVar[str] = "inventory.import.completed"

    created: int
    updated: int
    connections: int
    request_id: str | None
