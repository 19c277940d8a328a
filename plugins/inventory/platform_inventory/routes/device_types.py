"""Routes of device types."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from platform_core import NO_CONTENT, Caller, Cursor, DbSession, IdPath, OptionalId
from platform_core import OptionalLimit as Limit
from platform_inventory import service
from platform_inventory.routes.deps import Q, _audit, _limit
from platform_inventory.schemas.device_types import (
    DeviceTypeIn,
    DeviceTypeOut,
    DeviceTypePage,
    DeviceTypePatch,
)

router = APIRouter()


# -- device types -----------------------------------------------------------------------


@router.get("/device-types", response_model=DeviceTypePage)
async def list_device_types(
    request: Request,
    session: DbSession,
    q: Q = None,
    manufacturer: OptionalId = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> DeviceTypePage:
    """Device types by id, paginated."""
    rows, nxt = await service.list_device_types(
        session, q=q, manufacturer_id=manufacturer, cursor=cursor, limit=_limit(request, limit)
    )
    return DeviceTypePage(items=[DeviceTypeOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/device-types", response_model=DeviceTypeOut, status_code=201)
async def create_device_type(
    data: DeviceTypeIn, request: Request, session: DbSession, caller: Caller
) -> DeviceTypeOut:
    """Create a device type with its port templates and custom field definitions."""
    obj = await service.create_device_type(session, data.model_dump(), _audit(request, caller))
    return DeviceTypeOut.model_validate(obj)


@router.get("/device-types/{obj_id}", response_model=DeviceTypeOut)
async def get_device_type(obj_id: IdPath, session: DbSession) -> DeviceTypeOut:
    """One device type."""
    return DeviceTypeOut.model_validate(await service.read_device_type(session, obj_id))


@router.patch("/device-types/{obj_id}", response_model=DeviceTypeOut)
async def update_device_type(
    obj_id: IdPath, data: DeviceTypePatch, request: Request, session: DbSession, caller: Caller
) -> DeviceTypeOut:
    """Change a device type."""
    obj = await service.update_device_type(
        session, obj_id, data.model_dump(exclude_unset=True), _audit(request, caller)
    )
    return DeviceTypeOut.model_validate(obj)


@router.delete("/device-types/{obj_id}", **NO_CONTENT)
async def delete_device_type(
    obj_id: IdPath, request: Request, session: DbSession, caller: Caller
) -> Response:
    """Delete an unused device type."""
    await service.delete_device_type(session, obj_id, _audit(request, caller))
    return Response(status_code=204)
