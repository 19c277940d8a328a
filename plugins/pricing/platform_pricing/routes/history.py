"""Routes: price history, current prices, options, metrics, switches and the price chart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from platform_core import (
    DEFAULT_LIMIT,
    MAX_ID,
    DbSession,
    IdCursor,
    IdPath,
    Limit,
    Line,
    OptionalId,
    requires_scopes,
    utcnow,
)
from platform_pricing.routes.deps import Settings, TenantDep
from platform_pricing.schemas.history import (
    AvailableOptions,
    CurrentPricing,
    Metrics,
    PriceChart,
    PriceHistory,
    SwitchPage,
    Timestamp,
)
from platform_pricing.service import history

router = APIRouter()

ANY = requires_scopes()
PoolKey = Annotated[Line | None, Query(min_length=1, max_length=64)]


@router.get(
    "/instances/{instance_id}/price-history", response_model=PriceHistory, openapi_extra=ANY
)
async def price_history(
    instance_id: IdPath,
    session: DbSession,
    tenant: TenantDep,
    settings: Settings,
    start: Annotated[Timestamp | None, Query(description="default: end - 24 h")] = None,
    end: Annotated[Timestamp | None, Query(description="default: now")] = None,
    points: Annotated[int, Query(description="buckets, 1..history_max_points")] = 500,
    pool_id: OptionalId = None,
    region: PoolKey = None,
    zone: PoolKey = None,
    instance_type: PoolKey = None,
) -> PriceHistory:
    """Min/avg/max spot price per bucket of the instance's pool (or another pool its client
    has prices for), from the hourly aggregates and the raw points; empty buckets omitted."""
    data = await history.price_history(
        session,
        tenant,
        instance_id,
        settings=settings,
        now=utcnow(),
        start=start,
        end=end,
        points=points,
        pool_id=pool_id,
        region=region,
        zone=zone,
        instance_type=instance_type,
    )
    return PriceHistory.model_validate(data)


@router.get("/instances/{instance_id}/pricing", response_model=CurrentPricing, openapi_extra=ANY)
async def current_pricing(
    instance_id: IdPath, session: DbSession, tenant: TenantDep
) -> CurrentPricing:
    """Latest prices of the instance's pool and of the other pools of its type in its region."""
    return CurrentPricing.model_validate(
        await history.current_pricing(session, tenant, instance_id)
    )


@router.get("/instances/{instance_id}/metrics", response_model=Metrics, openapi_extra=ANY)
async def instance_metrics(instance_id: IdPath, session: DbSession, tenant: TenantDep) -> Metrics:
    """Uptime, time per pool and lifecycle, switches, interruptions and savings to date."""
    return Metrics.model_validate(
        await history.instance_metrics(session, tenant, instance_id, now=utcnow())
    )


@router.get(
    "/instances/{instance_id}/available-options",
    response_model=AvailableOptions,
    openapi_extra=ANY,
)
async def available_options(
    instance_id: IdPath, session: DbSession, tenant: TenantDep, settings: Settings
) -> AvailableOptions:
    """Pools of the instance's type in its region with a recent price, ranked by spot price
    then by recent interruption rate."""
    return AvailableOptions.model_validate(
        await history.available_options(
            session, tenant, instance_id, settings=settings, now=utcnow()
        )
    )


@router.get("/switches", response_model=SwitchPage, openapi_extra=ANY)
async def list_switches(
    session: DbSession,
    tenant: TenantDep,
    instance_id: OptionalId = None,
    start: Annotated[Timestamp | None, Query(description="switched at or after")] = None,
    end: Annotated[Timestamp | None, Query(description="switched before")] = None,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> SwitchPage:
    """The caller's switch history, newest first (by ``switched_at``, then id), cursor paged."""
    return SwitchPage.model_validate(
        await history.list_switches(
            session,
            tenant,
            instance_id=instance_id,
            start=start,
            end=end,
            cursor=cursor,
            limit=limit,
        )
    )


@router.get("/charts/prices", response_model=PriceChart, openapi_extra=ANY)
async def price_chart(
    session: DbSession,
    tenant: TenantDep,
    settings: Settings,
    instance_id: Annotated[int, Query(ge=1, le=MAX_ID)],
    start: Annotated[Timestamp | None, Query(description="default: end - 24 h")] = None,
    end: Annotated[Timestamp | None, Query(description="default: now")] = None,
    points: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> PriceChart:
    """Average spot price per bucket of every pool of the instance's type in its region
    (the ones its client has prices for), for comparing pools on one chart."""
    return PriceChart.model_validate(
        await history.price_chart(
            session,
            tenant,
            instance_id,
            settings=settings,
            now=utcnow(),
            start=start,
            end=end,
            points=points,
        )
    )
