"""Device types and their custom field definitions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, ValidationFailed, invalid
from platform_inventory.models import Device, DeviceType, Manufacturer
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


async def read_device_type(session: AsyncSession, obj_id: int) -> Row[Any]:
    """One device type as a read-only row for a response, or ``NotFound``."""
    return await _read(session, DeviceType, obj_id, "device type")


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
