"""Bookings: create, update, approve, reject, cancel, list."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    Forbidden,
    NotFound,
    PlatformContext,
    Principal,
    invalid,
    lock_row,
    page_by_id,
    publish,
    utcnow,
)
from platform_scheduler import events
from platform_scheduler.models import HOLDING, Booking, Slot
from platform_scheduler.service.common import (
    START_GRACE,
    _event,
    booking_device_ids,
    is_approver,
    lock_devices,
)
from platform_scheduler.service.conflicts import (
    check_concurrent,
    conflict_error,
    find_conflicts,
    insert_slots,
    set_slots,
)
from platform_scheduler.service.devices import (
    check_window,
    devices_and_rules,
    refuse_gone_or_retired,
    resolve_devices,
)
from platform_scheduler.settings import SchedulerSettings

# -- bookings ---------------------------------------------------------------------------


def occurrences(
    start: datetime,
    end: datetime,
    frequency: str | None,
    until: datetime | None,
    limit: int,
) -> list[tuple[datetime, datetime]]:
    """The windows of a (possibly recurring) booking: daily or weekly while start < until."""
    if frequency is None:
        return [(start, end)]
    if until is None or until <= start:
        raise invalid("recurrence.until", "must be after start")
    step = timedelta(days=1 if frequency == "daily" else 7)
    if end - start > step:
        raise invalid("end", f"a {frequency} booking lasts at most {step.days} day(s)")
    windows: list[tuple[datetime, datetime]] = []
    k = 0
    while start + k * step < until:
        if len(windows) >= limit:
            raise invalid("recurrence.until", f"at most {limit} occurrences")
        windows.append((start + k * step, end + k * step))
        k += 1
    return windows


async def create_booking(
    session: AsyncSession,
    data: dict[str, Any],
    caller: Principal,
    settings: SchedulerSettings,
    *,
    now: datetime | None = None,
) -> list[Booking]:
    """Book devices for a window (or every occurrence of a recurrence), all or nothing.

    ``ValidationFailed`` naming the field for bad input or a broken policy; ``Conflict``
    naming the conflicting booking (and listing every conflicting occurrence) otherwise.
    Bookings of operators and admins, and of devices whose policies auto-approve, are
    approved at once; the others wait as ``pending``.
    """
    now = now or utcnow()
    start, end = data["start"], data["end"]
    if end <= start:
        raise invalid("end", "must be after start")
    if start < now - START_GRACE:
        raise invalid("start", "must not be in the past")
    recurrence = data.get("recurrence") or {}
    windows = occurrences(
        start, end, recurrence.get("frequency"), recurrence.get("until"), settings.max_occurrences
    )
    devices, rules = await resolve_devices(
        session,
        data["device_ids"],
        include_connected=bool(data.get("include_connected")),
        settings=settings,
    )
    for ws, we in windows:
        check_window(ws, we, rules, now)
    await check_concurrent(session, caller.user_id, rules, len(windows), now)
    device_ids = [d.id for d in devices]
    await lock_devices(session, device_ids)
    await refuse_gone_or_retired(session, device_ids)
    conflicts = await find_conflicts(session, device_ids, windows)
    if conflicts:
        raise conflict_error(conflicts)
    status = "approved" if rules.auto_approve or is_approver(caller) else "pending"
    series = str(uuid.uuid4()) if len(windows) > 1 else None
    values = {
        "owner_id": caller.user_id,
        "owner_name": caller.username,
        "purpose": data.get("purpose") or "",
        "status": status,
        "series_id": series,
        "power_on_start": bool(data.get("power_on_start")),
        "power_off_end": bool(data.get("power_off_end")),
        "decided_by": "policy" if status == "approved" else None,
        "decision_note": None,
        "reminded_at": None,
    }
    bookings = [Booking(**values, start_at=ws, end_at=we) for ws, we in windows]
    session.add_all(bookings)
    await session.flush()
    rows = [
        {
            "booking_id": b.id,
            "device_id": d,
            "start_at": b.start_at,
            "end_at": b.end_at,
            "status": status,
        }
        for b in bookings
        for d in device_ids
    ]
    await insert_slots(session, rows, device_ids, windows)
    for b in bookings:
        publish(session, _event(events.BookingCreated, b, device_ids), actor=caller.username)
    return bookings


async def get_booking(session: AsyncSession, booking_id: int, caller: Principal) -> Booking:
    """One booking; ``NotFound`` when missing or not the caller's (members)."""
    booking = await session.get(Booking, booking_id)
    if booking is None or (not is_approver(caller) and booking.owner_id != caller.user_id):
        raise NotFound(f"booking {booking_id} not found")
    return booking


async def locked_booking(session: AsyncSession, booking_id: int, caller: Principal) -> Booking:
    """One booking, its row locked until the commit and its status current (the start of
    every status change); ``NotFound`` like ``get_booking``."""
    booking = await lock_row(session, Booking, booking_id)
    if booking is None or (not is_approver(caller) and booking.owner_id != caller.user_id):
        raise NotFound(f"booking {booking_id} not found")
    return booking


def _not_in(booking: Booking, wanted: str) -> Conflict:
    """The 409 of a status change that lost: it names the booking's current status."""
    return Conflict(
        f"booking {booking.id} is {booking.status}, not {wanted}", current_state=booking.status
    )


async def device_ids_of(session: AsyncSession, booking_ids: list[int]) -> dict[int, list[int]]:
    """``{booking id: [device ids]}`` for many bookings in one query."""
    if not booking_ids:
        return {}
    rows = await session.execute(
        select(Slot.booking_id, Slot.device_id)
        .where(Slot.booking_id.in_(booking_ids))
        .order_by(Slot.id)
    )
    out: dict[int, list[int]] = {b: [] for b in booking_ids}
    for booking_id, device_id in rows.all():
        out[booking_id].append(device_id)
    return out


async def list_bookings(
    session: AsyncSession,
    caller: Principal,
    *,
    device_id: int | None = None,
    owner_id: int | None = None,
    status: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    series_id: str | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> tuple[list[Booking], int | None]:
    """A page of bookings by id (members: only their own) and the next cursor.

    ``start``/``end`` keep the bookings overlapping that window.
    """
    stmt = select(Booking)
    if not is_approver(caller):
        stmt = stmt.where(Booking.owner_id == caller.user_id)
    if owner_id is not None:
        stmt = stmt.where(Booking.owner_id == owner_id)
    if status:
        stmt = stmt.where(Booking.status == status)
    if start is not None:
        stmt = stmt.where(Booking.end_at > start)
    if end is not None:
        stmt = stmt.where(Booking.start_at < end)
    if series_id:
        stmt = stmt.where(Booking.series_id == series_id)
    if device_id is not None:
        stmt = stmt.where(
            Booking.id.in_(select(Slot.booking_id).where(Slot.device_id == device_id))
        )
    return await page_by_id(session, stmt, Booking.id, cursor=cursor, limit=limit)


async def approve_booking(
    session: AsyncSession,
    booking_id: int,
    caller: Principal,
    note: str | None = None,
    *,
    now: datetime | None = None,
) -> Booking:
    """Approve a pending booking, re-checking conflicts in this transaction."""
    now = now or utcnow()
    if not is_approver(caller):
        raise Forbidden("only operators and admins approve bookings")
    booking = await locked_booking(session, booking_id, caller)
    if booking.status != "pending":
        raise _not_in(booking, "pending")
    if booking.start_at <= now:
        raise Conflict(f"booking {booking_id} started before it was approved; it expires")
    ids = await booking_device_ids(session, booking.id)
    await lock_devices(session, ids)
    conflicts = await find_conflicts(
        session, ids, [(booking.start_at, booking.end_at)], [booking.id]
    )
    if conflicts:
        raise conflict_error(conflicts)
    booking.status = "approved"
    booking.decided_by = caller.username
    booking.decision_note = note
    await set_slots(session, booking)
    publish(session, _event(events.BookingApproved, booking, ids), actor=caller.username)
    return booking


async def reject_booking(
    session: AsyncSession, booking_id: int, caller: Principal, note: str | None = None
) -> Booking:
    """Reject a pending booking (its devices are free again)."""
    if not is_approver(caller):
        raise Forbidden("only operators and admins reject bookings")
    booking = await locked_booking(session, booking_id, caller)
    if booking.status != "pending":
        raise _not_in(booking, "pending")
    booking.status = "rejected"
    booking.decided_by = caller.username
    booking.decision_note = note
    await set_slots(session, booking)
    ids = await booking_device_ids(session, booking.id)
    publish(session, _event(events.BookingRejected, booking, ids), actor=caller.username)
    return booking


async def cancel_booking(session: AsyncSession, booking_id: int, caller: Principal) -> Booking:
    """Cancel a pending or approved booking; an active one is released instead (409)."""
    booking = await locked_booking(session, booking_id, caller)
    if booking.status == "active":
        raise Conflict(
            f"booking {booking_id} is active: release it instead", current_state="active"
        )
    if booking.status not in ("pending", "approved"):
        raise Conflict(
            f"booking {booking_id} is {booking.status} and cannot be cancelled",
            current_state=booking.status,
        )
    booking.status = "cancelled"
    await set_slots(session, booking)
    ids = await booking_device_ids(session, booking.id)
    publish(session, _event(events.BookingCancelled, booking, ids), actor=caller.username)
    return booking


async def release_booking(
    session: AsyncSession, booking_id: int, caller: Principal, *, now: datetime | None = None
) -> Booking:
    """End an active booking now (early release): completed, devices free from now on."""
    now = now or utcnow()
    booking = await locked_booking(session, booking_id, caller)
    if booking.status != "active":
        raise _not_in(booking, "active")
    booking.status = "completed"
    booking.end_at = max(min(booking.end_at, now), booking.start_at + timedelta(seconds=1))
    await set_slots(session, booking)
    ids = await booking_device_ids(session, booking.id)
    publish(session, _event(events.BookingEnded, booking, ids), actor=caller.username)
    return booking


async def release_and_power_off(
    ctx: PlatformContext, booking_id: int, caller: Principal
) -> Booking:
    """Early release, committed, then power off like the end job when ``power_off_end``.

    The power-off runs after the commit (the devices are free by then); a failing driver
    is audited and logged, never raised: the release itself has happened.
    """
    from platform_scheduler.power import switch_configured

    async with ctx.db.session() as session:
        booking = await release_booking(session, booking_id, caller)
        ids = await booking_device_ids(session, booking.id)
    if booking.power_off_end:
        await switch_configured(ctx, ids, "off", caller)
    return booking


async def update_booking(
    session: AsyncSession,
    booking_id: int,
    changes: dict[str, Any],
    caller: Principal,
    settings: SchedulerSettings,
    *,
    now: datetime | None = None,
) -> Booking:
    """Extend, shorten or move a booking, or change its purpose (same rules as creating).

    An active booking keeps its start. Extending an approved booking beyond its window
    under an approval-required policy sends it back to ``pending``.
    """
    now = now or utcnow()
    for key in ("start", "end", "purpose"):
        if key in changes and changes[key] is None:
            raise invalid(key, "cannot be null")
    booking = await locked_booking(session, booking_id, caller)
    if booking.status not in HOLDING:
        raise Conflict(
            f"booking {booking_id} is {booking.status} and cannot be changed",
            current_state=booking.status,
        )
    start = changes.get("start", booking.start_at)
    end = changes.get("end", booking.end_at)
    if booking.status == "active" and start != booking.start_at:
        raise invalid("start", "an active booking keeps its start")
    if end <= start:
        raise invalid("end", "must be after start")
    if start != booking.start_at and start < now - START_GRACE:
        raise invalid("start", "must not be in the past")
    if booking.status == "active" and end <= now:
        raise invalid("end", "must be in the future (release the booking to end it now)")
    ids = await booking_device_ids(session, booking.id)
    _, rules = await devices_and_rules(session, ids, "device_ids", settings)
    check_window(start, end, rules, now)
    await lock_devices(session, ids)
    conflicts = await find_conflicts(session, ids, [(start, end)], [booking.id])
    if conflicts:
        raise conflict_error(conflicts)
    grows = start < booking.start_at or end > booking.end_at
    if (
        booking.status == "approved"
        and grows
        and not rules.auto_approve
        and not is_approver(caller)
    ):
        booking.status = "pending"
        booking.decided_by = None
    booking.start_at, booking.end_at = start, end
    if "purpose" in changes:
        booking.purpose = changes["purpose"]
    await set_slots(session, booking)
    publish(session, _event(events.BookingChanged, booking, ids), actor=caller.username)
    return booking
