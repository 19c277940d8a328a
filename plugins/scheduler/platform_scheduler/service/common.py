"""What the scheduler's service areas share: rules, serialization, device locks, events.

The rules every area follows:

Functions take an open session and raise the platform's domain errors; the caller owns the
transaction. Devices come from the inventory plugin's service layer (declared in
``requires``).

Concurrency, on either database (the helpers are the core's ``platform_core.locks``):

- **Status changes** start from the booking's row locked (``lock_row``: ``SELECT ... FOR
  UPDATE``; SQLite: the write lock) and check the status they start from on that current
  row; the loser of two racing changes (approve and reject, cancel and approve, ...) gets a
  409 naming the status the winner left (``current_state``). The jobs change a status with
  ``compare_and_set`` and skip bookings that moved on meanwhile.
- **Lock order**, so that two writers never wait on each other: the owner (``max_concurrent``
  count), then the booking's row, then its devices (``lock_devices``: one named lock per
  device, in ascending id order), then the slots. The conflict check runs after the device
  locks, so it sees every committed slot of those devices.
- **No double booking**: the device locks serialize the writers of one device; on
  PostgreSQL the exclusion constraint ``ex_scheduler_booking_devices_no_overlap``
  (``btree_gist``: same device and overlapping ``tstzrange(start, end, '[)')`` among
  holding slots) stays the last word: creates insert slots with ``ON CONFLICT DO NOTHING``
  and updates run in a savepoint, both turning a violation into a 409.
- **SQLite** has one writer at a time: every lock above is its database write lock, taken
  by the first (no-op) write of the transaction, so what the transaction reads afterwards
  is current until its commit.
- A deadlock or serialization failure that still happens is retried by the core
  (``platform_core.retry``), never answered with a 500.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Principal, serialize
from platform_scheduler import events
from platform_scheduler.models import Booking, Policy, Slot, WriteLock

APPROVERS = ("admin", "operator")
START_GRACE = timedelta(minutes=5)
MAX_WINDOW = timedelta(days=31)
HORIZON = timedelta(days=7)
SLOTS = cast(Table, Slot.__table__)
POLICIES = Policy.__table__


@dataclass(frozen=True)
class DeviceInfo:
    """What the scheduler needs to know about an inventory device."""

    id: int
    name: str
    device_type_id: int
    tags: tuple[str, ...]
    status: str


@dataclass(frozen=True)
class Rules:
    """The effective policy for a set of devices (the strictest of the matching policies)."""

    auto_approve: bool
    max_minutes: int | None
    max_days_ahead: int | None
    max_concurrent: int | None
    policies: tuple[str, ...]


def is_approver(caller: Principal) -> bool:
    """True for operators and admins (they approve and see every booking)."""
    return caller.role in APPROVERS


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


# -- serialization ----------------------------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def lock_devices(session: AsyncSession, device_ids: Iterable[int]) -> None:
    """Serialize the writers of these devices' slots until this transaction ends.

    PostgreSQL: one named lock per device (``scheduler.device``), taken in ascending id
    order. SQLite: the database's write lock. Call it before reading the conflicts a write
    depends on: what is read afterwards stays current until the commit.
    """
    await serialize(session, "scheduler.device", device_ids, table=WriteLock)


async def _core(session: AsyncSession, stmt: Any, params: dict[str, Any] | None = None) -> Any:
    """Run ``stmt`` on the session's connection: plain rows, never the ORM's row loading
    (statements over the inventory's device subquery are ORM-enabled)."""
    return await (await session.connection()).execute(stmt, params or {})


async def booking_device_ids(session: AsyncSession, booking_id: int) -> list[int]:
    """The devices a booking holds (or held), in the order they were booked."""
    rows = await session.scalars(
        select(Slot.device_id).where(Slot.booking_id == booking_id).order_by(Slot.id)
    )
    return list(rows.all())


def _event(cls: type[events.BookingEvent], booking: Booking, device_ids: list[int]) -> Any:
    return cls(
        booking_id=booking.id,
        owner_id=booking.owner_id,
        status=booking.status,
        device_ids=device_ids,
        start=_iso(booking.start_at),
        end=_iso(booking.end_at),
    )
