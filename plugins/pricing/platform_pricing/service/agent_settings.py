"""An agent's enabled flag and its own settings.

A client admin enables or disables its agents (``toggle``). The change is a compare-and-set
on the current value: two concurrent requests for the same state cannot both succeed, the
loser gets a 409 naming the state the agent is in. A disabled agent's reports and heartbeats
are refused with a 409 naming its state (:func:`require_enabled`), and no command is issued
to it (nor delivered: polling is refused too).

The agent's settings (``config``) are validated by
:class:`platform_pricing.schemas.agent_settings.AgentConfig`; its ``decision_engine`` must
be an installed engine (422 naming the field) and overrides the client's engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Conflict, Forbidden, NotFound, invalid, utcnow
from platform_pricing import tenancy
from platform_pricing.models import Agent
from platform_pricing.tenancy import Tenant


def state_name(enabled: bool) -> str:
    """``enabled`` or ``disabled``."""
    return "enabled" if enabled else "disabled"


def require_enabled(agent: Agent) -> None:
    """Refuse (409 naming the state) anything an agent does while disabled."""
    if not agent.enabled:
        raise Conflict(
            f"agent {agent.id} is disabled by its client; enable it first",
            current_state="disabled",
        )


async def require_enabled_id(session: AsyncSession, agent_id: int) -> None:
    """:func:`require_enabled` for an agent known by id (no command goes to a disabled one)."""
    enabled = await session.scalar(select(Agent.enabled).where(Agent.id == agent_id))
    if enabled is False:
        raise Conflict(
            f"agent {agent_id} is disabled by its client: no command is issued to it",
            current_state="disabled",
        )


async def toggle(
    session: AsyncSession, tenant: Tenant, agent_id: int, enabled: bool | None
) -> tuple[Agent, datetime]:
    """Set the agent's ``enabled`` flag (client admin or admin) from the other value; None
    flips the value just read.

    One ``UPDATE ... WHERE enabled = :other``: a request finding the agent already in the
    wanted state (another request won the race) is a 409 naming that state.
    """
    agent = await tenancy.get_agent(session, tenant, agent_id)
    tenancy.require_client_admin(tenant)
    if enabled is None:
        enabled = not agent.enabled
    now = utcnow()
    changed = (
        await session.execute(
            update(Agent)
            .where(Agent.id == agent.id, Agent.enabled.is_(not enabled))
            .values(enabled=enabled)
            .returning(Agent.id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    await session.refresh(agent)
    if changed is None:
        state = state_name(agent.enabled)
        raise Conflict(f"agent {agent.id} is already {state}", current_state=state)
    return agent, now


async def get_config(session: AsyncSession, tenant: Tenant, agent_id: int) -> Agent:
    """The agent whose settings the caller (its client, the admin, or the agent) reads."""
    return await tenancy.get_agent(session, tenant, agent_id)


async def set_config(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    config: Mapping[str, Any],
    installed_engines: Mapping[str, Any],
) -> Agent:
    """Replace the agent's settings (client admin or admin); 422 for an unknown engine."""
    agent = await tenancy.get_agent(session, tenant, agent_id)
    if tenant.kind == "agent":
        raise Forbidden("an agent cannot change its settings; use a client admin token")
    tenancy.require_client_admin(tenant)
    engine = config.get("decision_engine")
    if engine is not None and engine not in installed_engines:
        raise invalid(
            "decision_engine",
            f"no installed engine {engine!r} (installed: {', '.join(sorted(installed_engines))})",
            location="body",
        )
    agent.config = dict(config)
    await session.flush()
    return agent


async def engine_override(session: AsyncSession, agent_id: int) -> str | None:
    """The agent's ``decision_engine`` override, if any."""
    config = await session.scalar(select(Agent.config).where(Agent.id == agent_id))
    if config is None:
        raise NotFound(f"agent {agent_id} not found")
    value = config.get("decision_engine")
    return value if isinstance(value, str) else None
