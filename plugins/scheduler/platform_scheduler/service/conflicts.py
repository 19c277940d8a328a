"""Conflicts between bookings: overlapping slots of the same devices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, insert_ignoring
from platform_scheduler.models import HOLDING, Booking, Slot
from platform_scheduler.service.common import SLOTS, Rules, _dialect, _iso, booking_device_ids
from platform_scheduler.service.devices import lock_owner

# -- conflicts --------------------------------------------------------------------------


async def find_conflicts(
    session: AsyncSession,
    device_ids: Sequence[int],
    windows: Sequence[tuple[datetime, datetime]],
    exclude: Iterable[int] = (),
) -> list[dict[str, Any]]:
    """Holding slots of other bookings overlapping any window on any of the devices."""
    if not windows or not device_ids:
        return []
    lo = min(s for s, _ in windows)
    hi = max(e for _, e in windows)
    c = SLOTS.c
    stmt = select(c.booking_id, c.device_id, c.start_at, c.end_at).where(
        c.device_id.in_(list(device_ids)),
        c.status.in_(HOLDING),
        c.start_at < hi,
        c.end_at > lo,
    )
    excluded = list(exclude)
    if excluded:
        stmt = stmt.where(c.booking_id.not_in(excluded))
    rows = (await session.execute(stmt.order_by(c.start_at))).all()
    found = []
    for booking_id, device_id, s, e in rows:
        for i, (ws, we) in enumerate(windows):
            if s < we and e > ws:
                found.append(
                    {
                        "occurrence": i,
                        "occurrence_start": _iso(ws),
                        "occurrence_end": _iso(we),
                        "device_id": device_id,
                        "booking_id": booking_id,
                        "start": _iso(s),
                        "end": _iso(e),
                    }
                )
    return found


def conflict_error(conflicts: list[dict[str, Any]]) -> Conflict:
    """The 409 naming the first conflicting booking and listing every conflict."""
    first = conflicts[0]
    return Conflict(
        f"device {first['device_id']} is already booked by booking {first['booking_id']} "
        f"from {first['start']} to {first['end']}",
        conflicts=conflicts,
        conflicting_booking_id=first["booking_id"],
    )


async def insert_slots(
    session: AsyncSession,
    rows: list[dict[str, Any]],
    device_ids: Sequence[int],
    windows: Sequence[tuple[datetime, datetime]],
    exclude: Iterable[int] = (),
) -> None:
    """Insert slots; on PostgreSQL a race lost to the exclusion constraint becomes a 409.

    PostgreSQL: ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` (the exclusion
    constraint is an arbiter; a row in conflict with an uncommitted one waits for it), so a
    lost race leaves the transaction usable to name the winner: no savepoint round trips.
    Rows go in by device id (one order for every writer). SQLite: a plain insert, the
    write lock already excludes races.
    """
    if not rows:
        return
    rows = sorted(rows, key=lambda r: (r["device_id"], r["start_at"]))
    if _dialect(session) != "postgresql":
        await session.execute(insert(SLOTS), rows)
        return
    stmt = insert_ignoring(session, SLOTS).returning(SLOTS.c.id)
    inserted = len((await session.execute(stmt, rows)).all())
    if inserted == len(rows):
        return
    conflicts = await find_conflicts(session, device_ids, windows, exclude)
    if not conflicts:  # the winner has since gone; report the race rather than guess
        raise Conflict("the devices were booked concurrently; try again")
    raise conflict_error(conflicts)


async def set_slots(session: AsyncSession, booking: Booking, *, status: str | None = None) -> None:
    """Move a booking's slots to its window and status; an overlap lost to a race is a 409."""
    values: dict[str, Any] = {"start_at": booking.start_at, "end_at": booking.end_at}
    values["status"] = status or booking.status
    stmt = update(Slot).where(Slot.booking_id == booking.id).values(**values)
    try:
        async with session.begin_nested():
            await session.execute(stmt)
    except IntegrityError:
        ids = await booking_device_ids(session, booking.id)
        conflicts = await find_conflicts(
            session, ids, [(booking.start_at, booking.end_at)], [booking.id]
        )
        if not conflicts:
            raise Conflict("the devices were booked concurrently; try again") from None
        raise conflict_error(conflicts) from None


async def check_concurrent(
    session: AsyncSession, owner_id: int, rules: Rules, adding: int, now: datetime
) -> None:
    """Refuse (409) when the owner would hold more than ``max_concurrent`` bookings."""
    if rules.max_concurrent is None:
        return
    await lock_owner(session, owner_id)
    held = await session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(Booking.owner_id == owner_id, Booking.status.in_(HOLDING), Booking.end_at > now)
    )
    if (held or 0) + adding > rules.max_concurrent:
        raise Conflict(
            f"you already hold {held} open booking(s); policy "
            f"{', '.join(rules.policies)} allows {rules.max_concurrent} at a time"
        )
