"""Events the scheduler publishes: ``scheduler.booking.*`` (one per status change)."""

from __future__ import annotations

from typing import ClassVar

from platform_core import Event


class BookingEvent(Event):
    """What every booking event carries."""

    booking_id: int
    owner_id: int
    status: str
    device_ids: list[int]
    start: str
    end: str


class BookingCreated(BookingEvent):
    """A booking was made (``status`` says pending or approved)."""

    event_name: ClassVar[str] = "scheduler.booking.created"


class BookingApproved(BookingEvent):
    """An approver (or a policy, on create) approved a booking."""

    event_name: ClassVar[str] = "scheduler.booking.approved"


class BookingRejected(BookingEvent):
    """An approver rejected a pending booking."""

    event_name: ClassVar[str] = "scheduler.booking.rejected"


class BookingCancelled(BookingEvent):
    """The owner or an operator cancelled a booking."""

    event_name: ClassVar[str] = "scheduler.booking.cancelled"


class BookingStarted(BookingEvent):
    """A booking's window began: approved -> active."""

    event_name: ClassVar[str] = "scheduler.booking.started"


class BookingEnded(BookingEvent):
    """A booking ended (its window passed, or it was released early): -> completed."""

    event_name: ClassVar[str] = "scheduler.booking.ended"


class BookingExpired(BookingEvent):
    """A pending booking's start passed before anyone approved it."""

    event_name: ClassVar[str] = "scheduler.booking.expired"


class BookingReminder(BookingEvent):
    """A booking starts soon (sent once, ``reminder_minutes`` before its start)."""

    event_name: ClassVar[str] = "scheduler.booking.reminder"


class BookingChanged(BookingEvent):
    """A booking's window or purpose changed (extend, shorten)."""

    event_name: ClassVar[str] = "scheduler.booking.changed"
