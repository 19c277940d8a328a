"""Routes of racks."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from platform_core import NO_CONTENT, Caller, Cursor, DbSession, IdPath, OptionalId
from platform_core import OptionalLimit as Limit
from platform_inventory import service
from platform_inventory.routes.deps import Q, _audit, _limit
from platform_inventory.schemas.racks import RackIn, RackOut, RackPage, RackPatch

router = APIRouter()


# -- racks ------------------------------------------------------------------------------


@router.get("/racks", response_model=RackPage)
async def list_racks(
    request: Request,
    session: DbSession,
    q: Q = None,
    location: OptionalId = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> RackPage:
    """Racks by id, paginated; ``location`` includes the locations below it."""
    rows, nxt = await service.list_racks(
        session, q=q, location_id=location, cursor=cursor, limit=_limit(request, limit)
    )
    return RackPage(items=[RackOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/racks", response_model=RackOut, status_code=201)
async def create_rack(
    data: RackIn, request: Request, session: DbSession, caller: Caller
) -> RackOut:
    """Create a rack."""
    obj = await service.create_rack(session, data.model_dump(), _audit(request, caller))
    return RackOut.model_validate(obj)


@router.get("/racks/{obj_id}", response_model=RackOut)
async def get_rack(obj_id: IdPath, session: DbSession) -> RackOut:
    """One rack."""
    return RackOut.model_validate(await service.read_rack(session, obj_id))


@router.patch("/racks/{obj_id}", response_model=RackOut)
async def update_rack(
    obj_id: IdPath, data: RackPatch, request: Request, session: DbSession, caller: Caller
) -> RackOut:
    """Rename or resize a rack."""
    obj = await service.update_rack(
        session, obj_id, data.model_dump(exclude_unset=True), _audit(request, caller)
    )
    return RackOut.model_validate(obj)


@router.delete("/racks/{obj_id}", **NO_CONTENT)
async def delete_rack(
    obj_id: IdPath, request: Request, session: DbSession, caller: Caller
) -> Response:
    """Delete an empty rack."""
    await service.delete_rack(session, obj_id, _audit(request, caller))
    return Response(status_code=204)
