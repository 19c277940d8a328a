"""Routes: the monthly savings report and the savings chart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from platform_core import DbSession, Line, OptionalId, requires_scopes
from platform_pricing.routes.deps import TenantDep
from platform_pricing.schemas.savings import SavingsChart, SavingsReport
from platform_pricing.service import savings

router = APIRouter()

ANY = requires_scopes()


@router.get("/savings", response_model=SavingsReport, openapi_extra=ANY)
async def savings_report(
    session: DbSession,
    tenant: TenantDep,
    month: Annotated[Line | None, Query(max_length=7, description="YYYY-MM (default: now)")] = None,
    instance_id: OptionalId = None,
    client_id: OptionalId = None,
) -> SavingsReport:
    """Savings of a month per instance, per client and in total (on-demand minus paid)."""
    return SavingsReport.model_validate(
        await savings.savings_report(
            session, tenant, month=month, instance_id=instance_id, client_id=client_id
        )
    )


@router.get("/charts/savings", response_model=SavingsChart, openapi_extra=ANY)
async def savings_chart(
    session: DbSession,
    tenant: TenantDep,
    months: Annotated[int, Query(ge=1, le=24)] = 12,
    instance_id: OptionalId = None,
    client_id: OptionalId = None,
) -> SavingsChart:
    """Monthly savings series (the last ``months`` months, the current one last)."""
    return SavingsChart.model_validate(
        await savings.savings_chart(
            session, tenant, months=months, instance_id=instance_id, client_id=client_id
        )
    )
