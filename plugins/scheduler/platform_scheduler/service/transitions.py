"""The jobs' status changes over time (start, end, expire, remind)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import compare_and_set, publish
from platform_scheduler import events
from platform_scheduler.models import Booking, Slot
from platform_scheduler.service.common import _event, booking_device_ids

# -- jobs: status changes over time -----------------------------------------------------


async def _transition(
    session: AsyncSession,
    stmt: Any,
    expected: tuple[str, ...],
    status: str,
    event: type[events.BookingEvent],
) -> list[tuple[Booking, list[int]]]:
    """Move the bookings ``stmt`` selects from ``expected`` to ``status``, by id; a booking
    changed meanwhile (cancelled, released, approved) is skipped, not overwritten."""
    bookings = list((await session.scalars(stmt.order_by(Booking.id).limit(500))).all())
    done = []
    for booking in bookings:
        moved = await compare_and_set(
            session,
            Booking,
            booking.id,
            expected=expected,
            values={"status": status},
            conflict=False,
        )
        if not moved:
            continue
        await session.execute(
            update(Slot)
            .where(Slot.booking_id == booking.id)
            .values(status=status, end_at=booking.end_at)
        )
        ids = await booking_device_ids(session, booking.id)
        publish(session, _event(event, booking, ids), actor="scheduler")
        done.append((booking, ids))
    return done


async def start_due(session: AsyncSession, now: datetime) -> list[tuple[Booking, list[int]]]:
    """Approved bookings whose window has begun become ``active``."""
    stmt = select(Booking).where(
        Booking.status == "approved", Booking.start_at <= now, Booking.end_at > now
    )
    return await _transition(session, stmt, ("approved",), "active", events.BookingStarted)


async def end_due(session: AsyncSession, now: datetime) -> list[tuple[Booking, list[int]]]:
    """Active (or never started approved) bookings whose window has passed: ``completed``."""
    stmt = select(Booking).where(Booking.status.in_(("active", "approved")), Booking.end_at <= now)
    return await _transition(
        session, stmt, ("active", "approved"), "completed", events.BookingEnded
    )


async def expire_pending(session: AsyncSession, now: datetime) -> list[tuple[Booking, list[int]]]:
    """Pending bookings whose start passed unapproved become ``expired``."""
    stmt = select(Booking).where(Booking.status == "pending", Booking.start_at <= now)
    return await _transition(session, stmt, ("pending",), "expired", events.BookingExpired)


async def send_reminders(session: AsyncSession, now: datetime, ahead: timedelta) -> int:
    """Publish one reminder per approved booking starting within ``ahead``; how many."""
    bookings = list(
        (
            await session.scalars(
                select(Booking)
                .where(
                    Booking.status == "approved",
                    Booking.reminded_at.is_(None),
                    Booking.start_at > now,
                    Booking.start_at <= now + ahead,
                )
                .order_by(Booking.id)
                .limit(500)
            )
        ).all()
    )
    for booking in bookings:
        booking.reminded_at = now
        ids = await booking_device_ids(session, booking.id)
        publish(session, _event(events.BookingReminder, booking, ids), actor="scheduler")
    return len(bookings)
