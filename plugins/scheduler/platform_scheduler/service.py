"""Business logic of bookings, approvals, policies and availability (no HTTP here).

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

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from platform_inventory import api as inventory
from sqlalchemy import (
    String,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from platform_core import (
    Conflict,
    Forbidden,
    NotFound,
    PlatformContext,
    Principal,
    compare_and_set,
    insert_ignoring,
    invalid,
    lock_row,
    page_by_id,
    publish,
    serialize,
    utcnow,
)
from platform_scheduler import events
from platform_scheduler.models import HOLDING, Booking, Policy, Slot, WriteLock
from platform_scheduler.settings import SchedulerSettings

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


# -- devices and policies ---------------------------------------------------------------


@functools.cache
def _inventory_devices() -> Any:
    """The inventory's devices as a subquery, built once (its column collection is costly)."""
    return inventory.filtered_devices(inventory.DeviceFilters()).subquery("inventory_device")


async def refuse_gone_or_retired(session: AsyncSession, device_ids: list[int]) -> None:
    """422 naming ``device_ids`` when a device was deleted or retired meanwhile.

    Call it after :func:`lock_devices`: the inventory's delete veto takes the same locks
    before it looks for bookings, so a retirement or deletion committed while this booking
    was being checked is seen here, and one still running waits for this booking.
    """
    d = _inventory_devices().c
    rows = await session.execute(select(d.id, d.name, d.status).where(d.id.in_(device_ids)))
    found = {row.id: row for row in rows}
    for device_id in device_ids:
        row = found.get(device_id)
        if row is None:
            raise invalid("device_ids", f"device {device_id} was deleted")
        if row.status == "retired":
            raise invalid("device_ids", f"device {row.name!r} is retired")


@functools.cache
def _devices_with_policies() -> Any:
    """Devices ``ids`` (expanding) with their candidate policies, in one statement.

    Each device row is joined to the policies of its type and to every tag policy (few:
    admins write them); the caller keeps the tag policies whose tag the device carries.
    """
    devices = _inventory_devices()
    d, p = devices.c, POLICIES.c
    return (
        select(
            d.id,
            d.name,
            d.device_type_id,
            d.tags,
            d.status,
            p.name.label("policy"),
            p.device_type_id.label("policy_type"),
            p.tag,
            p.auto_approve,
            p.max_minutes,
            p.max_days_ahead,
            p.max_concurrent,
        )
        .select_from(
            devices.outerjoin(
                POLICIES, or_(p.device_type_id == d.device_type_id, p.tag.is_not(None))
            )
        )
        .where(d.id.in_(bindparam("ids", expanding=True)))
    )


def _strictest(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _rules(found: dict[str, tuple[Any, ...]], settings: SchedulerSettings) -> Rules:
    """The strictest combination of ``{policy name: (auto_approve, max_minutes,
    max_days_ahead, max_concurrent)}``; the settings' default without any policy."""
    if not found:
        return Rules(settings.default_auto_approve, None, None, None, ())
    limits = list(found.values())
    return Rules(
        auto_approve=all(r[0] for r in limits),
        max_minutes=_strictest(r[1] for r in limits),
        max_days_ahead=_strictest(r[2] for r in limits),
        max_concurrent=_strictest(r[3] for r in limits),
        policies=tuple(sorted(found)),
    )


async def devices_and_rules(
    session: AsyncSession, device_ids: Sequence[int], field: str, settings: SchedulerSettings
) -> tuple[list[DeviceInfo], Rules]:
    """Inventory devices (in the given order) and the effective policy for them, in one
    query; 422 naming ``field`` when a device does not exist.

    The effective policy is the strictest combination of every policy matching the type or
    a tag of any of the devices.
    """
    found: dict[int, DeviceInfo] = {}
    policies: dict[str, tuple[Any, ...]] = {}
    if device_ids:
        rows = await _core(session, _devices_with_policies(), {"ids": list(device_ids)})
        for i, name, type_id, tags, status, policy, p_type, p_tag, *limits in rows:
            device = found.get(i)
            if device is None:
                device = found[i] = DeviceInfo(i, name, type_id, tuple(tags or ()), status)
            if policy is not None and (p_type == type_id or p_tag in device.tags):
                policies[policy] = tuple(limits)
    for device_id in device_ids:
        if device_id not in found:
            raise invalid(field, f"device {device_id} does not exist")
    return [found[i] for i in device_ids], _rules(policies, settings)


async def device_info(session: AsyncSession, device_id: int, field: str) -> DeviceInfo:
    """One inventory device; 422 naming ``field`` when it does not exist."""
    d = _inventory_devices().c
    stmt = select(d.id, d.name, d.device_type_id, d.tags, d.status).where(d.id == device_id)
    row = (await _core(session, stmt)).first()
    if row is None:
        raise invalid(field, f"device {device_id} does not exist")
    return DeviceInfo(row[0], row[1], row[2], tuple(row[3] or ()), row[4])


async def resolve_devices(
    session: AsyncSession,
    device_ids: Sequence[int],
    *,
    include_connected: bool,
    settings: SchedulerSettings,
) -> tuple[list[DeviceInfo], Rules]:
    """The devices of a booking (plus their connected devices when asked), all bookable,
    and the effective policy for them."""
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
    devices, rules = await devices_and_rules(session, ids, "device_ids", settings)
    for d in devices:
        if d.status == "retired":
            raise invalid("device_ids", f"device {d.name!r} is retired")
    return devices, rules


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


async def lock_owner(session: AsyncSession, owner_id: int) -> None:
    """Serialize one owner's booking writes until this transaction ends.

    A named lock (``scheduler.owner``), so that two concurrent creates by one user cannot
    both pass the ``max_concurrent`` count (the second waits for the first to commit, then
    counts its booking). SQLite: the database's write lock.
    """
    await serialize(session, "scheduler.owner", [owner_id], table=WriteLock)


async def _check_concurrent(
    session: AsyncSession, owner_id: int, rules: Rules, adding: int, now: datetime
) -> None:
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


async def _insert_slots(
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
    windows: list[tuple[datetime, datetime]] = []
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
    devices, rules = await resolve_devices(
        session,
        data["device_ids"],
        include_connected=bool(data.get("include_connected")),
        settings=settings,
    )
    for ws, we in windows:
        check_window(ws, we, rules, now)
    await _check_concurrent(session, caller.user_id, rules, len(windows), now)
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
    await _set_slots(session, booking)
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
    await _set_slots(session, booking)
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
    await _set_slots(session, booking)
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
    await _set_slots(session, booking)
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
    await _set_slots(session, booking)
    publish(session, _event(events.BookingChanged, booking, ids), actor=caller.username)
    return booking


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


async def _core(session: AsyncSession, stmt: Any, params: dict[str, Any] | None = None) -> Any:
    """Run ``stmt`` on the session's connection: plain rows, never the ORM's row loading
    (statements over the inventory's device subquery are ORM-enabled)."""
    return await (await session.connection()).execute(stmt, params or {})


@functools.cache
def _bookable(by: str) -> Any:
    """``id``, ``name`` of the devices that are not retired, with ``id`` (``by="device"``)
    or ``device_type_id`` (``by="type"``) equal to ``:target``. Built once per kind."""
    d = _inventory_devices().c
    key = d.id if by == "device" else d.device_type_id
    return select(d.id, d.name).where(d.status != "retired", key == bindparam("target"))


async def _devices_of(
    session: AsyncSession, device_id: int | None, device_type_id: int | None
) -> tuple[str, int, list[tuple[int, str]]]:
    """``(kind, target, [(id, name)] by name)`` of the devices asked for (not retired)."""
    if (device_id is None) == (device_type_id is None):
        raise invalid("device_id", "give exactly one of device_id and device_type_id")
    if device_id is not None:
        await device_info(session, device_id, "device_id")  # 422 when it does not exist
        by, target = "device", device_id
    else:
        by, target = "type", cast(int, device_type_id)  # not None: exactly one was given
    rows = await _core(session, _listing(by), {"target": target})
    return by, target, [(r[0], r[1]) for r in rows]


@functools.cache
def _listing(by: str) -> Any:
    devices = _bookable(by).subquery()
    return select(devices.c.id, devices.c.name).order_by(devices.c.name)


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
    """The free intervals of ``[start, end)`` at least ``duration`` long, given busy slots.

    The reference algorithm: ``free_windows`` finds the same gaps in one pass over rows.
    """
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


@functools.cache
def _held(dialect: str, by: str) -> Any:
    """One row per device of ``_bookable(by)`` holding a slot overlapping ``[:lo, :hi)``,
    by device id, with the raw times of those slots (built once per dialect and kind).

    PostgreSQL: ``(device_id, starts, ends)``, two ``timestamptz[]`` ordered by start
    (asyncpg decodes them into aware UTC datetimes, no per-value conversion in Python).
    SQLite: ``(device_id, "start,end,start,end...")``, the stored UTC text
    (``YYYY-MM-DD HH:MM:SS.ffffff``) of every slot, in no guaranteed order.
    """
    c = SLOTS.c
    if dialect == "sqlite":
        start, end = type_coerce(c.start_at, String()), type_coerce(c.end_at, String())
        columns: list[Any] = [func.group_concat(start.op("||")(",").op("||")(end), ",")]
    else:
        columns = [
            type_coerce(func.array_agg(aggregate_order_by(col, c.start_at)), NullType())
            for col in (c.start_at, c.end_at)
        ]
    return (
        select(c.device_id, *columns)
        .where(
            c.device_id.in_(select(_bookable(by).subquery().c.id)),
            c.status.in_(HOLDING),
            c.start_at < bindparam("hi"),
            c.end_at > bindparam("lo"),
        )
        .group_by(c.device_id)
        .order_by(c.device_id)
    )


def _slot_times(dialect: str, row: Any) -> Iterable[tuple[Any, Any]]:
    """The ``(raw start, raw end)`` pairs of one row of ``_held``, by start."""
    if dialect == "sqlite":
        parts = row[1].split(",")
        return sorted(zip(parts[0::2], parts[1::2], strict=True))
    return zip(row[1], row[2], strict=True)


def _utc_text(value: str) -> datetime:
    """SQLite's stored UTC text -> aware datetime (``+00:00`` appended: several times
    faster than ``.replace(tzinfo=UTC)``)."""
    return datetime.fromisoformat(value + "+00:00")


async def free_windows(
    session: AsyncSession,
    by: str,
    target: int,
    start: datetime,
    end: datetime,
    duration: timedelta,
) -> dict[int, list[dict[str, datetime]]]:
    """``{device id: free windows}`` of the devices (``by`` device or type ``target``)
    holding a slot in ``[start, end)``; a device absent from the result is free throughout.

    One Core query returns a row per device with the times of its slots (no ORM loading, no
    per-row type decorator, few Python objects for the garbage collector to track); the
    gaps are found in one pass. On SQLite each distinct stored text is parsed once
    (bookings mostly share round times). Gaps computed in SQL (``MAX() OVER``/``LAG()``)
    measured slower: SQLite evaluates those window functions slower than this index scan,
    and the result is no smaller.
    """
    dialect = _dialect(session)
    rows = await _core(session, _held(dialect, by), {"target": target, "lo": start, "hi": end})
    memo: dict[Any, datetime] = {}

    def parse(value: str) -> datetime:
        found = memo[value] = _utc_text(value)
        return found

    sqlite = dialect == "sqlite"
    out: dict[int, list[dict[str, datetime]]] = {}
    for row in rows:
        free: list[dict[str, datetime]] = []
        cursor = start
        for s_raw, e_raw in _slot_times(dialect, row):
            if sqlite:
                s = memo.get(s_raw) or parse(s_raw)
                e = memo.get(e_raw) or parse(e_raw)
            else:
                s, e = s_raw, e_raw
            if s > cursor and s - cursor >= duration:
                free.append({"start": cursor, "end": s})
            if e > cursor:
                cursor = e
        if end - cursor >= duration:
            free.append({"start": cursor, "end": end})
        out[row[0]] = free
    return out


async def availability(
    session: AsyncSession,
    *,
    device_id: int | None,
    device_type_id: int | None,
    start: datetime,
    end: datetime,
    duration: timedelta,
) -> list[dict[str, Any]]:
    """For each device: the free slots within ``[start, end)`` at least ``duration`` long.

    Two queries whatever the number of devices: the devices (by name) and their holding
    slots in the window (see ``free_windows``).
    """
    check_query_window(start, end)
    by, target, listed = await _devices_of(session, device_id, device_type_id)
    if not listed:
        return []
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    gaps = await free_windows(session, by, target, start, end, duration)
    whole = end - start >= duration
    out = []
    for d, name in listed:
        free = gaps.get(d)
        if free is None:  # nothing held in the window
            free = [{"start": start, "end": end}] if whole else []
        out.append({"device_id": d, "name": name, "free": free})
    return out


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
    _, _, devices = await _devices_of(session, None, device_type_id)
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
