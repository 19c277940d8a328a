"""Agents and their instances: registration (token rotation), heartbeats, liveness, replicas.

An agent is a core robot user (role ``member``) holding one active token scoped
``pricing:agent``. Registering again under the same name (same client) keeps the agent and
its instance, rotates the token (every older one is revoked) and updates the instance.
Every instance has exactly one open :class:`Placement` (``ended_at`` null): the pool and
lifecycle it runs in since ``started_at``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    Forbidden,
    create_token,
    create_user,
    get_user,
    list_tokens,
    lock_row,
    page_by_id,
    publish,
    utcnow,
)
from platform_pricing import events, tenancy
from platform_pricing.models import Agent, Command, Instance, Placement, Pool
from platform_pricing.service.agent_settings import require_enabled
from platform_pricing.service.clients import retire_users
from platform_pricing.service.pools import pool_id
from platform_pricing.tenancy import AGENT_SCOPE, Tenant

AGENT_USER_PREFIX = "pricing-agent-"


@dataclass(frozen=True)
class Registration:
    """The outcome of a registration: ``created`` is False for a re-registration."""

    agent: Agent
    instance: Instance
    token: str
    created: bool


async def register_agent(
    session: AsyncSession,
    tenant: Tenant,
    data: Mapping[str, Any],
    *,
    known_scopes: frozenset[str],
    role_scopes: Mapping[str, frozenset[str]],
    now: datetime | None = None,
    token_days: int = 0,
) -> Registration:
    """Register an agent of the calling client, or re-register it (rotating its token).

    The agent's token expires after ``token_days`` (``[plugins.pricing]
    agent_token_days``; 0: never); re-registering issues a fresh one.

    ``data`` holds ``name``, ``version`` and ``instance`` (``cloud_id``, ``region``, ``zone``,
    ``instance_type``, ``lifecycle``). ``Conflict`` when another of the client's instances
    already has the cloud id.
    """
    if tenant.kind != "client" or tenant.client_id is None:
        raise Forbidden("registering an agent needs a client token (scope pricing:client)")
    now = now or utcnow()
    client_id = tenant.client_id
    spec = data["instance"]
    pid = await pool_id(session, spec["region"], spec["zone"], spec["instance_type"])
    agent = await session.scalar(
        select(Agent).where(Agent.client_id == client_id, Agent.name == data["name"])
    )
    created = agent is None
    await _check_cloud_id(session, client_id, spec["cloud_id"], agent.id if agent else None)
    if agent is None:
        user = await create_user(
            session, f"{AGENT_USER_PREFIX}{client_id}-{uuid.uuid4().hex[:16]}", "member", None
        )
        agent = Agent(
            client_id=client_id,
            user_id=user.id,
            name=data["name"],
            version=data.get("version") or "",
            status="online",
            replica_config={},
            registered_at=now,
            last_heartbeat_at=now,
        )
        session.add(agent)
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError as exc:  # the same name registered concurrently
            raise Conflict(f"agent {data['name']!r} is being registered concurrently") from exc
        instance = Instance(
            client_id=client_id,
            agent_id=agent.id,
            cloud_id=spec["cloud_id"],
            pool_id=pid,
            lifecycle=spec["lifecycle"],
            state="running",
            created_at=now,
        )
        session.add(instance)
        await session.flush()
        _open_placement(session, instance, now)
    else:
        user = await get_user(session, agent.user_id)
        await _revoke_tokens(session, agent.user_id)
        agent.version = data.get("version") or agent.version
        agent.registered_at = now
        agent.last_heartbeat_at = now
        if agent.status != "online":
            agent.status, agent.offline_since = "online", None
            _announce_online(session, agent, tenant)
        instance = await tenancy.instance_of_agent(session, agent.id)
        instance = await lock_row(session, Instance, instance.id)  # as switches and promotions
        instance.cloud_id = spec["cloud_id"]
        instance.state = "running"
        if instance.pool_id != pid or instance.lifecycle != spec["lifecycle"]:
            await close_placement(session, instance.id, now)
            instance.pool_id, instance.lifecycle = pid, spec["lifecycle"]
            _open_placement(session, instance, now)
    _, secret = await create_token(
        session,
        user,
        scopes=[AGENT_SCOPE],
        known_scopes=known_scopes,
        role_scopes=role_scopes.get(user.role, frozenset()),
        expires_in=timedelta(days=token_days) if token_days else None,
        name=f"agent {agent.name}"[:100],
    )
    await session.flush()
    publish(
        session,
        events.AgentRegistered(
            client_id=client_id, agent_id=agent.id, agent=agent.name, instance_id=instance.id
        ),
        actor=tenant.username,
    )
    return Registration(agent, instance, secret, created)


async def list_agents(
    session: AsyncSession,
    tenant: Tenant,
    status: str | None,
    *,
    cursor: int | None = None,
    limit: int | None = None,
) -> tuple[list[Agent], int | None]:
    """A page of the caller's agents (an agent sees itself only) by id, optionally by status,
    and the next page's cursor (None at the end; ``limit`` None: every agent)."""
    query = select(Agent).where(tenant.where(Agent.client_id))
    if tenant.kind == "agent":
        query = query.where(Agent.id == tenant.agent_id)
    if status is not None:
        query = query.where(Agent.status == status)
    return await page_by_id(session, query, Agent.id, cursor=cursor, limit=limit)


async def get_agent(session: AsyncSession, tenant: Tenant, agent_id: int) -> Agent:
    """An agent the caller may see (404 otherwise)."""
    return await tenancy.get_agent(session, tenant, agent_id)


async def delete_agent(session: AsyncSession, tenant: Tenant, agent_id: int) -> None:
    """Delete an agent with its instance and history; its robot user is retired."""
    agent = await tenancy.get_agent(session, tenant, agent_id)
    tenancy.require_client_admin(tenant)
    await retire_users(session, [agent.user_id])
    await session.delete(agent)
    await session.flush()


async def heartbeat(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    *,
    version: str | None = None,
    now: datetime | None = None,
) -> tuple[Agent, int]:
    """Record a heartbeat of the calling agent; the agent and its pending commands count.

    An offline agent comes back online (``AgentOnline`` is published once per transition).
    """
    agent = await tenancy.get_agent(session, tenant, agent_id)
    tenancy.require_agent(tenant, agent.id)
    require_enabled(agent)
    now = now or utcnow()
    if version:
        agent.version = version
    agent.last_heartbeat_at = now
    if agent.status != "online":
        agent.status, agent.offline_since = "online", None
        _announce_online(session, agent, tenant)
    await session.flush()
    pending = await session.scalar(
        select(func.count())
        .select_from(Command)
        .where(Command.agent_id == agent.id, Command.status == "pending")
    )
    return agent, int(pending or 0)


async def mark_offline(session: AsyncSession, now: datetime, after_seconds: int) -> int:
    """Mark online agents silent for more than ``after_seconds`` offline; how many changed.

    One UPDATE .. RETURNING: concurrent runs never both flip (and announce) the same agent,
    so ``AgentOffline`` is published once per transition.
    """
    cutoff = now - timedelta(seconds=after_seconds)
    rows = (
        await session.execute(
            update(Agent)
            .where(Agent.status == "online", Agent.last_heartbeat_at < cutoff)
            .values(status="offline", offline_since=now)
            .returning(Agent.id, Agent.client_id, Agent.name, Agent.last_heartbeat_at)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for row in rows:
        publish(
            session,
            events.AgentOffline(
                client_id=row.client_id,
                agent_id=row.id,
                agent=row.name,
                last_heartbeat_at=row.last_heartbeat_at.isoformat(),
            ),
            actor="pricing.agent-health",
        )
    return len(rows)


# -- replica settings --------------------------------------------------------------------------


async def get_replica_config(session: AsyncSession, tenant: Tenant, agent_id: int) -> Agent:
    """The agent whose replica settings the caller (its client or itself) reads."""
    return await tenancy.get_agent(session, tenant, agent_id)


async def set_replica_config(
    session: AsyncSession, tenant: Tenant, agent_id: int, config: Mapping[str, Any]
) -> Agent:
    """Replace an agent's replica settings (its client or the admin; not the agent)."""
    agent = await tenancy.get_agent(session, tenant, agent_id)
    if tenant.kind == "agent":
        raise Forbidden("an agent cannot change its replica settings; use a client token")
    agent.replica_config = dict(config)
    await session.flush()
    return agent


# -- instances ---------------------------------------------------------------------------------


async def list_instances(
    session: AsyncSession,
    tenant: Tenant,
    *,
    cursor: int | None = None,
    limit: int | None = None,
) -> tuple[list[tuple[Instance, Pool]], int | None]:
    """A page of the caller's instances with their pools, by id (an agent sees its own only),
    and the next page's cursor (None at the end; ``limit`` None: every instance)."""
    query = (
        select(Instance, Pool)
        .join(Pool, Pool.id == Instance.pool_id)
        .where(tenant.where(Instance.client_id))
    )
    if tenant.kind == "agent":
        query = query.where(Instance.agent_id == tenant.agent_id)
    rows, nxt = await page_by_id(
        session, query, Instance.id, cursor=cursor, limit=limit, scalars=False
    )
    return [(i, p) for i, p in rows], nxt


async def get_instance(
    session: AsyncSession, tenant: Tenant, instance_id: int
) -> tuple[Instance, Pool]:
    """An instance the caller may see, with its pool (404 otherwise)."""
    instance = await tenancy.get_instance(session, tenant, instance_id)
    pool = await session.get(Pool, instance.pool_id)
    assert pool is not None  # a foreign key
    return instance, pool


async def instance_ids(session: AsyncSession, agent_ids: list[int]) -> dict[int, int]:
    """Instance id by agent id."""
    if not agent_ids:
        return {}
    rows = await session.execute(
        select(Instance.agent_id, Instance.id).where(Instance.agent_id.in_(agent_ids))
    )
    return {a: i for a, i in rows.all()}


# -- placements --------------------------------------------------------------------------------


def _open_placement(session: AsyncSession, instance: Instance, at: datetime) -> Placement:
    placement = Placement(
        client_id=instance.client_id,
        instance_id=instance.id,
        pool_id=instance.pool_id,
        lifecycle=instance.lifecycle,
        started_at=at,
    )
    session.add(placement)
    return placement


async def open_placement(session: AsyncSession, instance: Instance, at: datetime) -> Placement:
    """Open a placement of ``instance`` in its current pool and lifecycle from ``at``."""
    placement = _open_placement(session, instance, at)
    await session.flush()
    return placement


async def close_placement(session: AsyncSession, instance_id: int, at: datetime) -> int:
    """Close the instance's open placement(s) at ``at``; how many were closed."""
    result = await session.execute(
        update(Placement)
        .where(Placement.instance_id == instance_id, Placement.ended_at.is_(None))
        .values(ended_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _check_cloud_id(
    session: AsyncSession, client_id: int, cloud_id: str, agent_id: int | None
) -> None:
    other = await session.scalar(
        select(Instance.agent_id).where(
            Instance.client_id == client_id, Instance.cloud_id == cloud_id
        )
    )
    if other is not None and other != agent_id:
        raise Conflict(
            f"cloud instance {cloud_id!r} already belongs to another agent of this client",
            field="instance.cloud_id",
        )


def _announce_online(session: AsyncSession, agent: Agent, tenant: Tenant) -> None:
    publish(
        session,
        events.AgentOnline(client_id=agent.client_id, agent_id=agent.id, agent=agent.name),
        actor=tenant.username,
    )


async def _revoke_tokens(session: AsyncSession, user_id: int) -> None:
    now = utcnow()
    for token in await list_tokens(session, user_id):
        if token.revoked_at is None:
            token.revoked_at = now
