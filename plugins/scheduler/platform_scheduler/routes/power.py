"""Routes of power control."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from platform_core import DEFAULT_LIMIT, NO_CONTENT, Caller, DbSession, IdPath, Limit, get_context
from platform_scheduler import power
from platform_scheduler.routes.deps import ADMIN, APPROVE, BAD_GATEWAY
from platform_scheduler.schemas.power import (
    PowerAuditOut,
    PowerConfigIn,
    PowerConfigOut,
    PowerIn,
    PowerResult,
    PowerState,
)

router = APIRouter()


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
