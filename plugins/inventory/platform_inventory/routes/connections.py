"""Routes of ports, connections and the topology."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from platform_core import NO_CONTENT, Caller, Cursor, DbSession, IdPath, OptionalId
from platform_core import OptionalLimit as Limit
from platform_inventory import service
from platform_inventory.routes.deps import _audit, _limit
from platform_inventory.schemas.connections import (
    ConnectionIn,
    ConnectionOut,
    ConnectionPage,
    ConnectionPatch,
)

router = APIRouter()


# -- connections ------------------------------------------------------------------------


@router.get("/connections", response_model=ConnectionPage)
async def list_connections(
    request: Request,
    session: DbSession,
    device: OptionalId = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> ConnectionPage:
    """Connections by id, paginated; ``device`` keeps those touching one device."""
    rows, nxt = await service.list_connections(
        session, device_id=device, cursor=cursor, limit=_limit(request, limit)
    )
    return ConnectionPage(
        items=[ConnectionOut.model_validate(r.__dict__) for r in rows], next_cursor=nxt
    )


@router.post("/connections", response_model=ConnectionOut, status_code=201)
async def create_connection(
    data: ConnectionIn, request: Request, session: DbSession, caller: Caller
) -> ConnectionOut:
    """Connect two ports; 409 when either is already connected."""
    view = await service.create_connection(
        session, data.a_port_id, data.b_port_id, data.label, _audit(request, caller)
    )
    return ConnectionOut.model_validate(view.__dict__)


@router.get("/connections/{obj_id}", response_model=ConnectionOut)
async def get_connection(obj_id: IdPath, session: DbSession) -> ConnectionOut:
    """One connection."""
    return ConnectionOut.model_validate((await service.get_connection(session, obj_id)).__dict__)


@router.patch("/connections/{obj_id}", response_model=ConnectionOut)
async def update_connection(
    obj_id: IdPath, data: ConnectionPatch, request: Request, session: DbSession, caller: Caller
) -> ConnectionOut:
    """Change a connection's label."""
    view = await service.update_connection(session, obj_id, data.label, _audit(request, caller))
    return ConnectionOut.model_validate(view.__dict__)


@router.delete("/connections/{obj_id}", **NO_CONTENT)
async def delete_connection(
    obj_id: IdPath, request: Request, session: DbSession, caller: Caller
) -> Response:
    """Disconnect two ports."""
    await service.delete_connection(session, obj_id, _audit(request, caller))
    return Response(status_code=204)
