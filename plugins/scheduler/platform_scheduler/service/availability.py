"""Availability of devices and recommendations of free slots."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import String, bindparam, func, select, type_coerce
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from platform_core import invalid
from platform_scheduler.models import HOLDING, Slot
from platform_scheduler.service.common import HORIZON, MAX_WINDOW, SLOTS, _core, _dialect
from platform_scheduler.service.devices import device_info, inventory_devices

# -- availability and recommendations ---------------------------------------------------


def check_query_window(start: datetime, end: datetime) -> None:
    """422 unless ``start < end`` and the window is at most 31 days."""
    if end <= start:
        raise invalid("end", "must be after start")
    if end - start > MAX_WINDOW:
        raise invalid("end", "the window is at most 31 days")


@functools.cache
def _bookable(by: str) -> Any:
    """``id``, ``name`` of the devices that are not retired, with ``id`` (``by="device"``)
    or ``device_type_id`` (``by="type"``) equal to ``:target``. Built once per kind."""
    d = inventory_devices().c
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
