"""Routes of devices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from platform_core import NO_CONTENT, Caller, Cursor, DbSession, IdPath, Line, OptionalId
from platform_core import OptionalLimit as Limit
from platform_inventory import service
from platform_inventory.routes.deps import _audit, _limit, _settings, _veto
from platform_inventory.schemas.common import Status
from platform_inventory.schemas.connections import PortIn, PortOut, PortPath, Topology
from platform_inventory.schemas.devices import DeviceIn, DeviceOut, DevicePage, DevicePatch

router = APIRouter()


# -- devices ----------------------------------------------------------------------------


@router.get("/devices", response_model=DevicePage)
async def list_devices(
    request: Request,
    session: DbSession,
    q: Annotated[
        Line | None,
        Query(min_length=1, max_length=100, description="name/serial/asset tag substring"),
    ] = None,
    status: Status | None = None,
    type: OptionalId = None,
    location: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="with descendants")
    ] = None,
    rack: OptionalId = None,
    tag: Annotated[Line | None, Query(min_length=1, max_length=50)] = None,
    sort: Annotated[
        Line, Query(max_length=20, description="name, created_at, updated_at, id; -desc")
    ] = "name",
    cursor: Cursor = None,
    limit: Limit = None,
) -> DevicePage:
    """Devices, filtered, sorted and paginated with a stable cursor.

    Custom fields filter with ``cf_<name>=<value>`` (booleans ``true``/``false``, dates
    ``YYYY-MM-DD``); several filters combine with AND.
    """
    cfs = {k[3:]: v[:200] for k, v in request.query_params.items() if k.startswith("cf_")}
    filters = service.DeviceFilters(q, status, type, location, rack, tag, cfs)
    rows, nxt = await service.list_devices(
        session, filters, sort=sort, cursor=cursor, limit=_limit(request, limit)
    )
    return DevicePage(items=[DeviceOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/devices", response_model=DeviceOut, status_code=201)
async def create_device(
    data: DeviceIn, request: Request, session: DbSession, caller: Caller
) -> DeviceOut:
    """Create a device; 409 names occupied rack units and their occupant."""
    obj = await service.create_device(session, data.model_dump(), _audit(request, caller))
    return DeviceOut.model_validate(obj)


@router.get("/devices/{obj_id}", response_model=DeviceOut)
async def get_device(obj_id: IdPath, session: DbSession) -> DeviceOut:
    """One device."""
    return DeviceOut.model_validate(await service.read_device(session, obj_id))


@router.patch("/devices/{obj_id}", response_model=DeviceOut)
async def update_device(
    obj_id: IdPath, data: DevicePatch, request: Request, session: DbSession, caller: Caller
) -> DeviceOut:
    """Change a device; retiring it may be vetoed by another plugin (409)."""
    obj = await service.update_device(
        session,
        obj_id,
        data.model_dump(exclude_unset=True),
        _audit(request, caller),
        veto=_veto(request),
    )
    return DeviceOut.model_validate(obj)


@router.delete("/devices/{obj_id}", **NO_CONTENT)
async def delete_device(
    obj_id: IdPath, request: Request, session: DbSession, caller: Caller
) -> Response:
    """Delete a device; another plugin may veto it (409 naming the plugin)."""
    await service.delete_device(session, obj_id, _audit(request, caller), veto=_veto(request))
    return Response(status_code=204)


@router.get("/devices/{obj_id}/topology", response_model=Topology)
async def device_topology(
    obj_id: IdPath,
    request: Request,
    session: DbSession,
    depth: Annotated[int, Query(ge=1, le=20)] = 1,
) -> Topology:
    """Devices connected to this one, to ``depth`` hops (bounded by the settings)."""
    s = _settings(request)
    result = await service.topology(
        session, obj_id, min(depth, s.max_topology_depth), s.max_topology_devices
    )
    return Topology.model_validate(result)


@router.get("/devices/{obj_id}/ports", response_model=list[PortOut])
async def list_ports(obj_id: IdPath, session: DbSession) -> list[PortOut]:
    """The device's ports with their connection ids."""
    rows = await service.list_ports(session, obj_id)
    return [PortOut(id=p.id, device_id=p.device_id, name=p.name, connection_id=c) for p, c in rows]


@router.post("/devices/{obj_id}/ports", response_model=PortOut, status_code=201)
async def create_port(
    obj_id: IdPath, data: PortIn, request: Request, session: DbSession, caller: Caller
) -> PortOut:
    """Add a port to a device."""
    port = await service.create_port(session, obj_id, data.name, _audit(request, caller))
    return PortOut(id=port.id, device_id=port.device_id, name=port.name)


@router.delete("/ports/{obj_id}", **NO_CONTENT)
async def delete_port(
    obj_id: IdPath, request: Request, session: DbSession, caller: Caller
) -> Response:
    """Delete a port (and its connection)."""
    await service.delete_port(session, obj_id, _audit(request, caller))
    return Response(status_code=204)


@router.get("/ports/{obj_id}/path", response_model=PortPath)
async def port_path(obj_id: IdPath, session: DbSession) -> PortPath:
    """The path from this port to its far end."""
    return PortPath.model_validate(await service.port_path(session, obj_id))
