"""Routes of availability and recommendations."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, cast

from fastapi import APIRouter, Query, Response

from platform_core import DbSession, OptionalId
from platform_scheduler import service
from platform_scheduler.schemas.availability import (
    AVAILABILITY_JSON,
    Availability,
    Recommendations,
    _AvailabilityData,
)
from platform_scheduler.schemas.common import Timestamp

router = APIRouter()


# -- availability -----------------------------------------------------------------------


@router.get("/availability", response_model=Availability)
async def availability(
    session: DbSession,
    start: Timestamp,
    end: Timestamp,
    device_id: OptionalId = None,
    device_type_id: OptionalId = None,
    duration_minutes: Annotated[int, Query(ge=1, le=44_640)] = 60,
) -> Response:
    """Free slots of a device, or of every device of a type, at least ``duration`` long."""
    devices = await service.availability(
        session,
        device_id=device_id,
        device_type_id=device_type_id,
        start=start,
        end=end,
        duration=timedelta(minutes=duration_minutes),
    )
    body = {"start": start, "end": end, "duration_minutes": duration_minutes, "devices": devices}
    # The service's own output (~14,000 slots for 1,000 devices over a week) is serialized
    # once, in Rust, to the JSON of ``Availability``: validating it again cost more than
    # computing it.
    return Response(
        AVAILABILITY_JSON.dump_json(cast(_AvailabilityData, body)), media_type="application/json"
    )


@router.get("/recommendations", response_model=Recommendations)
async def recommendations(
    session: DbSession,
    device_type_id: Annotated[int, Query(ge=1, le=2**31 - 1)],
    start: Timestamp,
    end: Timestamp,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Recommendations:
    """Devices of a type free for the window, least fragmenting first, with the reason."""
    items = await service.recommendations(
        session, device_type_id=device_type_id, start=start, end=end, limit=limit
    )
    return Recommendations.model_validate({"start": start, "end": end, "items": items})
