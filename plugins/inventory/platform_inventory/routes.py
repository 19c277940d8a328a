"""Thin HTTP layer over the inventory service, mounted under ``/api/inventory``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from platform_core import (
    NO_CONTENT,
    Caller,
    Cursor,
    DbSession,
    IdPath,
    Line,
    OptionalId,
    clamp_limit,
    get_context,
)
from platform_core import OptionalLimit as Limit
from platform_inventory import service, transfer
from platform_inventory.schemas import (
    ChangeOut,
    ChangePage,
    ConnectionIn,
    ConnectionOut,
    ConnectionPage,
    ConnectionPatch,
    DeviceIn,
    DeviceOut,
    DevicePage,
    DevicePatch,
    DeviceTypeIn,
    DeviceTypeOut,
    DeviceTypePage,
    DeviceTypePatch,
    ImportReport,
    LocationIn,
    LocationOut,
    LocationPage,
    LocationPatch,
    ManufacturerIn,
    ManufacturerOut,
    ManufacturerPage,
    ManufacturerPatch,
    PortIn,
    PortOut,
    PortPath,
    RackIn,
    RackOut,
    RackPage,
    RackPatch,
    Status,
    Topology,
)
from platform_inventory.settings import InventorySettings

router = APIRouter()

Q = Annotated[Line | None, Query(min_length=1, max_length=100, description="substring")]


def _settings(request: Request) -> InventorySettings:
    return get_context(request).settings_for("inventory", InventorySettings)


def _limit(request: Request, limit: int | None) -> int:
    s = _settings(request)
    return clamp_limit(limit, s.default_page_size, s.max_page_size)


def _audit(request: Request, caller: Any) -> service.Audit:
    return service.Audit(caller.username, getattr(request.state, "request_id", None))


def _veto(request: Request) -> service.Veto:
    return service.hook_veto(get_context(request))


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
    return ManufacturerOut.model_validate(await service.get_manufacturer(session, obj_id))


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
    return DeviceTypeOut.model_validate(await service.get_device_type(session, obj_id))


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
    return LocationOut.model_validate(await service.get_location(session, obj_id))


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
    return RackOut.model_validate(await service.get_rack(session, obj_id))


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
    return DeviceOut.model_validate(await service.get_device(session, obj_id))


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


# -- history, import, export ------------------------------------------------------------


@router.get("/changes", response_model=ChangePage)
async def list_changes(
    request: Request,
    session: DbSession,
    object_type: Annotated[Line | None, Query(min_length=1, max_length=30)] = None,
    object_id: OptionalId = None,
    request_id: Annotated[Line | None, Query(min_length=1, max_length=64)] = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> ChangePage:
    """The change history, oldest first (read-only)."""
    rows, nxt = await service.list_changes(
        session,
        object_type=object_type,
        object_id=object_id,
        request_id=request_id,
        cursor=cursor,
        limit=_limit(request, limit),
    )
    return ChangePage(items=[ChangeOut.model_validate(r) for r in rows], next_cursor=nxt)


IMPORT_BODY = {
    "x-content-types": list(transfer.CONTENT_TYPES),
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"devices": {"type": "array", "items": {"type": "object"}}},
                }
            },
        },
    },
}


@router.post(
    "/import",
    response_model=ImportReport,
    openapi_extra=IMPORT_BODY,
    responses={
        413: {"description": "larger than max_import_bytes"},
        415: {"description": "not CSV or JSON"},
    },
)
async def import_devices(
    request: Request, session: DbSession, caller: Caller, dry_run: bool = False
) -> ImportReport:
    """Import devices from CSV or JSON, all or nothing; 422 lists every bad row."""
    result = await transfer.import_devices(
        session,
        await request.body(),
        request.headers.get("content-type", ""),
        audit=_audit(request, caller),
        dry_run=dry_run,
        max_bytes=_settings(request).max_import_bytes,
    )
    return ImportReport.model_validate(result.__dict__)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the devices, streamed",
            "content": {"text/csv": {"schema": {"type": "string"}}, "application/json": {}},
        }
    },
)
async def export_devices(
    request: Request,
    format: Literal["csv", "json"] = "csv",
    ids: Annotated[bool, Query(description="include device ids (re-import updates)")] = False,
) -> StreamingResponse:
    """Every device as CSV or JSON, streamed in batches (memory stays flat)."""
    ctx = get_context(request)
    media = "text/csv" if format == "csv" else "application/json"
    return StreamingResponse(
        transfer.export_devices(ctx.db.session, format, include_ids=ids),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="devices.{format}"'},
    )
