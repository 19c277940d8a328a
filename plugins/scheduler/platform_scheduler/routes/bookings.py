"""Routes of bookings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

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
)
from platform_scheduler import service
from platform_scheduler.routes.deps import APPROVE, _one, _out, _settings
from platform_scheduler.schemas.bookings import (
    BookingCreated,
    BookingIn,
    BookingOut,
    BookingPage,
    BookingPatch,
    Decision,
)
from platform_scheduler.schemas.common import Status, Timestamp

router = APIRouter()


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
