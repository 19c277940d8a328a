"""Routes of locations."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from platform_core import NO_CONTENT, Caller, Cursor, DbSession, IdPath, OptionalId
from platform_core import OptionalLimit as Limit
from platform_inventory import service
from platform_inventory.routes.deps import Q, _audit, _limit
from platform_inventory.schemas.locations import (
    LocationIn,
    LocationOut,
    LocationPage,
    LocationPatch,
)

router = APIRouter()


# -- locations --------------------------------------------------------------------------


@router.get("/locations", response_model=LocationPage)
async def list_locations(
    request: Request,
    session: DbSession,
    q: Q = None,
    parent: OptionalId = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> LocationPage:
    """Locations by id, paginated; ``parent`` lists one node's children."""
    rows, nxt = await service.list_locations(
        session, q=q, parent_id=parent, cursor=cursor, limit=_limit(request, limit)
    )
    return LocationPage(items=[LocationOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/locations", response_model=LocationOut, status_code=201)
async def create_location(
    data: LocationIn, request: Request, session: DbSession, caller: Caller
) -> LocationOut:
    """Create a location."""
    obj = await service.create_location(session, data.model_dump(), _audit(request, caller))
    return LocationOut.model_validate(obj)


@router.get("/locations/{obj_id}", response_model=LocationOut)
async def get_location(obj_id: IdPath, session: DbSession) -> LocationOut:
    """One location."""
    return LocationOut.model_validate(await service.read_location(session, obj_id))


@router.patch("/locations/{obj_id}", response_model=LocationOut)
async def update_location(
    obj_id: IdPath, data: LocationPatch, request: Request, session: DbSession, caller: Caller
) -> LocationOut:
    """Rename or move a location."""
    obj = await service.update_location(
        session, obj_id, data.model_dump(exclude_unset=True), _audit(request, caller)
    )
    return LocationOut.model_validate(obj)


@router.delete("/locations/{obj_id}", **NO_CONTENT)
async def delete_location(
    obj_id: IdPath, request: Request, session: DbSession, caller: Caller
) -> Response:
    """Delete an empty location."""
    await service.delete_location(session, obj_id, _audit(request, caller))
    return Response(status_code=204)
