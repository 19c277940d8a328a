"""Commands: switch orders for agents, issued from a decision or forced by a client admin.

A command is ``pending`` until its agent acknowledges it; every poll of the agent's commands
returns all its pending commands and counts a delivery (``deliveries``, ``last_delivered_at``),
so a command lost on the way is simply delivered again. Issuing a command supersedes the
agent's older pending ones (status ``superseded``: never delivered again, cannot be
acknowledged). An acknowledgement is idempotent on its outcome: acknowledging an acknowledged
command again with the same ``success`` is a 200 returning the stored command unchanged (the
first message is kept; a switch report naming the command counts as a success); with the
opposite ``success`` it is a 409. Acknowledging a superseded or cancelled command is a 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    Forbidden,
    NotFound,
    invalid,
    lock_row,
    page_by_id,
    publish,
    utcnow,
)
from platform_pricing.events import SwitchIssued
from platform_pricing.models import Agent, Command, Instance, Pool
from platform_pricing.service import decisions, pools
from platform_pricing.service.agent_settings import require_enabled_id
from platform_pricing.settings import PricingSettings
from platform_pricing.tenancy import (
    Tenant,
    get_agent,
    get_instance,
    require_agent,
    require_client_admin,
)

SWITCH_OUTCOMES = ("switch", "on-demand")


def ack_result(success: bool, message: str) -> str:
    """The stored ``result`` of an acknowledgement: ``succeeded[: message]`` or ``failed[...]``."""
    word = "succeeded" if success else "failed"
    return f"{word}: {message}"[:500] if message else word


def succeeded(result: str) -> bool:
    """Whether a stored ``result`` reports success (anything but ``failed...``)."""
    return not result.startswith("failed")


async def _lock_agent(session: AsyncSession, agent_id: int) -> None:
    """Serialise the writers of one agent's commands (issue, poll, acknowledge) until the
    commit: the agent's row locked first, then its commands (one order for every writer)."""
    await lock_row(session, Agent, agent_id)


async def create_command(
    session: AsyncSession,
    *,
    instance: Instance,
    target_pool_id: int | None,
    target_lifecycle: str,
    reason: str,
    forced: bool,
    issued_by: str,
    decision_id: int | None = None,
    now: datetime | None = None,
) -> Command:
    """A pending command for the instance's agent, superseding its older pending ones, and its
    ``SwitchIssued`` event (same transaction)."""
    when = now or utcnow()
    await _lock_agent(session, instance.agent_id)
    await require_enabled_id(session, instance.agent_id)
    await session.execute(
        update(Command)
        .where(Command.agent_id == instance.agent_id, Command.status == "pending")
        .values(status="superseded")
        .execution_options(synchronize_session=False)
    )
    command = Command(
        client_id=instance.client_id,
        agent_id=instance.agent_id,
        instance_id=instance.id,
        kind="switch",
        target_pool_id=target_pool_id,
        target_lifecycle=target_lifecycle,
        decision_id=decision_id,
        forced=forced,
        reason=reason[:500],
        status="pending",
        issued_by=issued_by[:64],
        deliveries=0,
        created_at=when,
        result="",
    )
    session.add(command)
    await session.flush()
    publish(
        session,
        SwitchIssued(
            client_id=instance.client_id,
            command_id=command.id,
            agent_id=instance.agent_id,
            instance_id=instance.id,
            target_pool_id=target_pool_id,
            target_lifecycle=target_lifecycle,
            forced=forced,
            reason=command.reason,
        ),
        actor=issued_by,
    )
    return command


@dataclass
class Issued:
    """The decision behind an issue request and the command (None when the outcome is stay)."""

    decision: decisions.Made
    command: Command | None
    reason: str | None


async def issue_switch_command(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    *,
    installed: dict[str, decisions.InstalledEngine],
    settings: PricingSettings,
    now: datetime | None = None,
) -> Issued:
    """Decide for the agent's instance (stored); on ``switch``/``on-demand`` issue a command.

    Clients and admins only (an agent gets 403); 404 for an agent of another client.
    """
    if tenant.kind == "agent":
        await get_agent(session, tenant, agent_id)  # another agent's id stays a 404
        raise Forbidden("issuing commands needs a client token (scope pricing:client)")
    made = await decisions.decide(
        session, tenant, agent_id, installed=installed, settings=settings, now=now
    )
    row = made.row
    if row.outcome not in SWITCH_OUTCOMES:
        return Issued(made, None, f"the decision is {row.outcome}: {row.reason}")
    target = row.target_pool_id if row.outcome == "switch" else made.instance.pool_id
    command = await create_command(
        session,
        instance=made.instance,
        target_pool_id=target,
        target_lifecycle="spot" if row.outcome == "switch" else "on-demand",
        reason=row.reason,
        forced=False,
        issued_by=tenant.username,
        decision_id=row.id,
        now=row.created_at,
    )
    return Issued(made, command, None)


async def force_switch(
    session: AsyncSession, tenant: Tenant, instance_id: int, data: dict[str, Any]
) -> Command:
    """A forced command (no engine, no anti-flapping) to a pool and lifecycle.

    The target is ``pool_id`` or ``region``+``zone``+``instance_type`` (a pool the client has
    reported prices for or runs an instance in; 422 naming the field otherwise); on-demand
    without a target keeps the current pool. 409 when the instance already runs there.
    """
    instance = await get_instance(session, tenant, instance_id)
    require_client_admin(tenant)
    lifecycle = data["lifecycle"]
    key = [data.get(k) for k in ("region", "zone", "instance_type")]
    pool_id: int | None = data.get("pool_id")
    if pool_id is not None and any(key):
        raise invalid("pool_id", "give pool_id or region, zone and instance_type, not both")
    if pool_id is None and any(key):
        absent = [k for k, v in zip(("region", "zone", "instance_type"), key, strict=True) if not v]
        if absent:
            raise invalid(absent[0], "required with the other fields of a pool")
        pool_id = await session.scalar(
            select(Pool.id).where(
                Pool.region == key[0], Pool.zone == key[1], Pool.instance_type == key[2]
            )
        )
        if pool_id is None or not await pools.known_to(session, instance.client_id, pool_id):
            raise invalid("zone", f"no pool {key[0]}/{key[1]}/{key[2]} known to this client")
    elif pool_id is not None:
        if await session.get(Pool, pool_id) is None or not await pools.known_to(
            session, instance.client_id, pool_id
        ):
            raise invalid("pool_id", f"pool {pool_id} is not known to this client")
    elif lifecycle == "spot":
        raise invalid("pool_id", "a spot switch needs pool_id or region, zone and instance_type")
    else:
        pool_id = instance.pool_id
    if pool_id == instance.pool_id and lifecycle == instance.lifecycle:
        raise Conflict(f"instance {instance.id} already runs {lifecycle} in pool {pool_id}")
    return await create_command(
        session,
        instance=instance,
        target_pool_id=pool_id,
        target_lifecycle=lifecycle,
        reason=f"forced: {data['reason']}",
        forced=True,
        issued_by=tenant.username,
    )


async def poll(
    session: AsyncSession, tenant: Tenant, agent_id: int, now: datetime | None = None
) -> list[Command]:
    """The agent's pending commands, oldest first, each counted as delivered once more.

    Agents only (their own id; another agent's is a 404, a client token a 403).
    """
    require_agent(tenant, agent_id)
    when = now or utcnow()
    await _lock_agent(session, agent_id)
    await require_enabled_id(session, agent_id)
    rows = list(
        (
            await session.scalars(
                select(Command)
                .where(Command.agent_id == agent_id, Command.status == "pending")
                .order_by(Command.id)
                .with_for_update()
            )
        ).all()
    )
    for command in rows:
        command.deliveries += 1
        command.last_delivered_at = when
    await session.flush()
    return rows


async def acknowledge(
    session: AsyncSession,
    agent_id: int,
    command_id: int,
    *,
    success: bool,
    message: str,
    now: datetime | None = None,
) -> Command:
    """Mark the agent's command acknowledged with its result (idempotent, see the module)."""
    await _lock_agent(session, agent_id)
    command = await session.scalar(
        select(Command)
        .where(Command.id == command_id, Command.agent_id == agent_id)
        .with_for_update()
    )
    if command is None:
        raise NotFound(f"command {command_id} not found")
    if command.status == "acknowledged":
        if succeeded(command.result) != success:
            raise Conflict(
                f"command {command_id} was already acknowledged with the opposite outcome "
                f"({command.result!r})",
                command_id=command_id,
            )
        return command
    if command.status != "pending":
        raise Conflict(f"command {command_id} is {command.status}", command_id=command_id)
    command.status = "acknowledged"
    command.acknowledged_at = now or utcnow()
    command.result = ack_result(success, message)
    await session.flush()
    return command


async def ack(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    command_id: int,
    *,
    success: bool,
    message: str,
) -> Command:
    """An agent acknowledges one of its commands (another agent's is a 404)."""
    require_agent(tenant, agent_id)
    return await acknowledge(session, agent_id, command_id, success=success, message=message)


async def list_commands(
    session: AsyncSession,
    tenant: Tenant,
    *,
    status: str | None = None,
    agent_id: int | None = None,
    instance_id: int | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> tuple[list[Command], int | None]:
    """A page of commands visible to ``tenant`` (an agent: its own), newest first."""
    stmt = select(Command).where(tenant.where(Command.client_id))
    if tenant.kind == "agent":
        stmt = stmt.where(Command.agent_id == tenant.agent_id)
    if status is not None:
        stmt = stmt.where(Command.status == status)
    if agent_id is not None:
        stmt = stmt.where(Command.agent_id == agent_id)
    if instance_id is not None:
        stmt = stmt.where(Command.instance_id == instance_id)
    return await page_by_id(session, stmt, Command.id, cursor=cursor, limit=limit, descending=True)


async def pools_of(session: AsyncSession, commands: list[Command]) -> dict[int, Pool]:
    """The target pools of ``commands`` by id."""
    ids = {c.target_pool_id for c in commands if c.target_pool_id is not None}
    if not ids:
        return {}
    return {p.id: p for p in await session.scalars(select(Pool).where(Pool.id.in_(ids)))}
