"""What the scheduler routes share: settings, scopes, booking output."""

from __future__ import annotations

from typing import Any, cast

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import get_context, requires_scopes
from platform_scheduler import service
from platform_scheduler.models import Booking
from platform_scheduler.schemas.bookings import BookingOut
from platform_scheduler.schemas.common import Status
from platform_scheduler.settings import SchedulerSettings

APPROVE = requires_scopes("scheduler:approve")
ADMIN = requires_scopes("scheduler:admin")
BAD_GATEWAY: dict[int | str, dict[str, Any]] = {
    502: {
        "description": "The BMC or PDU failed the action",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
}


def _settings(request: Request) -> SchedulerSettings:
    return get_context(request).settings_for("scheduler", SchedulerSettings)


async def _out(session: AsyncSession, bookings: list[Booking]) -> list[BookingOut]:
    devices = await service.device_ids_of(session, [b.id for b in bookings])
    return [
        BookingOut(
            id=b.id,
            owner_id=b.owner_id,
            owner=b.owner_name,
            purpose=b.purpose,
            status=cast(Status, b.status),
            start=b.start_at,
            end=b.end_at,
            device_ids=devices.get(b.id, []),
            series_id=b.series_id,
            power_on_start=b.power_on_start,
            power_off_end=b.power_off_end,
            decided_by=b.decided_by,
            decision_note=b.decision_note,
            created_at=b.created_at,
            updated_at=b.updated_at,
        )
        for b in bookings
    ]


async def _one(session: AsyncSession, booking: Booking) -> BookingOut:
    return (await _out(session, [booking]))[0]
