"""Thin HTTP layer over the scheduler's services, mounted under ``/api/scheduler``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    DEFAULT_LIMIT,
    NO_CONTENT,
    Caller,
    DbSession,
    IdCursor,
    IdPath,
    Limit,
    Line,
    OptionalId,
    get_context,
    requires_scopes,
)
from platform_scheduler import power, service
from platform_scheduler.models import Booking
from platform_scheduler.schemas import (
    AVAILABILITY_JSON,
    Availability,
    BookingCreated,
    BookingIn,
    BookingOut,
    BookingPage,
    BookingPatch,
    Decision,
    PolicyIn,
    PolicyOut,
    PolicyPatch,
    PowerAuditOut,
    PowerConfigIn,
    PowerConfigOut,
    PowerIn,
    PowerResult,
    PowerState,
    Recommendations,
    Status,
    Timestamp,
    _AvailabilityData,
)
from platform_scheduler.settings import SchedulerSettings

router = APIRouter()

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


# -- bookings ---------------------------------------------------------------------------


@router.post("/bookings", response_model=BookingCreated, status_code=201)
async def create_booking(
    data: BookingIn, request: Request, session: DbSession, caller: Caller
) -> BookingCreated:
    """Book devices (recurring: every occurrence or none); 409 names the conflicting booking."""
    bookings = await service.create_booking(session, data.model_dump(), caller, _settings(request))
    first = await _one(session, bookings[0])
    return BookingCreated(**first.model_dump(), occurrence_ids=[b.id for b in bookings])


@router.get("/bookings", response_model=BookingPage)
async def list_bookings(
    session: DbSession,
    caller: Caller,
    device_id: OptionalId = None,
    owner_id: OptionalId = None,
    status: Status | None = None,
    start: Annotated[Timestamp | None, Query(description="overlapping from")] = None,
    end: Annotated[Timestamp | None, Query(description="overlapping until")] = None,
    series_id: Annotated[Line | None, Query(max_length=36)] = None,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> BookingPage:
    """Bookings by id (members see their own only), filtered by device, owner, status, window."""
    rows, nxt = await service.list_bookings(
        session,
        caller,
        device_id=device_id,
        owner_id=owner_id,
        status=status,
        start=start,
        end=end,
        series_id=series_id,
        cursor=cursor,
        limit=limit,
    )
    return BookingPage(items=await _out(session, rows), next_cursor=nxt)


@router.get("/bookings/{booking_id}", response_model=BookingOut)
async def get_booking(booking_id: IdPath, session: DbSession, caller: Caller) -> BookingOut:
    """One booking (404 for a member asking for someone else's)."""
    return await _one(session, await service.get_booking(session, booking_id, caller))


@router.patch("/bookings/{booking_id}", response_model=BookingOut)
async def update_booking(
    booking_id: IdPath, data: BookingPatch, request: Request, session: DbSession, caller: Caller
) -> BookingOut:
    """Extend, shorten or move a booking (same conflict rules as creating)."""
    booking = await service.update_booking(
        session, booking_id, data.model_dump(exclude_unset=True), caller, _settings(request)
    )
    return await _one(session, booking)


@router.delete("/bookings/{booking_id}", **NO_CONTENT)
async def cancel_booking(booking_id: IdPath, session: DbSession, caller: Caller) -> Response:
    """Cancel a pending or approved booking."""
    await service.cancel_booking(session, booking_id, caller)
    return Response(status_code=204)


@router.post("/bookings/{booking_id}/release", response_model=BookingOut)
async def release_booking(booking_id: IdPath, request: Request, caller: Caller) -> BookingOut:
    """End an active booking now (early release); powers off when ``power_off_end``."""
    ctx = get_context(request)
    booking = await service.release_and_power_off(ctx, booking_id, caller)
    async with ctx.db.session() as session:
        return await _one(session, booking)


@router.post("/bookings/{booking_id}/approve", response_model=BookingOut, openapi_extra=APPROVE)
async def approve_booking(
    booking_id: IdPath, session: DbSession, caller: Caller, data: Decision | None = None
) -> BookingOut:
    """Approve a pending booking (conflicts re-checked in the same transaction)."""
    note = data.note if data else None
    return await _one(session, await service.approve_booking(session, booking_id, caller, note))


@router.post("/bookings/{booking_id}/reject", response_model=BookingOut, openapi_extra=APPROVE)
async def reject_booking(
    booking_id: IdPath, session: DbSession, caller: Caller, data: Decision | None = None
) -> BookingOut:
    """Reject a pending booking."""
    note = data.note if data else None
    return await _one(session, await service.reject_booking(session, booking_id, caller, note))


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


# -- policies ---------------------------------------------------------------------------


@router.get("/policies", response_model=list[PolicyOut])
async def list_policies(session: DbSession) -> list[PolicyOut]:
    """Every booking policy."""
    return [PolicyOut.model_validate(p) for p in await service.list_policies(session)]


@router.post("/policies", response_model=PolicyOut, status_code=201, openapi_extra=ADMIN)
async def create_policy(data: PolicyIn, session: DbSession) -> PolicyOut:
    """Create a policy for a device type or a tag (admins)."""
    return PolicyOut.model_validate(await service.create_policy(session, data.model_dump()))


@router.get("/policies/{policy_id}", response_model=PolicyOut)
async def get_policy(policy_id: IdPath, session: DbSession) -> PolicyOut:
    """One policy."""
    return PolicyOut.model_validate(await service.get_policy(session, policy_id))


@router.patch("/policies/{policy_id}", response_model=PolicyOut, openapi_extra=ADMIN)
async def update_policy(policy_id: IdPath, data: PolicyPatch, session: DbSession) -> PolicyOut:
    """Change a policy (admins)."""
    policy = await service.update_policy(session, policy_id, data.model_dump(exclude_unset=True))
    return PolicyOut.model_validate(policy)


@router.delete("/policies/{policy_id}", **NO_CONTENT, openapi_extra=ADMIN)
async def delete_policy(policy_id: IdPath, session: DbSession) -> Response:
    """Delete a policy (admins)."""
    await service.delete_policy(session, policy_id)
    return Response(status_code=204)


# -- power ------------------------------------------------------------------------------


@router.get("/devices/{device_id}/power-config", response_model=PowerConfigOut)
async def get_power_config(device_id: IdPath, session: DbSession) -> PowerConfigOut:
    """A device's power config (the credentials reference only)."""
    return PowerConfigOut.model_validate(await power.get_config(session, device_id))


@router.put("/devices/{device_id}/power-config", response_model=PowerConfigOut, openapi_extra=ADMIN)
async def set_power_config(
    device_id: IdPath, data: PowerConfigIn, request: Request, session: DbSession
) -> PowerConfigOut:
    """Set a device's power config (admins); 422 for an unknown driver."""
    drivers = power.collect_drivers(get_context(request).plugins)
    config = await power.set_config(session, device_id, data.model_dump(), drivers)
    return PowerConfigOut.model_validate(config)


@router.delete("/devices/{device_id}/power-config", **NO_CONTENT, openapi_extra=ADMIN)
async def delete_power_config(device_id: IdPath, session: DbSession) -> Response:
    """Remove a device's power config (admins)."""
    await power.delete_config(session, device_id)
    return Response(status_code=204)


@router.get("/devices/{device_id}/power", response_model=PowerState, responses=BAD_GATEWAY)
async def get_power(device_id: IdPath, request: Request, caller: Caller) -> PowerState:
    """The device's power state, read from its BMC or PDU.

    Operators and admins, or a member holding a current booking of the device (403
    otherwise); rate-limited per user (429 with Retry-After); 502 when the device fails
    to answer within ``power_read_timeout``.
    """
    state = await power.power_state(get_context(request), device_id, caller)
    return PowerState.model_validate(state)


@router.post("/devices/{device_id}/power", response_model=PowerResult, responses=BAD_GATEWAY)
async def set_power(
    device_id: IdPath, data: PowerIn, request: Request, caller: Caller
) -> PowerResult:
    """Switch on, off or cycle; 409 while someone else holds the device or its outlet."""
    result = await power.power_action(
        get_context(request), device_id, data.action, caller, force=data.force
    )
    return PowerResult.model_validate(result)


@router.get(
    "/devices/{device_id}/power/audit", response_model=list[PowerAuditOut], openapi_extra=APPROVE
)
async def power_audit(
    device_id: IdPath, session: DbSession, limit: Limit = DEFAULT_LIMIT
) -> list[PowerAuditOut]:
    """The latest power actions on a device (operators and admins)."""
    rows = await power.audit_log(session, device_id, limit)
    return [PowerAuditOut.model_validate(r) for r in rows]
