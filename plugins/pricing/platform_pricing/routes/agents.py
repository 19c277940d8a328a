"""Routes: agents (registration, heartbeats, replica settings), their reports and instances."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    DEFAULT_LIMIT,
    NO_CONTENT,
    DbSession,
    IdCursor,
    IdPath,
    Limit,
    get_context,
    requires_scopes,
)
from platform_pricing.models import Agent, Instance, Pool
from platform_pricing.routes.deps import Settings, TenantDep
from platform_pricing.schemas.agents import (
    AgentOut,
    AgentPage,
    AgentRegister,
    AgentRegistered,
    AgentStatus,
    HeartbeatIn,
    HeartbeatOut,
    InstanceOut,
    InstancePage,
    ReplicaConfig,
)
from platform_pricing.schemas.reports import (
    CleanupReport,
    PricingReport,
    RebalanceReport,
    ReportOut,
    SwitchReport,
    TerminationReport,
)
from platform_pricing.service import agents as service
from platform_pricing.service import reports
from platform_pricing.service.reports import ReportResult

router = APIRouter()

ANY_CALLER = requires_scopes()
CLIENT = requires_scopes("pricing:client")
AGENT = requires_scopes("pricing:agent")
REPORTED: dict[str, Any] = {
    "response_model": ReportOut,
    "status_code": 201,
    "openapi_extra": ANY_CALLER,
    "responses": {200: {"description": "A replay of an already received report"}},
}


def agent_out(agent: Agent, instance_id: int | None) -> AgentOut:
    """The API view of an agent."""
    return AgentOut(
        id=agent.id,
        client_id=agent.client_id,
        name=agent.name,
        version=agent.version,
        status=agent.status,  # type: ignore[arg-type]
        instance_id=instance_id,
        registered_at=agent.registered_at,
        last_heartbeat_at=agent.last_heartbeat_at,
        offline_since=agent.offline_since,
        enabled=agent.enabled,
    )


def instance_out(instance: Instance, pool: Pool) -> InstanceOut:
    """The API view of an instance with its pool."""
    return InstanceOut(
        id=instance.id,
        client_id=instance.client_id,
        agent_id=instance.agent_id,
        cloud_id=instance.cloud_id,
        pool_id=instance.pool_id,
        region=pool.region,
        zone=pool.zone,
        instance_type=pool.instance_type,
        lifecycle=instance.lifecycle,  # type: ignore[arg-type]
        state=instance.state,
        last_switch_at=instance.last_switch_at,
        created_at=instance.created_at,
    )


async def _agent_out(session: AsyncSession, agent: Agent) -> AgentOut:
    ids = await service.instance_ids(session, [agent.id])
    return agent_out(agent, ids.get(agent.id))


def _report_out(result: ReportResult, response: Response) -> ReportOut:
    if result.duplicate:
        response.status_code = 200
    return ReportOut(
        report_id=result.report_id,
        kind=result.kind,  # type: ignore[arg-type]
        duplicate=result.duplicate,
        received_at=result.received_at,
        result=result.result,
    )


# -- agents ------------------------------------------------------------------------------------


@router.post(
    "/agents/register",
    response_model=AgentRegistered,
    status_code=201,
    openapi_extra=CLIENT,
    responses={200: {"description": "Re-registered: same agent, token rotated"}},
)
async def register_agent(
    data: AgentRegister,
    request: Request,
    response: Response,
    session: DbSession,
    tenant: TenantDep,
    settings: Settings,
) -> AgentRegistered:
    """Register an agent with a client token (201); the same name again rotates its token (200).

    The response holds the agent's token (scope pricing:agent), shown this once.
    """
    ctx = get_context(request)
    reg = await service.register_agent(
        session,
        tenant,
        data.model_dump(),
        known_scopes=frozenset(ctx.permissions),
        role_scopes=ctx.scopes_by_role,
        token_days=settings.agent_token_days,
    )
    if not reg.created:
        response.status_code = 200
        # The old tokens are revoked: they must stop working at once in this process too.
        ctx.forget_credentials()
    _, pool = await service.get_instance(session, tenant, reg.instance.id)
    return AgentRegistered(
        agent=agent_out(reg.agent, reg.instance.id),
        instance=instance_out(reg.instance, pool),
        token=reg.token,
    )


@router.get("/agents", response_model=AgentPage, openapi_extra=ANY_CALLER)
async def list_agents(
    session: DbSession,
    tenant: TenantDep,
    status: AgentStatus | None = None,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> AgentPage:
    """The caller's agents by id (admins: every client's), optionally by status; cursor paged."""
    agents, nxt = await service.list_agents(session, tenant, status, cursor=cursor, limit=limit)
    ids = await service.instance_ids(session, [a.id for a in agents])
    return AgentPage(items=[agent_out(a, ids.get(a.id)) for a in agents], next_cursor=nxt)


@router.get("/agents/{agent_id}", response_model=AgentOut, openapi_extra=ANY_CALLER)
async def get_agent(agent_id: IdPath, session: DbSession, tenant: TenantDep) -> AgentOut:
    """One agent (404 for another client's)."""
    return await _agent_out(session, await service.get_agent(session, tenant, agent_id))


@router.delete("/agents/{agent_id}", openapi_extra=ANY_CALLER, **NO_CONTENT)
async def delete_agent(
    agent_id: IdPath, request: Request, session: DbSession, tenant: TenantDep
) -> Response:
    """Delete an agent with its instance and history (client admin); its token stops working."""
    await service.delete_agent(session, tenant, agent_id)
    get_context(request).forget_credentials()
    return Response(status_code=204)


@router.post("/agents/{agent_id}/heartbeat", response_model=HeartbeatOut, openapi_extra=AGENT)
async def heartbeat(
    agent_id: IdPath, session: DbSession, tenant: TenantDep, data: HeartbeatIn | None = None
) -> HeartbeatOut:
    """The agent is alive (an offline agent comes back online); pending commands count."""
    agent, pending = await service.heartbeat(
        session, tenant, agent_id, version=data.version if data else None
    )
    out = await _agent_out(session, agent)
    return HeartbeatOut(**out.model_dump(), pending_commands=pending)


@router.get(
    "/agents/{agent_id}/replica-config", response_model=ReplicaConfig, openapi_extra=ANY_CALLER
)
async def get_replica_config(
    agent_id: IdPath, session: DbSession, tenant: TenantDep
) -> ReplicaConfig:
    """The agent's replica settings (its client, or the agent itself)."""
    agent = await service.get_replica_config(session, tenant, agent_id)
    return ReplicaConfig.model_validate(agent.replica_config or {})


@router.put("/agents/{agent_id}/replica-config", response_model=ReplicaConfig, openapi_extra=CLIENT)
async def set_replica_config(
    agent_id: IdPath, data: ReplicaConfig, session: DbSession, tenant: TenantDep
) -> ReplicaConfig:
    """Replace the agent's replica settings (its client)."""
    agent = await service.set_replica_config(session, tenant, agent_id, data.model_dump())
    return ReplicaConfig.model_validate(agent.replica_config)


# -- reports -----------------------------------------------------------------------------------


@router.post("/agents/{agent_id}/reports/pricing", **REPORTED)
async def report_prices(
    agent_id: IdPath,
    data: PricingReport,
    response: Response,
    session: DbSession,
    tenant: TenantDep,
    settings: Settings,
) -> ReportOut:
    """Observed spot and on-demand prices (the agent itself); idempotent on ``report_id``.

    201 when stored, 200 with ``duplicate=true`` for a replay, 409 for the same id with
    another body, 422 beyond ``max_points_per_report`` points.
    """
    result = await reports.ingest_prices(session, tenant, agent_id, data, settings=settings)
    return _report_out(result, response)


@router.post("/agents/{agent_id}/reports/switch", **REPORTED)
async def report_switch(
    agent_id: IdPath, data: SwitchReport, response: Response, session: DbSession, tenant: TenantDep
) -> ReportOut:
    """The instance moved pools: placements, instance, command and switch history follow."""
    result = await reports.record_switch(session, tenant, agent_id, data)
    return _report_out(result, response)


@router.post("/agents/{agent_id}/reports/termination", **REPORTED)
async def report_termination(
    agent_id: IdPath,
    data: TerminationReport,
    response: Response,
    session: DbSession,
    tenant: TenantDep,
    settings: Settings,
) -> ReportOut:
    """A termination notice: one interruption per cloud instance, a replica takes over."""
    result = await reports.record_termination(session, tenant, agent_id, data, settings=settings)
    return _report_out(result, response)


@router.post("/agents/{agent_id}/reports/rebalance", **REPORTED)
async def report_rebalance(
    agent_id: IdPath,
    data: RebalanceReport,
    response: Response,
    session: DbSession,
    tenant: TenantDep,
) -> ReportOut:
    """A rebalance recommendation (recorded once per cloud instance)."""
    result = await reports.record_rebalance(session, tenant, agent_id, data)
    return _report_out(result, response)


@router.post("/agents/{agent_id}/reports/cleanup", **REPORTED)
async def report_cleanup(
    agent_id: IdPath, data: CleanupReport, response: Response, session: DbSession, tenant: TenantDep
) -> ReportOut:
    """Resources the agent cleaned up after a switch."""
    result = await reports.record_cleanup(session, tenant, agent_id, data)
    return _report_out(result, response)


# -- instances ---------------------------------------------------------------------------------


@router.get("/instances", response_model=InstancePage, openapi_extra=ANY_CALLER)
async def list_instances(
    session: DbSession,
    tenant: TenantDep,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> InstancePage:
    """The caller's instances by id (an agent: its own); cursor paged."""
    rows, nxt = await service.list_instances(session, tenant, cursor=cursor, limit=limit)
    return InstancePage(items=[instance_out(i, p) for i, p in rows], next_cursor=nxt)


@router.get("/instances/{instance_id}", response_model=InstanceOut, openapi_extra=ANY_CALLER)
async def get_instance(instance_id: IdPath, session: DbSession, tenant: TenantDep) -> InstanceOut:
    """One instance (404 for another client's)."""
    return instance_out(*await service.get_instance(session, tenant, instance_id))
