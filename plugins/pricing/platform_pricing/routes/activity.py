"""Routes: the admin activity feed across clients and client growth over time."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from platform_core import DEFAULT_LIMIT, Cursor, DbSession, Limit, requires_scopes
from platform_pricing.routes.deps import TenantDep
from platform_pricing.schemas.activity import (
    ActivityItem,
    ActivityKind,
    ActivityPage,
    Growth,
    GrowthPeriod,
)
from platform_pricing.service import activity as service

router = APIRouter()

ADMIN = requires_scopes("pricing:admin")


@router.get("/activity", response_model=ActivityPage, openapi_extra=ADMIN)
async def activity_feed(
    session: DbSession,
    tenant: TenantDep,
    client_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    kind: Annotated[list[ActivityKind] | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> ActivityPage:
    """Recent client creations, registrations, switches, interruptions and decisions of every
    client, newest first (admin); filter by ``client_id`` and ``kind`` (repeatable)."""
    rows, nxt = await service.feed(
        session, tenant, client_id=client_id, kinds=kind, cursor=cursor, limit=limit
    )
    items = [ActivityItem.model_validate(row, from_attributes=True) for row in rows]
    return ActivityPage(items=items, next_cursor=nxt)


@router.get("/growth", response_model=Growth, openapi_extra=ADMIN)
async def client_growth(
    session: DbSession,
    tenant: TenantDep,
    period: GrowthPeriod = "day",
    since: date | None = None,
    until: date | None = None,
) -> Growth:
    """New and cumulative clients, agents and instances per UTC day or month (admin)."""
    data = await service.growth(session, tenant, period=period, since=since, until=until)
    return Growth.model_validate(data)
