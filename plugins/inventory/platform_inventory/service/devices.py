"""Devices: create, list, update, move, delete (with the delete veto)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, delete, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    NotFound,
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
    CustomFieldValue,
    Device,
    DeviceTag,
    DeviceType,
    Location,
    Port,
    Rack,
)
from platform_inventory.service import connections as _connections
from platform_inventory.service.common import (
    SORT_KEYS,
    Audit,
    Veto,
    _flush,
    _get,
    _no_veto,
    _read,
    _ref,
    record,
    snapshot,
)
from platform_inventory.service.device_types import text_value, validate_custom_fields
from platform_inventory.service.locations import descendants
from platform_inventory.service.racks import _place

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


async def read_device(session: AsyncSession, obj_id: int) -> Row[Any]:
    """One device as a read-only row for a response, or ``NotFound``."""
    return await _read(session, Device, obj_id, "device")


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
        await _connections.delete_connection(session, conn_id, audit)
    before = snapshot(device)
    await session.delete(device)
    await session.flush()
    record(session, audit, "device", obj_id, "delete", before, None)
    publish(session, events.DeviceDeleted(device_id=obj_id, name=before["name"]), actor=audit.actor)
