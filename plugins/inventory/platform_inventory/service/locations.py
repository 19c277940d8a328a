"""Locations (a tree)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, invalid
from platform_inventory.models import Device, Location, Rack
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

# -- locations --------------------------------------------------------------------------


def descendants(location_id: int) -> Select[Any]:
    """A select of the ids of ``location_id`` and every location below it."""
    tree = select(Location.id).where(Location.id == location_id).cte("tree", recursive=True)
    tree = tree.union_all(select(Location.id).where(Location.parent_id == tree.c.id))
    return select(tree.c.id)


async def list_locations(
    session: AsyncSession,
    *,
    q: str | None,
    parent_id: int | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Location], str | None]:
    """A page of locations, by id; ``parent_id`` lists one node's children."""
    stmt = select(Location)
    if q:
        stmt = stmt.where(Location.name.icontains(q, autoescape=True))
    if parent_id is not None:
        stmt = stmt.where(Location.parent_id == parent_id)
    return await _page_by_id(session, stmt, Location, cursor, limit)


async def get_location(session: AsyncSession, obj_id: int) -> Location:
    """One location, or ``NotFound``."""
    return await _get(session, Location, obj_id, "location")


async def read_location(session: AsyncSession, obj_id: int) -> Row[Any]:
    """One location as a read-only row for a response, or ``NotFound``."""
    return await _read(session, Location, obj_id, "location")


async def create_location(session: AsyncSession, data: dict[str, Any], audit: Audit) -> Location:
    """Create a location under ``parent_id`` (or a root); ``Conflict`` on a duplicate name."""
    if data.get("parent_id") is not None:
        await _ref(session, Location, data["parent_id"], "parent_id", "location")
    obj = Location(**data)
    session.add(obj)
    await _flush(session, f"location {obj.name!r} already exists")
    record(session, audit, "location", obj.id, "create", None, snapshot(obj))
    _publish_object(session, audit, "location", "created", obj.id, obj.name)
    return obj


async def update_location(
    session: AsyncSession, obj_id: int, changes: dict[str, Any], audit: Audit
) -> Location:
    """Rename or move a location; moving it below itself is refused (422 ``parent_id``)."""
    obj = await get_location(session, obj_id)
    before = snapshot(obj)
    if "parent_id" in changes:
        parent = changes.pop("parent_id")
        if parent is not None:
            await _ref(session, Location, parent, "parent_id", "location")
            below = set((await session.execute(descendants(obj_id))).scalars())
            if parent in below:
                raise invalid("parent_id", "a location cannot be moved below itself")
        obj.parent_id = parent
    await _update_recorded(
        session,
        audit,
        "location",
        obj,
        before,
        changes,
        "name",
        "location {label!r} already exists",
    )
    return obj


async def delete_location(session: AsyncSession, obj_id: int, audit: Audit) -> None:
    """Delete a location; ``Conflict`` while it has children, racks or devices."""
    obj = await get_location(session, obj_id)
    for model, column, what in (
        (Location, Location.parent_id, "child locations"),
        (Rack, Rack.location_id, "racks"),
        (Device, Device.location_id, "devices"),
    ):
        used = await session.scalar(select(func.count()).select_from(model).where(column == obj_id))
        if used:
            raise Conflict(f"location {obj.name!r} still has {used} {what}")
    await _delete_recorded(session, audit, "location", obj_id, obj, obj.name)
