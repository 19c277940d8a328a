"""Business logic of the inventory plugin (no HTTP here).

Functions take an open session and raise the platform's domain errors; the caller owns the
transaction. Every create, update and delete records a ``Change`` (before/after snapshots,
actor, request id) and publishes an ``inventory.<type>.<verb>`` event in the same session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, delete, func, insert, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    NotFound,
    PlatformContext,
    ValidationFailed,
    decode_cursor,
    encode_cursor,
    fetch_page,
    invalid,
    lock_row,
    publish,
)
from platform_inventory import events
from platform_inventory.models import (
    CableEnd,
    Change,
    Connection,
    CustomFieldValue,
    Device,
    DeviceTag,
    DeviceType,
    InventoryBase,
    Location,
    Manufacturer,
    Port,
    Rack,
    RackUnit,
)

T = TypeVar("T", bound=InventoryBase)

SORT_KEYS = {"name": Device.name, "created_at": Device.created_at, "updated_at": Device.updated_at}
SORT_KEYS["id"] = Device.id

Veto = Callable[[AsyncSession, dict[str, Any], str], Awaitable[list[tuple[str, str]]]]
"""Asks the ``inventory_device_delete_veto`` implementations: ``[(plugin, reason), ...]``."""


async def _no_veto(
    _session: AsyncSession, _device: dict[str, Any], _action: str
) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class Audit:
    """Who makes a change and under which request id (shared by a whole import)."""

    actor: str | None = None
    request_id: str | None = None


def hook_veto(ctx: PlatformContext) -> Veto:
    """A ``Veto`` asking every ``inventory_device_delete_veto`` implementation.

    Through ``ctx.plugins.vetoes`` (the platform's one way to call a veto hook): pluggy's
    order, each implementation given the caller's session; one that raises refuses.
    """

    async def veto(
        session: AsyncSession, device: dict[str, Any], action: str
    ) -> list[tuple[str, str]]:
        found = await ctx.plugins.vetoes(
            "inventory_device_delete_veto", device=device, action=action, ctx=ctx, session=session
        )
        return [(v.plugin, v.reason) for v in found]

    return veto


# -- snapshots, history, events ---------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def snapshot(obj: InventoryBase) -> dict[str, Any]:
    """The object's columns as a JSON-ready dict (the form stored in the change history)."""
    return {c.key: _jsonable(getattr(obj, c.key)) for c in obj.__table__.columns}


def record(
    session: AsyncSession,
    audit: Audit,
    object_type: str,
    object_id: int,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Add one change-history row to the session."""
    session.add(
        Change(
            object_type=object_type,
            object_id=object_id,
            action=action,
            before=before,
            after=after,
            actor=audit.actor,
            request_id=audit.request_id,
        )
    )


def _publish_object(
    session: AsyncSession, audit: Audit, object_type: str, verb: str, obj_id: int, name: str
) -> None:
    publish(
        session,
        name=f"inventory.{object_type}.{verb}",
        payload={"id": obj_id, "name": name},
        actor=audit.actor,
    )


async def _flush(session: AsyncSession, message: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(message) from exc


async def _get(session: AsyncSession, model: type[T], obj_id: int, label: str) -> T:
    obj = await session.get(model, obj_id)
    if obj is None:
        raise NotFound(f"{label} {obj_id} not found")
    return obj


async def _ref(session: AsyncSession, model: type[T], obj_id: int, field: str, label: str) -> T:
    obj = await session.get(model, obj_id)
    if obj is None:
        raise invalid(field, f"{label} {obj_id} does not exist")
    return obj


async def _update_recorded(
    session: AsyncSession,
    audit: Audit,
    kind: str,
    obj: Any,
    before: dict[str, Any],
    changes: dict[str, Any],
    label_attr: str,
    duplicate: str,
) -> None:
    """Apply the non-null ``changes``, then record the update in the history and the events.

    ``duplicate`` is the conflict message (with ``{label}``) when a unique key clashes.
    """
    for key, value in changes.items():
        if value is not None:
            setattr(obj, key, value)
    label = getattr(obj, label_attr)
    await _flush(session, duplicate.format(label=label))
    record(session, audit, kind, obj.id, "update", before, snapshot(obj))
    _publish_object(session, audit, kind, "updated", obj.id, label)


async def _delete_recorded(
    session: AsyncSession, audit: Audit, kind: str, obj_id: int, obj: Any, label: str
) -> None:
    """Delete ``obj`` and record the deletion in the history and the events."""
    before = snapshot(obj)
    await session.delete(obj)
    await _flush(session, f"{kind.replace('_', ' ')} {label!r} is in use")
    record(session, audit, kind, obj_id, "delete", before, None)
    _publish_object(session, audit, kind, "deleted", obj_id, label)


# -- cursors ----------------------------------------------------------------------------


async def _page_by_id(
    session: AsyncSession, stmt: Select[Any], model: Any, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """A page in id order; the cursor is opaque (``{"i": last id}``), like the devices' one."""
    after = model.id > decode_cursor(cursor, required=("i",))["i"] if cursor else None
    return await fetch_page(
        session,
        stmt,
        order_by=[model.id],
        limit=limit,
        after=after,
        key=lambda row: encode_cursor({"i": row.id}),
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


# -- device types and custom fields -----------------------------------------------------


def check_custom_field_defs(defs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validated custom field definitions (``ValidationFailed`` naming each bad one)."""
    errors = []
    seen: set[str] = set()
    clean = []
    for i, d in enumerate(defs):
        field = f"custom_fields.{i}"
        name, kind = d["name"], d["type"]
        if name in seen:
            errors.append({"field": f"{field}.name", "message": f"duplicate field {name!r}"})
        seen.add(name)
        choices = d.get("choices")
        if kind == "enum" and not choices:
            errors.append({"field": f"{field}.choices", "message": "an enum needs choices"})
        if kind != "enum" and choices:
            errors.append({"field": f"{field}.choices", "message": "only enums have choices"})
        item = {
            "name": name,
            "type": kind,
            "required": bool(d.get("required")),
            "default": d.get("default"),
            "choices": list(choices) if choices else None,
        }
        if item["default"] is not None and not (kind == "enum" and not choices):
            try:
                item["default"] = coerce_value(item, item["default"], from_text=False)
            except ValueError as exc:
                errors.append({"field": f"{field}.default", "message": str(exc)})
        clean.append(item)
    if errors:
        raise ValidationFailed(errors[0]["field"] + ": " + errors[0]["message"], errors=errors)
    return clean


_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def coerce_value(definition: dict[str, Any], value: Any, *, from_text: bool) -> Any:
    """``value`` as the definition's type (JSON form: dates as ISO strings); ValueError if not.

    ``from_text`` accepts the text forms of a CSV cell (``"42"``, ``"true"``).
    """
    kind = definition["type"]
    if kind in ("string", "enum"):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if len(value) > 200:
            raise ValueError("at most 200 characters")
        if kind == "enum" and value not in (definition.get("choices") or []):
            raise ValueError(f"must be one of {', '.join(definition['choices'] or [])}")
        return value
    if kind == "int":
        if from_text and isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError("must be an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if abs(value) > 2**53:
            raise ValueError("out of range")
        return value
    if kind == "bool":
        if from_text and isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE | _FALSE:
                return low in _TRUE
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValueError("must be a date (YYYY-MM-DD)") from None


def text_value(value: Any) -> str:
    """The indexed text form of a custom field value (what ``cf_<name>=`` filters compare)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def validate_custom_fields(
    defs: Sequence[dict[str, Any]],
    values: dict[str, Any],
    *,
    from_text: bool = False,
    prefix: str = "custom_fields.",
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """``(clean values, errors)`` of ``values`` against ``defs``: types, required, defaults."""
    by_name = {d["name"]: d for d in defs}
    errors = []
    clean: dict[str, Any] = {}
    for name in values:
        if name not in by_name:
            errors.append({"field": f"{prefix}{name}", "message": "unknown custom field"})
    for d in defs:
        name = d["name"]
        value = values.get(name)
        if value is None or (from_text and value == ""):
            if d.get("default") is not None:
                clean[name] = d["default"]
            elif d.get("required"):
                errors.append({"field": f"{prefix}{name}", "message": "required"})
            continue
        try:
            clean[name] = coerce_value(d, value, from_text=from_text)
        except ValueError as exc:
            errors.append({"field": f"{prefix}{name}", "message": str(exc)})
    return clean, errors


async def list_device_types(
    session: AsyncSession,
    *,
    q: str | None,
    manufacturer_id: int | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[DeviceType], str | None]:
    """A page of device types, by id."""
    stmt = select(DeviceType)
    if q:
        stmt = stmt.where(DeviceType.model.icontains(q, autoescape=True))
    if manufacturer_id is not None:
        stmt = stmt.where(DeviceType.manufacturer_id == manufacturer_id)
    return await _page_by_id(session, stmt, DeviceType, cursor, limit)


async def get_device_type(session: AsyncSession, obj_id: int) -> DeviceType:
    """One device type, or ``NotFound``."""
    return await _get(session, DeviceType, obj_id, "device type")


async def create_device_type(
    session: AsyncSession, data: dict[str, Any], audit: Audit
) -> DeviceType:
    """Create a device type; ``Conflict`` on a duplicate model of the same manufacturer."""
    await _ref(session, Manufacturer, data["manufacturer_id"], "manufacturer_id", "manufacturer")
    data = dict(data)
    data["custom_fields"] = check_custom_field_defs(data.get("custom_fields") or [])
    data["port_names"] = _check_port_names(data.get("port_names") or [], "port_names")
    obj = DeviceType(**data)
    session.add(obj)
    await _flush(session, f"device type {obj.model!r} already exists for this manufacturer")
    record(session, audit, "device_type", obj.id, "create", None, snapshot(obj))
    _publish_object(session, audit, "device_type", "created", obj.id, obj.model)
    return obj


def _check_port_names(names: Iterable[str], field: str) -> list[str]:
    names = list(names)
    for i, name in enumerate(names):
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            raise invalid(f"{field}.{i}", "a port name has 1 to 64 characters")
    if len(set(names)) != len(names):
        raise invalid(field, "duplicate port names")
    return names


async def update_device_type(
    session: AsyncSession, obj_id: int, changes: dict[str, Any], audit: Audit
) -> DeviceType:
    """Change a device type; existing devices keep their units until they are moved."""
    obj = await get_device_type(session, obj_id)
    before = snapshot(obj)
    if "custom_fields" in changes and changes["custom_fields"] is not None:
        changes["custom_fields"] = check_custom_field_defs(changes["custom_fields"])
    if changes.get("port_names") is not None:
        changes["port_names"] = _check_port_names(changes["port_names"], "port_names")
    await _update_recorded(
        session,
        audit,
        "device_type",
        obj,
        before,
        changes,
        "model",
        "device type {label!r} already exists for this manufacturer",
    )
    return obj


async def delete_device_type(session: AsyncSession, obj_id: int, audit: Audit) -> None:
    """Delete a device type; ``Conflict`` while devices use it."""
    obj = await get_device_type(session, obj_id)
    used = await session.scalar(
        select(func.count()).select_from(Device).where(Device.device_type_id == obj_id)
    )
    if used:
        raise Conflict(f"device type {obj.model!r} is used by {used} device(s)")
    await _delete_recorded(session, audit, "device_type", obj_id, obj, obj.model)


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


# -- devices ----------------------------------------------------------------------------


@dataclass
class DeviceFilters:
    """The device list's filters (every one optional)."""

    q: str | None = None
    status: str | None = None
    device_type_id: int | None = None
    location_id: int | None = None
    rack_id: int | None = None
    tag: str | None = None
    custom_fields: dict[str, str] | None = None


def parse_sort(sort: str) -> tuple[str, bool]:
    """``(key, descending)`` of ``name``, ``-name``, ``created_at``...; 422 naming ``sort``."""
    key = sort.removeprefix("-")
    if key not in SORT_KEYS:
        raise invalid("sort", f"sort by one of {', '.join(SORT_KEYS)} (prefix - to reverse)")
    return key, sort.startswith("-")


def _cursor_value(key: str, device: Device) -> Any:
    value = getattr(device, key)
    return value.isoformat() if isinstance(value, datetime) else value


def _decode_value(key: str, value: Any) -> Any:
    if key in ("created_at", "updated_at"):
        if not isinstance(value, str):
            raise ValueError("bad timestamp")
        return datetime.fromisoformat(value)
    if key == "id" and not isinstance(value, int):
        raise ValueError("bad id")
    if key == "name" and not isinstance(value, str):
        raise ValueError("bad name")
    return value


def filtered_devices(filters: DeviceFilters) -> Select[Any]:
    """A select of the devices matching ``filters`` (unordered)."""
    stmt = select(Device)
    if filters.q:
        stmt = stmt.where(
            or_(
                Device.name.icontains(filters.q, autoescape=True),
                Device.serial.icontains(filters.q, autoescape=True),
                Device.asset_tag.icontains(filters.q, autoescape=True),
            )
        )
    if filters.status:
        stmt = stmt.where(Device.status == filters.status)
    if filters.device_type_id is not None:
        stmt = stmt.where(Device.device_type_id == filters.device_type_id)
    if filters.location_id is not None:
        stmt = stmt.where(Device.location_id.in_(descendants(filters.location_id)))
    if filters.rack_id is not None:
        stmt = stmt.where(Device.rack_id == filters.rack_id)
    if filters.tag:
        stmt = stmt.where(
            Device.id.in_(select(DeviceTag.device_id).where(DeviceTag.tag == filters.tag))
        )
    for name, value in (filters.custom_fields or {}).items():
        stmt = stmt.where(
            Device.id.in_(
                select(CustomFieldValue.device_id).where(
                    CustomFieldValue.name == name, CustomFieldValue.value == value
                )
            )
        )
    return stmt


async def list_devices(
    session: AsyncSession,
    filters: DeviceFilters,
    *,
    sort: str = "name",
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Device], str | None]:
    """A page of devices in ``sort`` order and the cursor of the next page.

    Keyset pagination on ``(sort key, id)``: a page never repeats or skips a device that
    existed when the first page was read, whatever is inserted or deleted meanwhile.
    """
    key, desc = parse_sort(sort)
    column = SORT_KEYS[key]
    after = None
    if cursor:
        payload = decode_cursor(cursor, required=("s", "v", "i"))
        if payload.get("s") != sort:
            raise invalid("cursor", f"this cursor belongs to another sort ({payload.get('s')})")
        try:
            value = _decode_value(key, payload.get("v"))
            if not isinstance(payload["i"], int):
                raise TypeError("bad id")
        except (ValueError, TypeError) as exc:
            raise invalid("cursor", "invalid cursor") from exc
        if key == "id":
            after = Device.id < value if desc else Device.id > value
        elif desc:
            after = tuple_(column, Device.id) < tuple_(value, payload["i"])
        else:
            after = tuple_(column, Device.id) > tuple_(value, payload["i"])
    if key == "id":
        order: list[Any] = [Device.id.desc() if desc else Device.id]
    else:
        order = [column.desc(), Device.id.desc()] if desc else [column, Device.id]
    return await fetch_page(
        session,
        filtered_devices(filters),
        order_by=order,
        limit=limit,
        after=after,
        key=lambda last: encode_cursor({"s": sort, "v": _cursor_value(key, last), "i": last.id}),
    )


async def get_device(session: AsyncSession, obj_id: int) -> Device:
    """One device, or ``NotFound``."""
    return await _get(session, Device, obj_id, "device")


async def _locked_device(session: AsyncSession, obj_id: int) -> Device:
    """One device, its row locked until the commit (a change starts from its current state:
    two concurrent updates never overwrite each other, a retirement is announced once)."""
    device: Device | None = await lock_row(session, Device, obj_id)
    if device is None:
        raise NotFound(f"device {obj_id} not found")
    return device


async def _check_unique(
    session: AsyncSession, device_id: int | None, name: str, asset_tag: str | None
) -> None:
    other = await session.scalar(select(Device.id).where(Device.name == name))
    if other is not None and other != device_id:
        raise Conflict(
            f"a device named {name!r} already exists (id {other})",
            errors=[{"field": "name", "message": "already exists"}],
        )
    if asset_tag:
        other = await session.scalar(select(Device.id).where(Device.asset_tag == asset_tag))
        if other is not None and other != device_id:
            raise Conflict(
                f"asset tag {asset_tag!r} is already used by device {other}",
                errors=[{"field": "asset_tag", "message": "already used"}],
            )


async def _write_indexes(session: AsyncSession, device: Device) -> None:
    await session.execute(delete(DeviceTag).where(DeviceTag.device_id == device.id))
    await session.execute(delete(CustomFieldValue).where(CustomFieldValue.device_id == device.id))
    if device.tags:
        await session.execute(
            insert(DeviceTag), [{"device_id": device.id, "tag": t} for t in device.tags]
        )
    if device.custom_fields:
        await session.execute(
            insert(CustomFieldValue),
            [
                {"device_id": device.id, "name": k, "value": text_value(v)[:200]}
                for k, v in device.custom_fields.items()
            ],
        )


async def _resolve_placement(
    session: AsyncSession, values: dict[str, Any]
) -> tuple[Rack | None, int | None]:
    rack = None
    location_id = values.get("location_id")
    if location_id is not None:
        await _ref(session, Location, location_id, "location_id", "location")
    if values.get("rack_id") is not None:
        rack = await _ref(session, Rack, values["rack_id"], "rack_id", "rack")
        if location_id is None:
            location_id = rack.location_id
        elif location_id != rack.location_id:
            raise invalid("location_id", f"rack {rack.name!r} is in location {rack.location_id}")
    elif values.get("position") is not None:
        raise invalid("position", "a position needs a rack_id")
    return rack, location_id


def _clean_tags(tags: Iterable[str]) -> list[str]:
    clean = sorted({t.strip() for t in tags if t and t.strip()})
    for t in clean:
        if len(t) > 50:
            raise invalid("tags", "a tag has at most 50 characters")
    return clean


async def create_device(session: AsyncSession, data: dict[str, Any], audit: Audit) -> Device:
    """Create a device with the ports of its type, placed in its rack.

    ``ValidationFailed`` naming the field (``custom_fields.<name>``, ``position``...);
    ``Conflict`` for a duplicate name, serial or asset tag, or occupied rack units (naming
    the units and their occupant).
    """
    dtype = await _ref(session, DeviceType, data["device_type_id"], "device_type_id", "device type")
    values, errors = validate_custom_fields(dtype.custom_fields, data.get("custom_fields") or {})
    if errors:
        raise ValidationFailed(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
    rack, location_id = await _resolve_placement(session, data)
    await _check_unique(session, None, data["name"], data.get("asset_tag"))
    device = Device(
        name=data["name"],
        device_type_id=dtype.id,
        manufacturer_id=dtype.manufacturer_id,
        status=data.get("status") or "active",
        serial=data.get("serial"),
        asset_tag=data.get("asset_tag"),
        location_id=location_id,
        rack_id=rack.id if rack else None,
        position=data.get("position"),
        face=data.get("face") or ("front" if data.get("position") else None),
        tags=_clean_tags(data.get("tags") or []),
        custom_fields=values,
    )
    session.add(device)
    await _flush(session, f"serial {device.serial!r} already exists for this manufacturer")
    await _place(session, device, dtype, rack)
    await _write_indexes(session, device)
    if dtype.port_names:
        await session.execute(
            insert(Port), [{"device_id": device.id, "name": n} for n in dtype.port_names]
        )
    await _flush(session, f"device {device.name!r} conflicts with another device")
    record(session, audit, "device", device.id, "create", None, snapshot(device))
    publish(
        session,
        events.DeviceCreated(device_id=device.id, name=device.name, status=device.status),
        actor=audit.actor,
    )
    return device


async def _refuse_if_vetoed(session: AsyncSession, veto: Veto, device: Device, action: str) -> None:
    # Lock the row first (PostgreSQL): the vetoing plugins read through this session, in
    # this transaction, and a concurrent change of the device waits for it.
    await session.refresh(device, with_for_update=True)
    reasons = await veto(session, snapshot(device), action)
    if reasons:
        plugin, reason = reasons[0]
        raise Conflict(
            f"plugin {plugin!r} vetoes {action} of device {device.name!r}: {reason}",
            vetoes=[{"plugin": p, "reason": r} for p, r in reasons],
        )


async def update_device(
    session: AsyncSession,
    obj_id: int,
    changes: dict[str, Any],
    audit: Audit,
    *,
    veto: Veto = _no_veto,
) -> Device:
    """Change a device (only the keys present in ``changes``; ``None`` clears).

    Custom fields are merged (a ``None`` value removes one) and validated against the
    (new) type. Retiring a device asks the veto hook first (409 naming the plugin).
    """
    device = await _locked_device(session, obj_id)
    before = snapshot(device)
    for key in ("name", "device_type_id", "status"):
        if key in changes and changes[key] is None:
            raise invalid(key, "cannot be null")
    if changes.get("status") == "retired" and device.status != "retired":
        await _refuse_if_vetoed(session, veto, device, "retire")
    type_id = changes.get("device_type_id", device.device_type_id)
    dtype = await _ref(session, DeviceType, type_id, "device_type_id", "device type")
    merged = dict(device.custom_fields or {})
    for key, value in (changes.get("custom_fields") or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    values, errors = validate_custom_fields(dtype.custom_fields, merged)
    if errors:
        raise ValidationFailed(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
    placement = {
        k: changes.get(k, getattr(device, k)) for k in ("location_id", "rack_id", "position")
    }
    if "rack_id" in changes and "location_id" not in changes:
        placement["location_id"] = None
    rack, location_id = await _resolve_placement(session, placement)
    name = changes.get("name", device.name)
    asset_tag = changes.get("asset_tag", device.asset_tag)
    await _check_unique(session, device.id, name, asset_tag)
    for key in ("name", "status", "serial", "asset_tag", "position", "face"):
        if key in changes:
            setattr(device, key, changes[key])
    if device.position is not None and device.face is None:
        device.face = "front"
    device.device_type_id, device.manufacturer_id = dtype.id, dtype.manufacturer_id
    device.rack_id, device.location_id = (rack.id if rack else None), location_id
    if changes.get("tags") is not None:
        device.tags = _clean_tags(changes["tags"])
    device.custom_fields = values
    await _flush(session, f"serial {device.serial!r} already exists for this manufacturer")
    await _place(session, device, dtype, rack)
    await _write_indexes(session, device)
    await _flush(session, f"device {device.name!r} conflicts with another device")
    after = snapshot(device)
    changed = sorted(k for k in after if after[k] != before[k] and k != "updated_at")
    record(session, audit, "device", device.id, "update", before, after)
    publish(
        session,
        events.DeviceUpdated(
            device_id=device.id, name=device.name, status=device.status, changed=changed
        ),
        actor=audit.actor,
    )
    if before["status"] != "retired" and device.status == "retired":
        publish(session, events.DeviceRetired(device_id=device.id, name=device.name))
    return device


async def delete_device(
    session: AsyncSession, obj_id: int, audit: Audit, *, veto: Veto = _no_veto
) -> None:
    """Delete a device, its ports and their connections; 409 when a plugin vetoes."""
    device = await _locked_device(session, obj_id)
    await _refuse_if_vetoed(session, veto, device, "delete")
    conn_ids = (
        await session.execute(
            select(CableEnd.connection_id)
            .join(Port, Port.id == CableEnd.port_id)
            .where(Port.device_id == obj_id)
        )
    ).scalars()
    for conn_id in sorted(set(conn_ids)):
        await delete_connection(session, conn_id, audit)
    before = snapshot(device)
    await session.delete(device)
    await session.flush()
    record(session, audit, "device", obj_id, "delete", before, None)
    publish(session, events.DeviceDeleted(device_id=obj_id, name=before["name"]), actor=audit.actor)


# -- ports and connections --------------------------------------------------------------


async def list_ports(session: AsyncSession, device_id: int) -> list[tuple[Port, int | None]]:
    """The device's ports by name, each with its connection id (or None)."""
    await get_device(session, device_id)
    rows = await session.execute(
        select(Port, CableEnd.connection_id)
        .outerjoin(CableEnd, CableEnd.port_id == Port.id)
        .where(Port.device_id == device_id)
        .order_by(Port.name)
    )
    return [(port, conn) for port, conn in rows.all()]


async def create_port(session: AsyncSession, device_id: int, name: str, audit: Audit) -> Port:
    """Add a port to a device; ``Conflict`` when the device has a port of that name."""
    device = await get_device(session, device_id)
    port = Port(device_id=device_id, name=name)
    session.add(port)
    await _flush(session, f"device {device.name!r} already has a port {name!r}")
    record(session, audit, "port", port.id, "create", None, snapshot(port))
    _publish_object(session, audit, "port", "created", port.id, name)
    return port


async def delete_port(session: AsyncSession, port_id: int, audit: Audit) -> None:
    """Delete a port and its connection."""
    port = await _get(session, Port, port_id, "port")
    conn = await session.scalar(select(CableEnd.connection_id).where(CableEnd.port_id == port_id))
    if conn is not None:
        await delete_connection(session, conn, audit)
    before = snapshot(port)
    await session.delete(port)
    await session.flush()
    record(session, audit, "port", port_id, "delete", before, None)
    _publish_object(session, audit, "port", "deleted", port_id, before["name"])


@dataclass(frozen=True)
class ConnectionView:
    """A connection with its two port ids."""

    id: int
    a_port_id: int
    b_port_id: int
    label: str
    created_at: datetime
    updated_at: datetime


async def _views(session: AsyncSession, conns: Sequence[Connection]) -> list[ConnectionView]:
    ends: dict[tuple[int, str], int] = {}
    if conns:
        rows = await session.execute(
            select(CableEnd).where(CableEnd.connection_id.in_([c.id for c in conns]))
        )
        ends = {(e.connection_id, e.side): e.port_id for e in rows.scalars()}
    return [
        ConnectionView(
            c.id,
            ends.get((c.id, "a"), 0),
            ends.get((c.id, "b"), 0),
            c.label,
            c.created_at,
            c.updated_at,
        )
        for c in conns
    ]


def _connection_snapshot(view: ConnectionView) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in view.__dict__.items()}


async def list_connections(
    session: AsyncSession, *, device_id: int | None, cursor: str | None, limit: int
) -> tuple[list[ConnectionView], str | None]:
    """A page of connections by id; ``device_id`` keeps those touching one device."""
    stmt = select(Connection)
    if device_id is not None:
        stmt = stmt.where(
            Connection.id.in_(
                select(CableEnd.connection_id)
                .join(Port, Port.id == CableEnd.port_id)
                .where(Port.device_id == device_id)
            )
        )
    rows, nxt = await _page_by_id(session, stmt, Connection, cursor, limit)
    return await _views(session, rows), nxt


async def get_connection(session: AsyncSession, obj_id: int) -> ConnectionView:
    """One connection, or ``NotFound``."""
    conn = await _get(session, Connection, obj_id, "connection")
    return (await _views(session, [conn]))[0]


async def create_connection(
    session: AsyncSession, a_port_id: int, b_port_id: int, label: str, audit: Audit
) -> ConnectionView:
    """Connect two ports; ``Conflict`` naming the port when either is already connected."""
    if a_port_id == b_port_id:
        raise invalid("b_port_id", "a port cannot be connected to itself")
    for field, port_id in (("a_port_id", a_port_id), ("b_port_id", b_port_id)):
        await _ref(session, Port, port_id, field, "port")
        taken = await session.scalar(
            select(CableEnd.connection_id).where(CableEnd.port_id == port_id)
        )
        if taken is not None:
            raise Conflict(
                f"port {port_id} is already connected (connection {taken})",
                errors=[{"field": field, "message": f"already in connection {taken}"}],
            )
    conn = Connection(label=label)
    session.add(conn)
    await session.flush()
    session.add_all(
        [
            CableEnd(connection_id=conn.id, side="a", port_id=a_port_id),
            CableEnd(connection_id=conn.id, side="b", port_id=b_port_id),
        ]
    )
    await _flush(session, "one of the ports was connected meanwhile")
    view = (await _views(session, [conn]))[0]
    record(session, audit, "connection", conn.id, "create", None, _connection_snapshot(view))
    _publish_object(session, audit, "connection", "created", conn.id, label)
    return view


async def update_connection(
    session: AsyncSession, obj_id: int, label: str, audit: Audit
) -> ConnectionView:
    """Change a connection's label."""
    conn = await _get(session, Connection, obj_id, "connection")
    before = _connection_snapshot((await _views(session, [conn]))[0])
    conn.label = label
    await session.flush()
    view = (await _views(session, [conn]))[0]
    record(session, audit, "connection", obj_id, "update", before, _connection_snapshot(view))
    _publish_object(session, audit, "connection", "updated", obj_id, label)
    return view


async def delete_connection(session: AsyncSession, obj_id: int, audit: Audit) -> None:
    """Remove a connection (both ports become free)."""
    conn = await _get(session, Connection, obj_id, "connection")
    before = _connection_snapshot((await _views(session, [conn]))[0])
    await session.execute(delete(CableEnd).where(CableEnd.connection_id == obj_id))
    await session.delete(conn)
    await session.flush()
    record(session, audit, "connection", obj_id, "delete", before, None)
    _publish_object(session, audit, "connection", "deleted", obj_id, before["label"])


# -- topology ---------------------------------------------------------------------------


async def topology(
    session: AsyncSession, device_id: int, depth: int, max_devices: int
) -> dict[str, Any]:
    """The devices connected to ``device_id`` within ``depth`` hops, breadth first.

    Bounded by ``max_devices`` (``truncated`` says when the bound cut the walk short).
    Each link names the connection and the ports at both ends.
    """
    start = await get_device(session, device_id)
    seen: dict[int, int] = {start.id: 0}
    links: dict[int, dict[str, Any]] = {}
    frontier = [start.id]
    truncated = False
    for level in range(1, depth + 1):
        if not frontier:
            break
        conn_ids = (
            select(CableEnd.connection_id)
            .join(Port, Port.id == CableEnd.port_id)
            .where(Port.device_id.in_(frontier))
        )
        rows = (
            await session.execute(
                select(CableEnd.connection_id, CableEnd.side, Port.device_id, Port.name)
                .join(Port, Port.id == CableEnd.port_id)
                .where(CableEnd.connection_id.in_(conn_ids))
            )
        ).all()
        ends: dict[int, dict[str, tuple[int, str]]] = {}
        for conn_id, side, dev, port in rows:
            ends.setdefault(conn_id, {})[side] = (dev, port)
        nxt = []
        for conn_id, pair in sorted(ends.items()):
            if len(pair) != 2:
                continue
            (a_dev, a_port), (b_dev, b_port) = pair["a"], pair["b"]
            for dev in (a_dev, b_dev):
                if dev not in seen:
                    if len(seen) >= max_devices:
                        truncated = True
                        continue
                    seen[dev] = level
                    nxt.append(dev)
            if a_dev in seen and b_dev in seen:
                links[conn_id] = {
                    "connection_id": conn_id,
                    "a_device_id": a_dev,
                    "a_port": a_port,
                    "b_device_id": b_dev,
                    "b_port": b_port,
                }
        frontier = nxt
    names = dict(
        (await session.execute(select(Device.id, Device.name).where(Device.id.in_(seen)))).all()
    )
    return {
        "device_id": start.id,
        "depth": depth,
        "truncated": truncated,
        "devices": [
            {"device_id": d, "name": names.get(d, ""), "depth": lvl}
            for d, lvl in sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))
        ],
        "links": list(links.values()),
    }


async def port_path(session: AsyncSession, port_id: int) -> dict[str, Any]:
    """The path from a port to its far end: the port, then the port at the other end.

    Ports are plain (no front/rear pass-through ports), so a path has at most one
    connection; ``complete`` is false for an unconnected port.
    """
    await _get(session, Port, port_id, "port")

    async def hop(pid: int) -> dict[str, Any]:
        row = (
            await session.execute(
                select(Port.id, Port.name, Device.id, Device.name)
                .join(Device, Device.id == Port.device_id)
                .where(Port.id == pid)
            )
        ).one()
        return {"port_id": row[0], "port": row[1], "device_id": row[2], "device": row[3]}

    hops = [await hop(port_id)]
    conn = await session.scalar(select(CableEnd.connection_id).where(CableEnd.port_id == port_id))
    if conn is None:
        return {"complete": False, "hops": hops, "connections": []}
    far = await session.scalar(
        select(CableEnd.port_id).where(CableEnd.connection_id == conn, CableEnd.port_id != port_id)
    )
    if far is None:
        return {"complete": False, "hops": hops, "connections": [conn]}
    hops.append(await hop(far))
    return {"complete": True, "hops": hops, "connections": [conn]}


# -- change history ---------------------------------------------------------------------


async def list_changes(
    session: AsyncSession,
    *,
    object_type: str | None,
    object_id: int | None,
    request_id: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Change], str | None]:
    """A page of recorded changes, oldest first, optionally of one object or one request."""
    conditions = []
    if object_type:
        conditions.append(Change.object_type == object_type)
    if object_id is not None:
        conditions.append(Change.object_id == object_id)
    if request_id:
        conditions.append(Change.request_id == request_id)
    stmt = select(Change).where(and_(True, *conditions))
    return await _page_by_id(session, stmt, Change, cursor, limit)
