"""Routes: an agent enabled or disabled by its client, and the agent's own settings."""

from __future__ import annotations

from fastapi import APIRouter

from platform_core import DbSession, IdPath, requires_scopes
from platform_pricing.routes.decisions import Engines
from platform_pricing.routes.deps import TenantDep
from platform_pricing.schemas.agent_settings import AgentConfig, AgentEnabled, ToggleEnabled
from platform_pricing.service import agent_settings as service

router = APIRouter()

ANY_CALLER = requires_scopes()
CLIENT = requires_scopes("pricing:client")


@router.post(
    "/agents/{agent_id}/toggle-enabled",
    response_model=AgentEnabled,
    openapi_extra=CLIENT,
    responses={409: {"description": "The agent is already in that state (current_state)"}},
)
async def toggle_enabled(
    agent_id: IdPath, session: DbSession, tenant: TenantDep, data: ToggleEnabled | None = None
) -> AgentEnabled:
    """Enable or disable an agent (client admin); 409 naming the state when it is already so.

    Without a body the flag flips from the value read; a concurrent toggle that changed it
    first makes this one a 409 naming the state, so no toggle overwrites another.

    A disabled agent's reports, heartbeats and command polls are refused (409), and no
    command is issued to it.
    """
    wanted = data.enabled if data is not None else None
    agent, when = await service.toggle(session, tenant, agent_id, wanted)
    return AgentEnabled(agent_id=agent.id, enabled=agent.enabled, changed_at=when)


@router.get("/agents/{agent_id}/config", response_model=AgentConfig, openapi_extra=ANY_CALLER)
async def get_config(agent_id: IdPath, session: DbSession, tenant: TenantDep) -> AgentConfig:
    """The agent's settings (its client, the admin, or the agent itself with its token)."""
    agent = await service.get_config(session, tenant, agent_id)
    return AgentConfig.model_validate(agent.config or {})


@router.put("/agents/{agent_id}/config", response_model=AgentConfig, openapi_extra=CLIENT)
async def set_config(
    agent_id: IdPath, data: AgentConfig, session: DbSession, tenant: TenantDep, engines: Engines
) -> AgentConfig:
    """Replace the agent's settings (client admin); 422 naming each invalid field."""
    agent = await service.set_config(session, tenant, agent_id, data.model_dump(), engines)
    return AgentConfig.model_validate(agent.config)
