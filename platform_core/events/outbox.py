"""Publishing typed events through the outbox, in the caller's own transaction.

A plugin declares an event as a pydantic model with a dotted name whose first part is the
plugin's name, and publishes it with the session that makes the change::

    class DeviceCreated(Event):
        event_name: ClassVar[str] = "inventory.device.created"
        device_id: int

    publish(session, DeviceCreated(device_id=device.id), actor=principal.username)

The event row is written with the change: a rolled-back transaction publishes nothing, a
committed one is delivered (also after a crash: the dispatcher reads the outbox on start).
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from platform_core._deprecation import moved_names
from platform_core.db import utcnow
from platform_core.errors import ValidationFailed
from platform_core.events.models import EventRecord
from platform_core.events.patterns import valid_name


class Event(BaseModel):
    """Base of typed events; subclasses set ``event_name`` (``<plugin>.<thing>.<verb>``)."""

    event_name: ClassVar[str] = ""


@dataclass(frozen=True)
class DeliveredEvent:
    """An event as handlers and webhook receivers see it."""

    id: str
    name: str
    plugin: str
    actor: str | None
    occurred_at: datetime
    payload: dict[str, Any]

    @classmethod
    def from_record(cls, rec: EventRecord) -> DeliveredEvent:
        """The delivered view of an outbox row."""
        return cls(rec.uid, rec.name, rec.plugin, rec.actor, rec.occurred_at, dict(rec.payload))

    def as_json(self) -> dict[str, Any]:
        """The JSON envelope webhook receivers get."""
        return {
            "id": self.id,
            "name": self.name,
            "plugin": self.plugin,
            "actor": self.actor,
            "occurred_at": self.occurred_at.isoformat(),
            "payload": self.payload,
        }


# Dispatchers of this process waiting for work, with their loops (woken after a commit).
_waiters: weakref.WeakKeyDictionary[asyncio.Event, asyncio.AbstractEventLoop] = (
    weakref.WeakKeyDictionary()
)


def register_waiter(wake: asyncio.Event) -> None:
    """Have ``wake`` set whenever a transaction that published events commits."""
    _waiters[wake] = asyncio.get_running_loop()


_PUBLISHED = "platform_core.events.published"
"""``Session.info`` key: this session's transaction added events to the outbox."""


@sa_event.listens_for(Session, "after_commit")
def _wake_all(session: Session) -> None:
    """After a commit that published events, wake this process's dispatchers. One listener
    for every session, not one registered per publishing session: registering cost more
    than publishing. (A flag left by a rolled-back transaction costs one spurious wake.)"""
    if not session.info.pop(_PUBLISHED, False):
        return
    for wake, loop in list(_waiters.items()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)


def publish(
    session: AsyncSession,
    event: Event | None = None,
    *,
    name: str | None = None,
    payload: dict[str, Any] | None = None,
    actor: str | None = None,
) -> str:
    """Add an event to the outbox in ``session``'s transaction; return its id.

    Pass a typed ``event``, or ``name`` and ``payload`` for an untyped one. Nothing is
    delivered unless and until the transaction commits.
    """
    if event is not None:
        name = type(event).event_name
        payload = event.model_dump(mode="json")
    if not name or not valid_name(name):
        raise ValidationFailed(
            f"invalid event name {name!r}: use <plugin>.<thing>.<verb>, lowercase",
            errors=[{"field": "name", "message": "invalid event name"}],
        )
    uid = str(uuid.uuid4())
    session.add(
        EventRecord(
            uid=uid,
            name=name,
            plugin=name.split(".", 1)[0],
            actor=actor,
            payload=payload or {},
            occurred_at=utcnow(),
        )
    )
    session.sync_session.info[_PUBLISHED] = True
    return uid


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "Event": "platform_core.Event",
        "publish": "platform_core.publish",
        "DeliveredEvent": "platform_core.DeliveredEvent",
    },
)
