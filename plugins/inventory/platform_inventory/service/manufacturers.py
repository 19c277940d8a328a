"""Manufacturers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict
from platform_inventory.models import DeviceType, Manufacturer
from platform_inventory.service.common import (
    Audit,
    _delete_recorded,
    _flush,
    _get,
    _page_by_id,
    _publish_object,
    _read,
    record,
    snapshot,
)

# -- manufacturers ----------------------------------------------------------------------


async def list_manufacturers(
    session: AsyncSession, *, q: str | None, cursor: str | None, limit: int
) -> tuple[list[Manufacturer], str | None]:
    """A page of manufacturers, by id; ``q`` filters on a name substring."""
    stmt = select(Manufacturer)
    if q:
        stmt = stmt.where(Manufacturer.name.icontains(q, autoescape=True))
    return await _page_by_id(session, stmt, Manufacturer, cursor, limit)


async def get_manufacturer(session: AsyncSession, obj_id: int) -> Manufacturer:
    """One manufacturer, or ``NotFound``."""
    return await _get(session, Manufacturer, obj_id, "manufacturer")


async def read_manufacturer(session: AsyncSession, obj_id: int) -> Row[Any]:
    """One manufacturer as a read-only row for a response, or ``NotFound``."""
    return await _read(session, Manufacturer, obj_id, "manufacturer")


async def create_manufacturer(session: AsyncSession, name: str, audit: Audit) -> Manufacturer:
    """Create a manufacturer; ``Conflict`` on a duplicate name."""
    obj = Manufacturer(name=name)
    session.add(obj)
    await _flush(session, f"manufacturer {name!r} already exists")
    record(session, audit, "manufacturer", obj.id, "create", None, snapshot(obj))
    _publish_object(session, audit, "manufacturer", "created", obj.id, obj.name)
    return obj


async def update_manufacturer(
    session: AsyncSession, obj_id: int, changes: dict[str, Any], audit: Audit
) -> Manufacturer:
    """Rename a manufacturer; ``Conflict`` on a duplicate name."""
    obj = await get_manufacturer(session, obj_id)
    before = snapshot(obj)
    if changes.get("name"):
        obj.name = changes["name"]
    await _flush(session, f"manufacturer {obj.name!r} already exists")
    record(session, audit, "manufacturer", obj.id, "update", before, snapshot(obj))
    _publish_object(session, audit, "manufacturer", "updated", obj.id, obj.name)
    return obj


async def delete_manufacturer(session: AsyncSession, obj_id: int, audit: Audit) -> None:
    """Delete a manufacturer; ``Conflict`` while device types use it."""
    obj = await get_manufacturer(session, obj_id)
    used = await session.scalar(
        select(func.count()).select_from(DeviceType).where(DeviceType.manufacturer_id == obj_id)
    )
    if used:
        raise Conflict(f"manufacturer {obj.name!r} has {used} device type(s); delete them first")
    await _delete_recorded(session, audit, "manufacturer", obj_id, obj, obj.name)
