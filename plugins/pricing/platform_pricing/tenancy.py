"""Who is calling, as the pricing plugin sees it: the platform admin, a client or an agent.

A client is a tenant whose API identity is a core robot user; an agent is a robot user too.
Everything a client or agent can reach is filtered by its ``client_id``; anything else is
reported as *not found* (404), never *forbidden*, so ids of other tenants don't leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Forbidden, NotFound, Principal
from platform_pricing.models import Agent, Client, Instance

ADMIN_SCOPE = "pricing:admin"
CLIENT_SCOPE = "pricing:client"
CLIENT_ADMIN_SCOPE = "pricing:client_admin"
AGENT_SCOPE = "pricing:agent"


@dataclass(frozen=True)
class Tenant:
    """The caller: ``admin`` (every client), a ``client`` or an ``agent`` (of one client)."""

    kind: Literal["admin", "client", "agent"]
    username: str
    client_id: int | None = None
    agent_id: int | None = None
    client_admin: bool = False

    @property
    def is_admin(self) -> bool:
        """True for the platform's pricing admins, who see every client."""
        return self.kind == "admin"

    def sees(self, client_id: int) -> bool:
        """True when rows of ``client_id`` are visible to this caller."""
        return self.is_admin or self.client_id == client_id

    def where(self, column: Any) -> Any:
        """A WHERE clause limiting ``column`` (a ``client_id``) to this caller's rows."""
        return column.is_not(None) if self.is_admin else column == self.client_id


async def resolve(session: AsyncSession, principal: Principal) -> Tenant:
    """The tenant behind ``principal``: its agent, its client, or the admin.

    Agents and clients are matched by their robot user; a user who is neither gets the
    admin view only with scope ``pricing:admin``, else ``Forbidden``.
    """
    if principal.has(AGENT_SCOPE):
        agent = (
            await session.execute(
                select(Agent.id, Agent.client_id)
                .join(Client, Client.id == Agent.client_id)
                .where(Agent.user_id == principal.user_id, Client.is_active)
            )
        ).first()
        if agent is not None:
            return Tenant("agent", principal.username, agent.client_id, agent.id)
    if principal.has(CLIENT_SCOPE):
        client_id = await session.scalar(
            select(Client.id).where(Client.user_id == principal.user_id, Client.is_active)
        )
        if client_id is not None:
            return Tenant(
                "client",
                principal.username,
                client_id,
                client_admin=principal.has(CLIENT_ADMIN_SCOPE),
            )
    if principal.has(ADMIN_SCOPE):
        return Tenant("admin", principal.username, client_admin=True)
    raise Forbidden("this caller is not a pricing client, agent or admin")


def require_client_admin(tenant: Tenant) -> None:
    """Refuse unless the caller is a client admin (scope ``pricing:client_admin``) or admin."""
    if not (tenant.is_admin or (tenant.kind == "client" and tenant.client_admin)):
        raise Forbidden("this operation needs a client admin token (scope pricing:client_admin)")


def require_agent(tenant: Tenant, agent_id: int | None = None) -> int:
    """Refuse unless the caller is an agent (``agent_id`` itself when given); its id."""
    if tenant.kind != "agent" or tenant.agent_id is None:
        raise Forbidden("this operation needs an agent token (scope pricing:agent)")
    if agent_id is not None and agent_id != tenant.agent_id:
        raise NotFound(f"agent {agent_id} not found")
    return tenant.agent_id


async def get_client(session: AsyncSession, tenant: Tenant, client_id: int) -> Client:
    """A client visible to ``tenant``, or 404."""
    client = await session.get(Client, client_id)
    if client is None or not tenant.sees(client.id):
        raise NotFound(f"client {client_id} not found")
    return client


async def get_agent(session: AsyncSession, tenant: Tenant, agent_id: int) -> Agent:
    """An agent visible to ``tenant`` (an agent sees only itself), or 404."""
    agent = await session.get(Agent, agent_id)
    if (
        agent is None
        or not tenant.sees(agent.client_id)
        or (tenant.kind == "agent" and tenant.agent_id != agent.id)
    ):
        raise NotFound(f"agent {agent_id} not found")
    return agent


async def get_instance(session: AsyncSession, tenant: Tenant, instance_id: int) -> Instance:
    """An instance visible to ``tenant`` (an agent sees only its own), or 404."""
    instance = await session.get(Instance, instance_id)
    if (
        instance is None
        or not tenant.sees(instance.client_id)
        or (tenant.kind == "agent" and tenant.agent_id != instance.agent_id)
    ):
        raise NotFound(f"instance {instance_id} not found")
    return instance


async def instance_of_agent(session: AsyncSession, agent_id: int) -> Instance:
    """The instance an agent runs (every registered agent has one)."""
    instance = await session.scalar(select(Instance).where(Instance.agent_id == agent_id))
    if instance is None:
        raise NotFound(f"agent {agent_id} has no instance")
    return instance
