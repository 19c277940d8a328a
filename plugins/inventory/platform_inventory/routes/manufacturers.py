"""Routes of manufacturers."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from platform_core import NO_CONTENT, Caller, Cursor, DbSession, IdPath
from platform_core import OptionalLimit as Limit
from platform_inventory import service
from platform_inventory.routes.deps import Q, _audit, _limit
from platform_inventory.schemas.manufacturers import (
    ManufacturerIn,
    ManufacturerOut,
    ManufacturerPage,
    ManufacturerPatch,
)

router = APIRouter()


# -- manufacturers ----------------------------------------------------------------------


@router.get("/manufacturers", response_model=ManufacturerPage)
async def list_manufacturers(
    request: Request, session: DbSession, q: Q = None, cursor: Cursor = None, limit: Limit = None
) -> ManufacturerPage:
    """Manufacturers by id, paginated."""
    rows, nxt = await service.list_manufacturers(
        session, q=q, cursor=cursor, limit=_limit(request, limit)
    )
    return ManufacturerPage(
        items=[ManufacturerOut.model_validate(r) for r in rows], next_cursor=nxt
    )


@router.post("/manufacturers", response_model=ManufacturerOut, status_code=201)
async def create_manufacturer(
    data: ManufacturerIn, request: Request, session: DbSession, caller: Caller
) -> ManufacturerOut:
    """Create a manufacturer; 409 on a duplicate name."""
    obj = await service.create_manufacturer(session, data.name, _audit(request, caller))
    return ManufacturerOut.model_validate(obj)


@router.get("/manufacturers/{obj_id}", response_model=ManufacturerOut)
async def get_manufacturer(obj_id: IdPath, session: DbSession) -> ManufacturerOut:
    """One manufacturer."""
    return ManufacturerOut.model_validate(await service.read_manufacturer(session, obj_id))


@router.patch("/manufacturers/{obj_id}", response_model=ManufacturerOut)
async def update_manufacturer(
    obj_id: IdPath, data: ManufacturerPatch, request: Request, session: DbSession, caller: Caller
) -> ManufacturerOut:
    """Rename a manufacturer."""
    obj = await service.update_manufacturer(
        session, obj_id, data.model_dump(exclude_unset=True), _audit(request, caller)
    )
    return ManufacturerOut.model_validate(obj)


@router.delete("/manufacturers/{obj_id}", **NO_CONTENT)
async def delete_manufacturer(
    obj_id: IdPath, request: Request, session: DbSession, caller: Caller
) -> Response:
    """Delete a manufacturer without device types."""
    await service.delete_manufacturer(session, obj_id, _audit(request, caller))
    return Response(status_code=204)
