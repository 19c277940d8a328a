"""The inventory's devices as the scheduler sees them, and the policies that apply to them."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from platform_inventory import api as inventory
from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import invalid, serialize
from platform_scheduler.models import WriteLock
from platform_scheduler.service.common import POLICIES, DeviceInfo, Rules, _core
from platform_scheduler.settings import SchedulerSettings

# -- devices and policies ---------------------------------------------------------------


@functools.cache
def inventory_devices() -> Any:
    """The inventory's devices as a subquery, built once (its column collection is costly)."""
    return inventory.filtered_devices(inventory.DeviceFilters()).subquery("inventory_device")


async def refuse_gone_or_retired(session: AsyncSession, device_ids: list[int]) -> None:
    """422 naming ``device_ids`` when a device was deleted or retired meanwhile.

    Call it after :func:`lock_devices`: the inventory's delete veto takes the same locks
    before it looks for bookings, so a retirement or deletion committed while this booking
    was being checked is seen here, and one still running waits for this booking.
    """
    d = inventory_devices().c
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
    devices = inventory_devices()
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
    d = inventory_devices().c
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
