"""The scheduler's answer to the inventory's ``inventory_device_delete_veto`` hook."""

from __future__ import annotations

from typing import Any

from platform_core import PlatformContext, utcnow
from platform_scheduler import service


async def reason(ctx: PlatformContext, device: dict[str, Any], action: str) -> str | None:
    """A reason to refuse deleting or retiring a device with current or future bookings.

    Reads committed bookings on a session of its own (the inventory's request holds its own).
    """
    if ctx is None or "id" not in device:
        return None
    async with ctx.db.session() as session:
        ids = await service.future_bookings(session, int(device["id"]), utcnow())
    if not ids:
        return None
    listed = ", ".join(str(i) for i in ids)
    return f"device has current or future bookings ({listed}); cancel them before {action}"
