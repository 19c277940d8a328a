"""Routes of the change history, the device import and the export."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from platform_core import Caller, Cursor, DbSession, Line, OptionalId, get_context
from platform_core import OptionalLimit as Limit
from platform_inventory import service, transfer
from platform_inventory.routes.deps import _audit, _limit, _settings
from platform_inventory.schemas.history import ChangeOut, ChangePage, ImportReport

router = APIRouter()


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
