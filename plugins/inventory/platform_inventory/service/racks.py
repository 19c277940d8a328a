"""Racks and the rack space devices occupy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, invalid
from platform_inventory.models import Device, DeviceType, Location, Rack, RackUnit
from platform_inventory.service.common import (
    Audit,
    _delete_recorded,
    _flush,
    _get,
    _page_by_id,
    _publish_object,
    _read,
    _ref,
    _update_recorded,
    record,
    snapshot,
)
from platform_inventory.service.locations import descendants

# -- racks ------------------------------------------------------------------------------


async def list_racks(
    session: AsyncSession,
    *,
    q: str | None,
    location_id: int | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Rack], str | None]:
    """A page of racks, by id; ``location_id`` includes the locations below it."""
    stmt = select(Rack)
    if q:
        stmt = stmt.where(Rack.name.icontains(q, autoescape=True))
    if location_id is not None:
        stmt = stmt.where(Rack.location_id.in_(descendants(location_id)))
    return await _page_by_id(session, stmt, Rack, cursor, limit)


async def get_rack(session: AsyncSession, obj_id: int) -> Rack:
    """One rack, or ``NotFound``."""
    return await _get(session, Rack, obj_id, "rack")


async def read_rack(session: AsyncSession, obj_id: int) -> Row[Any]:
    """One rack as a read-only row for a response, or ``NotFound``."""
    return await _read(session, Rack, obj_id, "rack")


async def create_rack(session: AsyncSession, data: dict[str, Any], audit: Audit) -> Rack:
    """Create a rack; ``Conflict`` on a duplicate name in the location."""
    await _ref(session, Location, data["location_id"], "location_id", "location")
    obj = Rack(**data)
    session.add(obj)
    await _flush(session, f"rack {obj.name!r} already exists in this location")
    record(session, audit, "rack", obj.id, "create", None, snapshot(obj))
    _publish_object(session, audit, "rack", "created", obj.id, obj.name)
    return obj


async def update_rack(
    session: AsyncSession, obj_id: int, changes: dict[str, Any], audit: Audit
) -> Rack:
    """Rename or resize a rack; shrinking below an occupied unit is refused (409)."""
    obj = await get_rack(session, obj_id)
    before = snapshot(obj)
    height = changes.get("u_height")
    if height is not None:
        top = await session.scalar(
            select(func.max(RackUnit.unit)).where(RackUnit.rack_id == obj_id)
        )
        if top and top > height:
            raise Conflict(f"rack {obj.name!r} has unit {top} occupied; it cannot be {height}U")
    await _update_recorded(
        session,
        audit,
        "rack",
        obj,
        before,
        changes,
        "name",
        "rack {label!r} already exists in this location",
    )
    return obj


async def delete_rack(session: AsyncSession, obj_id: int, audit: Audit) -> None:
    """Delete an empty rack; ``Conflict`` while devices are in it."""
    obj = await get_rack(session, obj_id)
    used = await session.scalar(
        select(func.count()).select_from(Device).where(Device.rack_id == obj_id)
    )
    if used:
        raise Conflict(f"rack {obj.name!r} still holds {used} device(s)")
    await _delete_recorded(session, audit, "rack", obj_id, obj, obj.name)


# -- rack space -------------------------------------------------------------------------


def units_needed(
    dtype: DeviceType, rack: Rack, position: int, face: str | None
) -> list[tuple[str, int]]:
    """The ``(face, unit)`` pairs a device of ``dtype`` at ``position`` occupies.

    A full-depth device occupies its units on both faces; a half-depth one only on its face
    (``front`` by default). ``ValidationFailed`` naming ``position`` when it overhangs the rack.
    """
    top = position + dtype.u_height - 1
    if dtype.u_height and top > rack.u_height:
        raise invalid(
            "position",
            f"units {position}-{top} are beyond rack {rack.name!r} ({rack.u_height}U)",
        )
    faces = ("front", "rear") if dtype.full_depth else (face or "front",)
    return [(f, u) for f in faces for u in range(position, top + 1)]


def describe_units(units: Iterable[tuple[str, int]]) -> str:
    """``"5, 6 (front), 5, 6 (rear)"``: occupied units grouped by face."""
    by_face: dict[str, list[int]] = {}
    for face, unit in sorted(units):
        by_face.setdefault(face, []).append(unit)
    return ", ".join(f"{', '.join(map(str, us))} ({face})" for face, us in by_face.items())


async def _place(
    session: AsyncSession, device: Device, dtype: DeviceType, rack: Rack | None
) -> None:
    await session.execute(delete(RackUnit).where(RackUnit.device_id == device.id))
    if rack is None or device.position is None:
        return
    wanted = units_needed(dtype, rack, device.position, device.face)
    if not wanted:
        return
    taken = (
        await session.execute(
            select(RackUnit.face, RackUnit.unit, Device.id, Device.name)
            .join(Device, Device.id == RackUnit.device_id)
            .where(
                RackUnit.rack_id == rack.id,
                tuple_(RackUnit.face, RackUnit.unit).in_(wanted),
            )
        )
    ).all()
    if taken:
        occupants = sorted({f"{row.name!r} (id {row.id})" for row in taken})
        units = describe_units((row.face, row.unit) for row in taken)
        message = f"units {units} of rack {rack.name!r} are occupied by {', '.join(occupants)}"
        raise Conflict(
            message,
            errors=[{"field": "position", "message": message}],
            occupied=[{"face": r.face, "unit": r.unit, "device_id": r.id} for r in taken],
        )
    await session.execute(
        insert(RackUnit),
        [{"rack_id": rack.id, "face": f, "unit": u, "device_id": device.id} for f, u in wanted],
    )
