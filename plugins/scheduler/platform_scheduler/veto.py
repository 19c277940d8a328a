"""The scheduler's answer to the inventory's ``inventory_device_delete_veto`` hook."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import utcnow
from platform_scheduler.service import common, veto


async def reason(session: AsyncSession, device: dict[str, Any], action: str) -> str | None:
    """A reason to refuse deleting or retiring a device with current or future bookings.

    Reads through the inventory's session, inside the transaction that deletes or retires
    the device, after taking the device's booking lock, so the check and the change see the
    same data and no booking of the device slips in between.
    """
    if "id" not in device:
        return None
    # The locks a booking of this device takes: a booking being made now either committed
    # before (and is found below) or waits, then sees the device retired or gone.
    await common.lock_devices(session, [int(device["id"])])
    ids = await veto.future_bookings(session, int(device["id"]), utcnow())
    if not ids:
        return None
    listed = ", ".join(str(i) for i in ids)
    return f"device has current or future bookings ({listed}); cancel them before {action}"
