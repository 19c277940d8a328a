"""Routes: decisions, switch commands and decision engines (thin layer over the services)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    DEFAULT_LIMIT,
    DbSession,
    IdCursor,
    IdPath,
    Limit,
    Line,
    OptionalId,
    get_context,
    requires_scopes,
)
from platform_pricing.models import Command, Decision
from platform_pricing.routes.deps import Settings, TenantDep
from platform_pricing.schemas.decisions import (
    AckIn,
    CommandList,
    CommandOut,
    CommandPage,
    CommandStatus,
    DecisionOut,
    DecisionPage,
    EngineList,
    EngineOut,
    ForceSwitchIn,
    IssueOut,
    Outcome,
    PoolOut,
)
from platform_pricing.service import commands, decisions

router = APIRouter()

ANY = requires_scopes()  # clients, agents and admins: the service checks the tenant
AGENT = requires_scopes("pricing:agent")
CLIENT_ADMIN = requires_scopes("pricing:client_admin")
ADMIN = requires_scopes("pricing:admin")
EngineName = Annotated[Line, Path(min_length=1, max_length=200, description="An engine's name")]


def installed_engines(request: Request) -> dict[str, decisions.InstalledEngine]:
    """The decision engines of the active plugins (collected per request: plugins may be
    isolated at run time)."""
    return decisions.collect_engines(get_context(request).plugins)


Engines = Annotated[dict[str, decisions.InstalledEngine], Depends(installed_engines)]


def decision_out(row: Decision, details: dict[str, Any] | None = None) -> DecisionOut:
    """The API view of a decision row (``details``: the engine's extras, when just made)."""
    return DecisionOut(
        id=row.id,
        client_id=row.client_id,
        instance_id=row.instance_id,
        engine=row.engine,
        requested_engine=row.requested_engine,
        fallback_reason=row.fallback_reason,
        outcome=row.outcome,  # type: ignore[arg-type]
        target_pool_id=row.target_pool_id,
        expected_saving_per_hour=row.expected_saving_per_hour,
        reason=row.reason,
        elapsed_ms=row.elapsed_ms,
        created_at=row.created_at,
        inputs=row.inputs,
        details=details,
        model_name=row.model_name,
        model_version=row.model_version,
    )


async def _commands_out(session: AsyncSession, rows: list[Command]) -> list[CommandOut]:
    pools = await commands.pools_of(session, rows)
    out = []
    for c in rows:
        pool = pools.get(c.target_pool_id) if c.target_pool_id is not None else None
        out.append(
            CommandOut(
                id=c.id,
                client_id=c.client_id,
                agent_id=c.agent_id,
                instance_id=c.instance_id,
                kind=c.kind,
                target_pool_id=c.target_pool_id,
                target=PoolOut(
                    id=pool.id, region=pool.region, zone=pool.zone, instance_type=pool.instance_type
                )
                if pool is not None
                else None,
                target_lifecycle=c.target_lifecycle,  # type: ignore[arg-type]
                decision_id=c.decision_id,
                forced=c.forced,
                reason=c.reason,
                status=c.status,  # type: ignore[arg-type]
                issued_by=c.issued_by,
                deliveries=c.deliveries,
                created_at=c.created_at,
                last_delivered_at=c.last_delivered_at,
                acknowledged_at=c.acknowledged_at,
                result=c.result,
            )
        )
    return out


# -- decisions ------------------------------------------------------------------------------


@router.post("/agents/{agent_id}/decide", response_model=DecisionOut, openapi_extra=ANY)
async def decide(
    agent_id: IdPath, session: DbSession, tenant: TenantDep, settings: Settings, engines: Engines
) -> DecisionOut:
    """Decide for the agent's instance with the client's engine (fallback: rules); stored.

    409 when no on-demand price is known yet for the instance's type and region.
    """
    made = await decisions.decide(
        session, tenant, agent_id, installed=engines, settings=settings, store=True
    )
    return decision_out(made.row, made.details)


@router.get(
    "/agents/{agent_id}/switch-recommendation", response_model=DecisionOut, openapi_extra=ANY
)
async def switch_recommendation(
    agent_id: IdPath, session: DbSession, tenant: TenantDep, settings: Settings, engines: Engines
) -> DecisionOut:
    """What the engine recommends now, like ``decide`` but NOT stored (``id`` is null)."""
    made = await decisions.decide(
        session, tenant, agent_id, installed=engines, settings=settings, store=False
    )
    return decision_out(made.row, made.details)


@router.post("/agents/{agent_id}/issue-switch-command", response_model=IssueOut, openapi_extra=ANY)
async def issue_switch_command(
    agent_id: IdPath, session: DbSession, tenant: TenantDep, settings: Settings, engines: Engines
) -> IssueOut:
    """Decide (stored) and, on ``switch``/``on-demand``, issue a command to the agent,
    superseding its pending ones; on ``stay`` ``command`` is null and ``reason`` says why."""
    issued = await commands.issue_switch_command(
        session, tenant, agent_id, installed=engines, settings=settings
    )
    command = (await _commands_out(session, [issued.command]))[0] if issued.command else None
    return IssueOut(
        decision=decision_out(issued.decision.row, issued.decision.details),
        command=command,
        reason=issued.reason,
    )


@router.get("/decisions", response_model=DecisionPage, openapi_extra=ANY)
async def list_decisions(
    session: DbSession,
    tenant: TenantDep,
    instance_id: OptionalId = None,
    outcome: Outcome | None = None,
    engine: Annotated[Line | None, Query(max_length=64)] = None,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> DecisionPage:
    """Stored decisions, newest first, filtered by instance, outcome and engine."""
    rows, nxt = await decisions.list_decisions(
        session,
        tenant,
        instance_id=instance_id,
        outcome=outcome,
        engine=engine,
        cursor=cursor,
        limit=limit,
    )
    return DecisionPage(items=[decision_out(r) for r in rows], next_cursor=nxt)


@router.get("/decisions/{decision_id}", response_model=DecisionOut, openapi_extra=ANY)
async def get_decision(decision_id: IdPath, session: DbSession, tenant: TenantDep) -> DecisionOut:
    """One stored decision."""
    return decision_out(await decisions.get_decision(session, tenant, decision_id))


# -- commands -------------------------------------------------------------------------------


@router.post(
    "/instances/{instance_id}/force-switch",
    response_model=CommandOut,
    status_code=201,
    openapi_extra=CLIENT_ADMIN,
)
async def force_switch(
    instance_id: IdPath, data: ForceSwitchIn, session: DbSession, tenant: TenantDep
) -> CommandOut:
    """Issue a forced command (no engine, no anti-flapping) to a pool and lifecycle."""
    command = await commands.force_switch(session, tenant, instance_id, data.model_dump())
    return (await _commands_out(session, [command]))[0]


@router.get("/agents/{agent_id}/commands", response_model=CommandList, openapi_extra=AGENT)
async def poll_commands(agent_id: IdPath, session: DbSession, tenant: TenantDep) -> CommandList:
    """The agent's pending commands, oldest first (each poll counts a delivery until
    acknowledged); not paged: every pending command is delivered on each poll."""
    rows = await commands.poll(session, tenant, agent_id)
    return CommandList(items=await _commands_out(session, rows))


@router.post(
    "/agents/{agent_id}/commands/{command_id}/ack", response_model=CommandOut, openapi_extra=AGENT
)
async def ack_command(
    agent_id: IdPath, command_id: IdPath, data: AckIn, session: DbSession, tenant: TenantDep
) -> CommandOut:
    """Acknowledge a command with its result; the same result again is a no-op, a different
    one a 409."""
    command = await commands.ack(
        session, tenant, agent_id, command_id, success=data.success, message=data.message
    )
    return (await _commands_out(session, [command]))[0]


@router.get("/commands", response_model=CommandPage, openapi_extra=ANY)
async def list_commands(
    session: DbSession,
    tenant: TenantDep,
    status: CommandStatus | None = None,
    agent_id: OptionalId = None,
    instance_id: OptionalId = None,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> CommandPage:
    """Commands, newest first, filtered by status, agent and instance."""
    rows, nxt = await commands.list_commands(
        session,
        tenant,
        status=status,
        agent_id=agent_id,
        instance_id=instance_id,
        cursor=cursor,
        limit=limit,
    )
    return CommandPage(items=await _commands_out(session, rows), next_cursor=nxt)


# -- engines --------------------------------------------------------------------------------


@router.get("/engines", response_model=EngineList, openapi_extra=ANY)
async def list_engines(
    session: DbSession, tenant: TenantDep, settings: Settings, engines: Engines
) -> EngineList:
    """The installed decision engines and the platform's active and fallback choice."""
    rows = await decisions.list_engines(session, engines, settings)
    return EngineList(items=[EngineOut(**r) for r in rows])


async def _set(
    session: AsyncSession, key: str, name: str, engines: Any, settings: Any
) -> EngineOut:
    await decisions.set_engine(session, key, name, engines)  # type: ignore[arg-type]
    rows = await decisions.list_engines(session, engines, settings)
    return EngineOut(**next(r for r in rows if r["name"] == name))


@router.post("/engines/{name}/activate", response_model=EngineOut, openapi_extra=ADMIN)
async def activate_engine(
    name: EngineName, session: DbSession, tenant: TenantDep, settings: Settings, engines: Engines
) -> EngineOut:
    """Make ``name`` the platform's engine for clients that chose none (404: unknown)."""
    return await _set(session, "active", name, engines, settings)


@router.post("/engines/{name}/fallback", response_model=EngineOut, openapi_extra=ADMIN)
async def set_fallback_engine(
    name: EngineName, session: DbSession, tenant: TenantDep, settings: Settings, engines: Engines
) -> EngineOut:
    """Make ``name`` the engine that decides when the requested one fails (404: unknown)."""
    return await _set(session, "fallback", name, engines, settings)
