"""The inventory's delete veto: the future bookings of a device."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_scheduler.models import HOLDING, Slot

# -- the inventory's veto ---------------------------------------------------------------


async def future_bookings(session: AsyncSession, device_id: int, now: datetime) -> list[int]:
    """Ids of the bookings holding ``device_id`` now or later."""
    rows = await session.scalars(
        select(Slot.booking_id)
        .where(Slot.device_id == device_id, Slot.status.in_(HOLDING), Slot.end_at > now)
        .order_by(Slot.start_at)
        .limit(10)
    )
    return list(rows.all())
