"""Business logic of bookings, approvals, policies and availability (no HTTP here).

Functions take an open session and raise the platform's domain errors; the caller owns the
transaction. Devices come from the inventory plugin's service layer (declared in
``requires``).

No double booking, on either database:

- **PostgreSQL**: the exclusion constraint ``ex_scheduler_booking_devices_no_overlap``
  (``btree_gist``: same device and overlapping ``tstzrange(start, end, '[)')`` among
  holding slots) refuses the second of two racing inserts; the violation is turned into a
  409 naming the booking that won.
- **SQLite**: every write that holds devices starts by updating the one-row
  ``scheduler_write_lock`` table. SQLite has one writer at a time and that first write
  takes the database's write lock, so the conflict check and the insert that follow run in
  one serialized write transaction (like ``BEGIN IMMEDIATE``): a second request waits at
  the lock (``busy_timeout``) and then sees the first one's committed slots.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from platform_inventory import service as inventory
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core.auth.service import Principal
from platform_core.db import utcnow
from platform_core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from platform_core.events.outbox import publish
from platform_scheduler import events
from platform_scheduler.models import HOLDING, Booking, Policy, Slot, WriteLock
from platform_scheduler.settings import SchedulerSettings

APPROVERS = ("admin", "operator")
START_GRACE = timedelta(minutes=5)
MAX_WINDOW = timedelta(days=31)
HORIZON = timedelta(days=7)


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


def invalid(field: str, message: str) -> ValidationFailed:
    """A 422 naming one field."""
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


def is_approver(caller: Principal) -> bool:
    """True for operators and admins (they approve and see every booking)."""
    return caller.role in APPROVERS


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


# -- serialization ----------------------------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def serialize_writes(session: AsyncSession) -> None:
    """On SQLite, take the database's write lock now (no-op on PostgreSQL).

    Call it before reading what a booking write depends on: everything read afterwards in
    this transaction is current until the commit.
    """
    if _dialect(session) == "sqlite":
        await session.execute(
            update(WriteLock).where(WriteLock.id == 1).values(counter=WriteLock.counter + 1)
        )


# -- devices and policies ---------------------------------------------------------------


async def device_info(session: AsyncSession, device_id: int, field: str) -> DeviceInfo:
    """One inventory device; 422 naming ``field`` when it does not exist."""
    try:
        d = await inventory.get_device(session, device_id)
    except NotFound:
        raise invalid(field, f"device {device_id} does not exist") from None
    return DeviceInfo(d.id, d.name, d.device_type_id, tuple(d.tags or ()), d.status)


async def resolve_devices(
    session: AsyncSession,
    device_ids: Sequence[int],
    *,
    include_connected: bool,
    settings: SchedulerSettings,
) -> list[DeviceInfo]:
    """The devices of a booking (plus their connected devices when asked), all bookable."""
    if len(set(device_ids)) != len(device_ids):
        raise invalid("device_ids", "a device is listed twice")
    ids = list(device_ids)
    if include_connected:
        for device_id in device_ids:
            await device_info(session, device_id, "device_ids")
            topo = await inventory.topology(
                session, device_id, settings.connected_depth, settings.max_devices_per_booking + 1
            )
            for d in topo["devices"]:
                if d["device_id"] not in ids:
                    ids.append(d["device_id"])
    if len(ids) > settings.max_devices_per_booking:
        raise invalid(
            "device_ids", f"at most {settings.max_devices_per_booking} devices per booking"
        )
    devices = [await device_info(session, i, "device_ids") for i in ids]
    for d in devices:
        if d.status == "retired":
            raise invalid("device_ids", f"device {d.name!r} is retired")
    return devices


async def rules_for(
    session: AsyncSession, devices: Iterable[DeviceInfo], settings: SchedulerSettings
) -> Rules:
    """The strictest combination of the policies matching any of ``devices``."""
    devices = list(devices)
    types = {d.device_type_id for d in devices}
    tags = {t for d in devices for t in d.tags}
    conditions = [Policy.device_type_id.in_(types)]
    if tags:
        conditions.append(Policy.tag.in_(tags))
    found = list((await session.scalars(select(Policy).where(or_(*conditions)))).all())
    if not found:
        return Rules(settings.default_auto_approve, None, None, None, ())

    def strictest(values: Iterable[int | None]) -> int | None:
        present = [v for v in values if v is not None]
        return min(present) if present else None

    return Rules(
        auto_approve=all(p.auto_approve for p in found),
        max_minutes=strictest(p.max_minutes for p in found),
        max_days_ahead=strictest(p.max_days_ahead for p in found),
        max_concurrent=strictest(p.max_concurrent for p in found),
        policies=tuple(sorted(p.name for p in found)),
    )


def check_window(start: datetime, end: datetime, rules: Rules, now: datetime) -> None:
    """422 naming ``start`` or ``end`` when the window breaks the rules."""
    if end <= start:
        raise invalid("end", "must be after start")
    if rules.max_minutes is not None and end - start > timedelta(minutes=rules.max_minutes):
        raise invalid(
            "end",
            f"a booking lasts at most {rules.max_minutes} minutes "
            f"(policy {', '.join(rules.policies)})",
        )
    if rules.max_days_ahead is not None and start > now + timedelta(days=rules.max_days_ahead):
        raise invalid(
            "start",
            f"at most {rules.max_days_ahead} days ahead (policy {', '.join(rules.policies)})",
        )


async def _check_concurrent(
    session: AsyncSession, owner_id: int, rules: Rules, adding: int, now: datetime
) -> None:
    if rules.max_concurrent is None:
        return
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
    stmt = select(Slot.booking_id, Slot.device_id, Slot.start_at, Slot.end_at).where(
        Slot.device_id.in_(list(device_ids)),
        Slot.status.in_(HOLDING),
        Slot.start_at < hi,
        Slot.end_at > lo,
    )
    excluded = list(exclude)
    if excluded:
        stmt = stmt.where(Slot.booking_id.not_in(excluded))
    rows = (await session.execute(stmt.order_by(Slot.start_at))).all()
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


async def _insert_slots(
    session: AsyncSession,
    rows: list[dict[str, Any]],
    device_ids: Sequence[int],
    windows: Sequence[tuple[datetime, datetime]],
    exclude: Iterable[int] = (),
) -> None:
    """Insert slots; on PostgreSQL a race lost to the exclusion constraint becomes a 409."""
    if not rows:
        return
    try:
        async with session.begin_nested():
            await session.execute(insert(Slot), rows)
    except IntegrityError:
        conflicts = await find_conflicts(session, device_ids, windows, exclude)
        if not conflicts:  # the winner has since gone; report the race rather than guess
            raise Conflict("the devices were booked concurrently; try again") from None
        raise conflict_error(conflicts) from None


async def _set_slots(session: AsyncSession, booking: Booking, *, status: str | None = None) -> None:
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
    windows = []
    k = 0
    while start + k * step < until:
        if len(windows) >= limit:
            raise invalid("recurrence.until", f"at most {limit} occurrences")
        windows.append((start + k * step, end + k * step))
        k += 1
    return windows


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
    devices = await resolve_devices(
        session,
        data["device_ids"],
        include_connected=bool(data.get("include_connected")),
        settings=settings,
    )
    await serialize_writes(session)
    rules = await rules_for(session, devices, settings)
    for ws, we in windows:
        check_window(ws, we, rules, now)
    await _check_concurrent(session, caller.user_id, rules, len(windows), now)
    device_ids = [d.id for d in devices]
    conflicts = await find_conflicts(session, device_ids, windows)
    if conflicts:
        raise conflict_error(conflicts)
    status = "approved" if rules.auto_approve or is_approver(caller) else "pending"
    series = str(uuid.uuid4()) if len(windows) > 1 else None
    bookings = [
        Booking(
            owner_id=caller.user_id,
            owner_name=caller.username,
            purpose=data.get("purpose") or "",
            status=status,
            start_at=ws,
            end_at=we,
            series_id=series,
            power_on_start=bool(data.get("power_on_start")),
            power_off_end=bool(data.get("power_off_end")),
            decided_by="policy" if status == "approved" else None,
        )
        for ws, we in windows
    ]
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
    await _insert_slots(session, rows, device_ids, windows)
    for b in bookings:
        publish(session, _event(events.BookingCreated, b, device_ids), actor=caller.username)
    return bookings


async def get_booking(session: AsyncSession, booking_id: int, caller: Principal) -> Booking:
    """One booking; ``NotFound`` when missing or not the caller's (members)."""
    booking = await session.get(Booking, booking_id)
    if booking is None or (not is_approver(caller) and booking.owner_id != caller.user_id):
        raise NotFound(f"booking {booking_id} not found")
    return booking


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
    if cursor is not None:
        stmt = stmt.where(Booking.id > cursor)
    rows = list((await session.scalars(stmt.order_by(Booking.id).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


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
    await serialize_writes(session)
    booking = await get_booking(session, booking_id, caller)
    if booking.status != "pending":
        raise Conflict(f"booking {booking_id} is {booking.status}, not pending")
    if booking.start_at <= now:
        raise Conflict(f"booking {booking_id} started before it was approved; it expires")
    ids = await booking_device_ids(session, booking.id)
    conflicts = await find_conflicts(
        session, ids, [(booking.start_at, booking.end_at)], [booking.id]
    )
    if conflicts:
        raise conflict_error(conflicts)
    booking.status = "approved"
    booking.decided_by = caller.username
    booking.decision_note = note
    await _set_slots(session, booking)
    publish(session, _event(events.BookingApproved, booking, ids), actor=caller.username)
    return booking


async def reject_booking(
    session: AsyncSession, booking_id: int, caller: Principal, note: str | None = None
) -> Booking:
    """Reject a pending booking (its devices are free again)."""
    if not is_approver(caller):
        raise Forbidden("only operators and admins reject bookings")
    booking = await get_booking(session, booking_id, caller)
    if booking.status != "pending":
        raise Conflict(f"booking {booking_id} is {booking.status}, not pending")
    booking.status = "rejected"
    booking.decided_by = caller.username
    booking.decision_note = note
    await _set_slots(session, booking)
    ids = await booking_device_ids(session, booking.id)
    publish(session, _event(events.BookingRejected, booking, ids), actor=caller.username)
    return booking


async def cancel_booking(session: AsyncSession, booking_id: int, caller: Principal) -> Booking:
    """Cancel a pending or approved booking; an active one is released instead (409)."""
    booking = await get_booking(session, booking_id, caller)
    if booking.status == "active":
        raise Conflict(f"booking {booking_id} is active: release it instead")
    if booking.status not in ("pending", "approved"):
        raise Conflict(f"booking {booking_id} is {booking.status} and cannot be cancelled")
    booking.status = "cancelled"
    await _set_slots(session, booking)
    ids = await booking_device_ids(session, booking.id)
    publish(session, _event(events.BookingCancelled, booking, ids), actor=caller.username)
    return booking


async def release_booking(
    session: AsyncSession, booking_id: int, caller: Principal, *, now: datetime | None = None
) -> Booking:
    """End an active booking now (early release): completed, devices free from now on."""
    now = now or utcnow()
    booking = await get_booking(session, booking_id, caller)
    if booking.status != "active":
        raise Conflict(f"booking {booking_id} is {booking.status}, not active")
    booking.status = "completed"
    booking.end_at = max(min(booking.end_at, now), booking.start_at + timedelta(seconds=1))
    await _set_slots(session, booking)
    ids = await booking_device_ids(session, booking.id)
    publish(session, _event(events.BookingEnded, booking, ids), actor=caller.username)
    return booking


async def release_and_power_off(ctx: Any, booking_id: int, caller: Principal) -> Booking:
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
    await serialize_writes(session)
    booking = await get_booking(session, booking_id, caller)
    if booking.status not in HOLDING:
        raise Conflict(f"booking {booking_id} is {booking.status} and cannot be changed")
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
    devices = [await device_info(session, i, "device_ids") for i in ids]
    rules = await rules_for(session, devices, settings)
    check_window(start, end, rules, now)
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
    await _set_slots(session, booking)
    publish(session, _event(events.BookingChanged, booking, ids), actor=caller.username)
    return booking


# -- jobs: status changes over time -----------------------------------------------------


async def _transition(
    session: AsyncSession,
    stmt: Any,
    status: str,
    event: type[events.BookingEvent],
) -> list[tuple[Booking, list[int]]]:
    bookings = list((await session.scalars(stmt.order_by(Booking.id).limit(500))).all())
    done = []
    for booking in bookings:
        booking.status = status
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
    return await _transition(session, stmt, "active", events.BookingStarted)


async def end_due(session: AsyncSession, now: datetime) -> list[tuple[Booking, list[int]]]:
    """Active (or never started approved) bookings whose window has passed: ``completed``."""
    stmt = select(Booking).where(Booking.status.in_(("active", "approved")), Booking.end_at <= now)
    return await _transition(session, stmt, "completed", events.BookingEnded)


async def expire_pending(session: AsyncSession, now: datetime) -> list[tuple[Booking, list[int]]]:
    """Pending bookings whose start passed unapproved become ``expired``."""
    stmt = select(Booking).where(Booking.status == "pending", Booking.start_at <= now)
    return await _transition(session, stmt, "expired", events.BookingExpired)


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


# -- policies ---------------------------------------------------------------------------


async def list_policies(session: AsyncSession) -> list[Policy]:
    """Every policy, by id."""
    return list((await session.scalars(select(Policy).order_by(Policy.id))).all())


async def get_policy(session: AsyncSession, policy_id: int) -> Policy:
    """One policy, or ``NotFound``."""
    policy = await session.get(Policy, policy_id)
    if policy is None:
        raise NotFound(f"policy {policy_id} not found")
    return policy


def _check_target(values: dict[str, Any]) -> None:
    if (values.get("device_type_id") is None) == (values.get("tag") is None):
        raise invalid("device_type_id", "give exactly one of device_type_id and tag")


async def _flush_policy(session: AsyncSession, name: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"a policy named {name!r} already exists",
            errors=[{"field": "name", "message": "already exists"}],
        ) from None


async def create_policy(session: AsyncSession, data: dict[str, Any]) -> Policy:
    """Create a policy for one device type or one tag; 409 on a duplicate name."""
    _check_target(data)
    existing = await session.scalar(select(Policy.id).where(Policy.name == data["name"]))
    if existing is not None:
        raise Conflict(
            f"a policy named {data['name']!r} already exists",
            errors=[{"field": "name", "message": "already exists"}],
        )
    policy = Policy(**data)
    session.add(policy)
    await _flush_policy(session, data["name"])
    return policy


async def update_policy(session: AsyncSession, policy_id: int, changes: dict[str, Any]) -> Policy:
    """Change a policy (only the keys present; ``None`` clears a limit)."""
    policy = await get_policy(session, policy_id)
    for key in ("name", "auto_approve"):
        if key in changes and changes[key] is None:
            raise invalid(key, "cannot be null")
    merged = {
        "device_type_id": changes.get("device_type_id", policy.device_type_id),
        "tag": changes.get("tag", policy.tag),
    }
    _check_target(merged)
    if "name" in changes and changes["name"] != policy.name:
        other = await session.scalar(select(Policy.id).where(Policy.name == changes["name"]))
        if other is not None:
            raise Conflict(
                f"a policy named {changes['name']!r} already exists",
                errors=[{"field": "name", "message": "already exists"}],
            )
    for key, value in changes.items():
        setattr(policy, key, value)
    await _flush_policy(session, policy.name)
    return policy


async def delete_policy(session: AsyncSession, policy_id: int) -> None:
    """Delete a policy."""
    policy = await get_policy(session, policy_id)
    await session.delete(policy)
    await session.flush()


# -- availability and recommendations ---------------------------------------------------


def check_query_window(start: datetime, end: datetime) -> None:
    """422 unless ``start < end`` and the window is at most 31 days."""
    if end <= start:
        raise invalid("end", "must be after start")
    if end - start > MAX_WINDOW:
        raise invalid("end", "the window is at most 31 days")


async def _devices_of(
    session: AsyncSession, device_id: int | None, device_type_id: int | None
) -> list[tuple[int, str]]:
    if (device_id is None) == (device_type_id is None):
        raise invalid("device_id", "give exactly one of device_id and device_type_id")
    if device_id is not None:
        d = await device_info(session, device_id, "device_id")
        return [(d.id, d.name)] if d.status != "retired" else []
    sub = inventory.filtered_devices(inventory.DeviceFilters(device_type_id=device_type_id))
    sub = sub.subquery()
    rows = await session.execute(
        select(sub.c.id, sub.c.name).where(sub.c.status != "retired").order_by(sub.c.name)
    )
    return [(r[0], r[1]) for r in rows.all()]


async def _busy(
    session: AsyncSession, ids: list[int], lo: datetime, hi: datetime
) -> dict[int, list[tuple[datetime, datetime, int]]]:
    busy: dict[int, list[tuple[datetime, datetime, int]]] = {i: [] for i in ids}
    if not ids:
        return busy
    rows = await session.execute(
        select(Slot.device_id, Slot.start_at, Slot.end_at, Slot.booking_id)
        .where(
            Slot.device_id.in_(ids),
            Slot.status.in_(HOLDING),
            Slot.start_at < hi,
            Slot.end_at > lo,
        )
        .order_by(Slot.device_id, Slot.start_at)
    )
    for device_id, s, e, b in rows.all():
        busy[device_id].append((s, e, b))
    return busy


def free_slots(
    busy: list[tuple[datetime, datetime, int]], start: datetime, end: datetime, duration: timedelta
) -> list[tuple[datetime, datetime]]:
    """The free intervals of ``[start, end)`` at least ``duration`` long, given busy slots."""
    free = []
    cursor = start
    for s, e, _ in sorted(busy):
        if s > cursor and min(s, end) - cursor >= duration:
            free.append((cursor, min(s, end)))
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if end - cursor >= duration:
        free.append((cursor, end))
    return free


async def availability(
    session: AsyncSession,
    *,
    device_id: int | None,
    device_type_id: int | None,
    start: datetime,
    end: datetime,
    duration: timedelta,
) -> list[dict[str, Any]]:
    """For each device: the free slots within ``[start, end)`` at least ``duration`` long."""
    check_query_window(start, end)
    devices = await _devices_of(session, device_id, device_type_id)
    busy = await _busy(session, [d for d, _ in devices], start, end)
    return [
        {
            "device_id": d,
            "name": name,
            "free": [{"start": s, "end": e} for s, e in free_slots(busy[d], start, end, duration)],
        }
        for d, name in devices
    ]


def _human(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes >= 1440:
        return f"{minutes / 1440:.1f} d"
    if minutes >= 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes} min"


async def recommendations(
    session: AsyncSession, *, device_type_id: int, start: datetime, end: datetime, limit: int
) -> list[dict[str, Any]]:
    """Devices of a type free for ``[start, end)``, least fragmenting first, with the reason.

    The score is the free time left next to the booking on each side (each capped at 7
    days): a booking that fills a gap exactly leaves no unusable sliver, and a device with
    an empty calendar is kept whole for longer bookings.
    """
    check_query_window(start, end)
    devices = await _devices_of(session, None, device_type_id)
    busy = await _busy(session, [d for d, _ in devices], start - HORIZON, end + HORIZON)
    ranked = []
    for d, name in devices:
        slots = busy[d]
        if any(s < end and e > start for s, e, _ in slots):
            continue
        before = [(e, b) for s, e, b in slots if e <= start]
        after = [(s, b) for s, e, b in slots if s >= end]
        prev = max(before) if before else None
        nxt = min(after) if after else None
        gap_before = start - prev[0] if prev else HORIZON
        gap_after = nxt[0] - end if nxt else HORIZON
        parts = []
        if prev is None:
            parts.append("nothing booked in the 7 days before")
        elif gap_before == timedelta(0):
            parts.append(f"starts right after booking {prev[1]}")
        else:
            parts.append(f"leaves {_human(gap_before)} free after booking {prev[1]}")
        if nxt is None:
            parts.append("nothing booked in the 7 days after")
        elif gap_after == timedelta(0):
            parts.append(f"ends right before booking {nxt[1]}")
        else:
            parts.append(f"leaves {_human(gap_after)} free before booking {nxt[1]}")
        score = (gap_before + gap_after).total_seconds() / 60
        ranked.append(
            {
                "device_id": d,
                "name": name,
                "score": score,
                "gap_before_minutes": int(gap_before.total_seconds() // 60),
                "gap_after_minutes": int(gap_after.total_seconds() // 60),
                "reason": "; ".join(parts),
            }
        )
    ranked.sort(key=lambda r: (r["score"], r["name"]))
    return ranked[:limit]


# -- the inventory's veto ---------------------------------------------------------------


async def future_bookings(session: AsyncSession, device_id: int, now: datetime) -> list[int]:
    """Ids of the bookings holding ``device_id`` now or later."""
    rows = await session.scalars(
        select(Slot.booking_id)
        .where(Slot.device_id == device_id, Slot.status.in_(HOLDING), Slot.end_at > now)
        .order_by(Slot.start_at)
        .limit(10)
    )
    return list(rows.all())
