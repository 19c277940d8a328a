"""Standby replicas of agents' instances: lifecycle, sync, promotion and termination notices.

A replica is a second cloud instance of an agent's workload, kept ready in another pool so
that it can take over when the spot instance is reclaimed.

Lifecycle (``PUT .../status`` by the agent, ``POST .../promote`` by a client admin)::

    launching -> standby (the agent reports it ready, with its cloud id) -> promoting -> promoted
    launching | standby -> failed -> terminated;  launching | standby -> terminated

``promoting`` only exists inside the promoting transaction (a promotion is atomic), so
callers see ``standby`` or ``promoted``. ``promoted`` and ``terminated`` are final; any other
move is a 409 naming the replica's current status. Re-reporting the current status is
accepted (agents retry). A promoted replica may be re-reported as ``promoted`` with its real
``cloud_id``: this replaces the placeholder ``replica-<id>`` an emergency promotion gives the
instance before its cloud instance exists.

Rules chosen here:

- Replicas need ``replica_config.enabled``; the agent keeps at most ``standby_count``
  active replicas (launching, standby); when ``replica_config.pools`` lists pools (ids,
  ``{"pool_id": ..}`` or ``{"region", "zone", "instance_type"}``), replicas go to those only.
- A spot replica must be in another pool than the instance (the same pool shares its
  interruption risk); an on-demand replica may share it. One active replica per pool and
  lifecycle.
- Promotion closes the instance's open placement and opens one in the replica's pool and
  lifecycle, moves the instance (cloud id, pool, lifecycle, ``last_switch_at``), records a
  ``Switch`` (reason ``promotion`` or ``emergency promotion``), supersedes the agent's
  pending commands (they were computed for the old placement) and publishes
  ``ReplicaPromoted`` once: the move ``standby -> promoting`` is a conditional UPDATE, so a
  replica is promoted at most once however many requests race.
- A termination notice (:func:`record_termination`) is recorded once per (client, cloud id):
  ``INSERT .. ON CONFLICT DO NOTHING`` on ``uq_pricing_interruptions_notice``. Only the
  transaction whose INSERT wrote the row acts; the others (concurrent or later) read that
  row and answer ``duplicate: true`` with the same interruption and replica. On PostgreSQL a
  concurrent loser's INSERT waits for the winner's commit and then does nothing; its next
  statement (READ COMMITTED) sees the winner's row. On SQLite writes are serialized.
- The emergency replica is an existing standby replica of the agent in another pool when
  there is one (in sync first, then the smallest lag), promoted instead of launching a new
  one; else a new replica (``emergency``) in the cheapest other pool of the same instance
  type in the region with a price reported by this client within ``recent_window_seconds``
  and no interruption within the client's ``interruption_cooldown_seconds``; else on-demand
  in the interrupted pool. It does not count against ``standby_count``. With
  ``emergency_promote = false`` the replica is chosen or created (launching) but not
  promoted. A replica promoted by a notice is flagged ``emergency``. When the new cloud
  instance is not known yet, the instance's cloud id becomes ``replica-<id>`` until the agent
  reports the replica ``promoted`` with its real cloud id.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    Forbidden,
    NotFound,
    insert_ignoring,
    invalid,
    lock_row,
    publish,
    utcnow,
)
from platform_pricing import events
from platform_pricing.models import (
    Agent,
    Client,
    Command,
    Instance,
    Interruption,
    Placement,
    Pool,
    PricePoint,
    Replica,
    Switch,
)
from platform_pricing.service import pools
from platform_pricing.service.agents import close_placement, open_placement
from platform_pricing.settings import PricingSettings
from platform_pricing.tenancy import Tenant, get_agent, instance_of_agent, require_client_admin

ACTIVE = ("launching", "standby", "promoting")
"""Replicas that exist (or are being launched) and count against ``standby_count``."""

REPORTED = {
    "launching": {"launching", "standby", "failed", "terminated"},
    "standby": {"standby", "failed", "terminated"},
    "failed": {"failed", "terminated"},
    "terminated": {"terminated"},
    "promoted": {"promoted"},
    "promoting": set(),
}
"""Status moves an agent may report, by current status."""

SYNC_RANK = {"in-sync": 0, "lagging": 1, "unknown": 2, "failed": 3}
INTERRUPTION_KINDS = ("termination", "rebalance")


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


# -- reading ----------------------------------------------------------------------------


def replica_config(agent: Agent) -> tuple[bool, int, list[Any]]:
    """``(enabled, standby_count, pools)`` of an agent (missing keys: off, 0, any pool)."""
    config = agent.replica_config or {}
    pools_ = config.get("pools") or []
    return (
        bool(config.get("enabled", False)),
        int(config.get("standby_count", 0) or 0),
        list(pools_) if isinstance(pools_, list) else [],
    )


async def _configured_pool_ids(session: AsyncSession, entries: list[Any]) -> set[int]:
    ids: set[int] = set()
    keys: set[pools.PoolKey] = set()
    for entry in entries:
        if isinstance(entry, int):
            ids.add(entry)
        elif isinstance(entry, dict):
            if isinstance(entry.get("pool_id"), int):
                ids.add(entry["pool_id"])
            elif all(isinstance(entry.get(k), str) for k in ("region", "zone", "instance_type")):
                keys.add((entry["region"], entry["zone"], entry["instance_type"]))
    if keys:
        ids |= set((await pools.pool_ids(session, keys)).values())
    return ids


async def describe(session: AsyncSession, replicas: list[Replica]) -> list[dict[str, Any]]:
    """Replicas as API dicts, with their pools spelled out."""
    by_id = await pools.pools_by_id(session, {r.pool_id for r in replicas})
    out = []
    for r in replicas:
        pool = by_id.get(r.pool_id)
        out.append(
            {
                "id": r.id,
                "client_id": r.client_id,
                "agent_id": r.agent_id,
                "pool_id": r.pool_id,
                "region": pool.region if pool else "",
                "zone": pool.zone if pool else "",
                "instance_type": pool.instance_type if pool else "",
                "lifecycle": r.lifecycle,
                "cloud_id": r.cloud_id,
                "status": r.status,
                "sync_status": r.sync_status,
                "sync_lag_seconds": r.sync_lag_seconds,
                "emergency": r.emergency,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
                "promoted_at": r.promoted_at,
            }
        )
    return out


async def _replica(session: AsyncSession, agent: Agent, replica_id: int) -> Replica:
    replica = await session.scalar(
        select(Replica)
        .where(Replica.id == replica_id, Replica.agent_id == agent.id)
        .execution_options(populate_existing=True)
    )
    if replica is None:
        raise NotFound(f"replica {replica_id} of agent {agent.id} not found")
    return replica


async def get_replica(
    session: AsyncSession, tenant: Tenant, agent_id: int, replica_id: int
) -> Replica:
    """A replica of an agent visible to ``tenant`` (the agent itself included), or 404."""
    agent = await get_agent(session, tenant, agent_id)
    return await _replica(session, agent, replica_id)


async def list_replicas(
    session: AsyncSession, tenant: Tenant, agent_id: int, *, status: str | None = None
) -> list[Replica]:
    """An agent's replicas, oldest first, optionally of one status."""
    agent = await get_agent(session, tenant, agent_id)
    stmt = select(Replica).where(Replica.agent_id == agent.id, tenant.where(Replica.client_id))
    if status is not None:
        stmt = stmt.where(Replica.status == status)
    return list(await session.scalars(stmt.order_by(Replica.id)))


async def sync_summary(session: AsyncSession, tenant: Tenant, agent_id: int) -> dict[str, Any]:
    """Readiness of an agent's replicas against its replica config."""
    agent = await get_agent(session, tenant, agent_id)
    enabled, standby_count, _ = replica_config(agent)
    replicas = list(
        await session.scalars(
            select(Replica).where(Replica.agent_id == agent.id).order_by(Replica.id)
        )
    )
    active = [r for r in replicas if r.status in ACTIVE]
    ready = sum(1 for r in active if r.status == "standby" and r.sync_status == "in-sync")
    lags = [r.sync_lag_seconds for r in active if r.sync_lag_seconds is not None]
    sync_failed = any(r.sync_status == "failed" for r in active)
    return {
        "agent_id": agent.id,
        "enabled": enabled,
        "standby_count": standby_count,
        "active": len(active),
        "ready": ready,
        "by_status": dict(Counter(r.status for r in replicas)),
        "by_sync_status": dict(Counter(r.sync_status for r in active)),
        "max_lag_seconds": max(lags) if lags else None,
        "healthy": (not enabled) or (ready >= standby_count and not sync_failed),
        "replicas": [
            {
                "id": r.id,
                "pool_id": r.pool_id,
                "status": r.status,
                "sync_status": r.sync_status,
                "lag_seconds": r.sync_lag_seconds,
                "updated_at": r.updated_at,
            }
            for r in active
        ],
    }


# -- client changes ---------------------------------------------------------------------


def _require_client(tenant: Tenant) -> None:
    if tenant.kind == "agent":
        raise Forbidden("replicas are managed with a client token; agents report status only")


async def _pool_of(session: AsyncSession, client_id: int, data: dict[str, Any]) -> int | None:
    """The pool named by ``pool_id`` or by its key; None when neither is given.

    A ``pool_id`` must be one the client knows (priced or running in): any other is a 422,
    the same as a pool that does not exist, so global pool ids tell nothing about other
    clients. A key names any pool (created when new, as a price report would).
    """
    key_fields = ("region", "zone", "instance_type")
    given = [f for f in key_fields if data.get(f) is not None]
    if data.get("pool_id") is not None:
        if given:
            raise invalid(given[0], "give pool_id or region, zone and instance_type, not both")
        pid = int(data["pool_id"])
        if not await pools.known_to(session, client_id, pid):
            raise invalid("pool_id", f"pool {pid} is unknown to this client")
        return pid
    if not given:
        return None
    missing = [f for f in key_fields if f not in given]
    if missing:
        raise invalid(missing[0], "region, zone and instance_type are required together")
    return await pools.pool_id(session, data["region"], data["zone"], data["instance_type"])


async def _check_placement(
    session: AsyncSession,
    agent: Agent,
    instance: Instance,
    pool_id: int,
    lifecycle: str,
    *,
    exclude: int | None = None,
) -> None:
    if lifecycle == "spot" and pool_id == instance.pool_id:
        raise Conflict(
            f"pool {pool_id} is the instance's own pool: a spot replica must be in another pool",
            pool_id=pool_id,
        )
    _, _, allowed = replica_config(agent)
    if allowed:
        ids = await _configured_pool_ids(session, allowed)
        if ids and pool_id not in ids:
            raise Conflict(
                f"pool {pool_id} is not in the agent's replica_config pools",
                pool_id=pool_id,
            )
    same = await session.scalar(
        select(Replica.id).where(
            Replica.agent_id == agent.id,
            Replica.pool_id == pool_id,
            Replica.lifecycle == lifecycle,
            Replica.status.in_(ACTIVE),
            Replica.id != (exclude or 0),
        )
    )
    if same is not None:
        raise Conflict(
            f"replica {same} is already active in pool {pool_id} ({lifecycle})",
            replica_id=same,
        )


async def create_replica(
    session: AsyncSession, tenant: Tenant, agent_id: int, data: dict[str, Any]
) -> Replica:
    """A new replica (``launching``) within the agent's replica config; 409 beyond it."""
    agent = await get_agent(session, tenant, agent_id)
    _require_client(tenant)
    pool_id = await _pool_of(session, agent.client_id, data)
    if pool_id is None:
        raise invalid("pool_id", "give pool_id or region, zone and instance_type")
    agent = await lock_row(session, Agent, agent.id)
    enabled, standby_count, _ = replica_config(agent)
    if not enabled:
        raise Conflict(f"replicas are disabled for agent {agent.id} (replica_config.enabled)")
    active = await session.scalar(
        select(func.count(Replica.id)).where(
            Replica.agent_id == agent.id, Replica.status.in_(ACTIVE)
        )
    )
    if (active or 0) >= standby_count:
        raise Conflict(
            f"agent {agent.id} already has {active} active replicas; "
            f"its replica_config allows standby_count={standby_count}",
            standby_count=standby_count,
        )
    instance = await instance_of_agent(session, agent.id)
    lifecycle = data.get("lifecycle") or "spot"
    await _check_placement(session, agent, instance, pool_id, lifecycle)
    now = utcnow()
    replica = Replica(
        client_id=agent.client_id,
        agent_id=agent.id,
        pool_id=pool_id,
        lifecycle=lifecycle,
        cloud_id=data.get("cloud_id") or "",
        status="launching",
        sync_status="unknown",
        created_at=now,
        updated_at=now,
    )
    session.add(replica)
    await session.flush()
    return replica


async def update_replica(
    session: AsyncSession, tenant: Tenant, agent_id: int, replica_id: int, changes: dict[str, Any]
) -> Replica:
    """Move a launching replica (pool, lifecycle) or set the cloud id of an active one."""
    agent = await get_agent(session, tenant, agent_id)
    _require_client(tenant)
    replica = await lock_row(session, Replica, (await _replica(session, agent, replica_id)).id)
    pool_id = await _pool_of(session, agent.client_id, changes)
    lifecycle = changes.get("lifecycle")
    moves = (pool_id is not None and pool_id != replica.pool_id) or (
        lifecycle is not None and lifecycle != replica.lifecycle
    )
    if moves:
        if replica.status != "launching":
            raise Conflict(
                f"replica {replica.id} is {replica.status}: only a launching replica moves "
                "to another pool or lifecycle",
                current_status=replica.status,
            )
        instance = await instance_of_agent(session, agent.id)
        new_pool = pool_id if pool_id is not None else replica.pool_id
        new_lifecycle = lifecycle or replica.lifecycle
        await _check_placement(
            session, agent, instance, new_pool, new_lifecycle, exclude=replica.id
        )
        replica.pool_id, replica.lifecycle = new_pool, new_lifecycle
    if changes.get("cloud_id") is not None and changes["cloud_id"] != replica.cloud_id:
        if replica.status not in ("launching", "standby"):
            raise Conflict(
                f"replica {replica.id} is {replica.status}: its cloud_id can no longer change",
                current_status=replica.status,
            )
        replica.cloud_id = changes["cloud_id"]
    replica.updated_at = utcnow()
    await session.flush()
    return replica


async def delete_replica(
    session: AsyncSession, tenant: Tenant, agent_id: int, replica_id: int
) -> None:
    """Forget a replica (the agent tears down what is no longer listed); 409 once promoted."""
    agent = await get_agent(session, tenant, agent_id)
    _require_client(tenant)
    replica = await lock_row(session, Replica, (await _replica(session, agent, replica_id)).id)
    if replica.status in ("promoting", "promoted"):
        raise Conflict(
            f"replica {replica.id} is {replica.status}: it is the agent's instance now",
            current_status=replica.status,
        )
    await session.delete(replica)
    await session.flush()


# -- agent reports ----------------------------------------------------------------------


def _require_reporting_agent(tenant: Tenant, agent: Agent) -> None:
    if tenant.kind != "agent" or tenant.agent_id != agent.id:
        raise Forbidden("only the agent itself reports its replicas' status (agent token)")


async def report_status(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    replica_id: int,
    status: str,
    cloud_id: str | None,
) -> Replica:
    """The agent's report of a replica's state; 409 names the current status when illegal."""
    agent = await get_agent(session, tenant, agent_id)
    _require_reporting_agent(tenant, agent)
    replica = await _replica(session, agent, replica_id)
    if status == "promoted":  # may change the instance: lock it first, as promotions do
        await lock_row(session, Instance, (await instance_of_agent(session, agent.id)).id)
    replica = await lock_row(session, Replica, replica.id)
    if status not in REPORTED.get(replica.status, set()):
        raise Conflict(
            f"replica {replica.id} is {replica.status}: it cannot become {status}",
            current_status=replica.status,
        )
    if status == "standby" and not (cloud_id or replica.cloud_id):
        raise invalid("cloud_id", "a standby replica needs the cloud id of its instance")
    if status == "promoted" and cloud_id and cloud_id != replica.cloud_id:
        await _confirm_promoted(session, agent, replica, cloud_id)
    elif cloud_id and status in ("launching", "standby"):
        replica.cloud_id = cloud_id
    if status != replica.status:
        replica.status = status
    replica.updated_at = utcnow()
    await session.flush()
    return replica


async def _confirm_promoted(
    session: AsyncSession, agent: Agent, replica: Replica, cloud_id: str
) -> None:
    """The real cloud id of a promoted replica; the instance takes it over a placeholder."""
    instance = await lock_row(session, Instance, (await instance_of_agent(session, agent.id)).id)
    if instance.cloud_id in (replica.cloud_id, placeholder(replica)):
        await _check_cloud_id_free(session, instance, cloud_id)
        instance.cloud_id = cloud_id
    replica.cloud_id = cloud_id


async def report_sync(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    replica_id: int,
    sync_status: str,
    lag_seconds: float | None,
) -> Replica:
    """The agent's report of a launching or standby replica's data sync."""
    agent = await get_agent(session, tenant, agent_id)
    _require_reporting_agent(tenant, agent)
    replica = await _replica(session, agent, replica_id)
    if replica.status not in ("launching", "standby"):
        raise Conflict(
            f"replica {replica.id} is {replica.status}: only launching or standby replicas sync",
            current_status=replica.status,
        )
    if sync_status == "lagging" and lag_seconds is None:
        raise invalid("lag_seconds", "required when sync_status is lagging")
    if sync_status == "in-sync" and lag_seconds is None:
        lag_seconds = 0.0
    replica.sync_status = sync_status
    replica.sync_lag_seconds = lag_seconds
    replica.updated_at = utcnow()
    await session.flush()
    return replica


# -- promotion --------------------------------------------------------------------------


def placeholder(replica: Replica) -> str:
    """The instance's cloud id after promoting a replica whose cloud instance is unknown."""
    return f"replica-{replica.id}"


async def _claim(session: AsyncSession, replica_id: int, statuses: tuple[str, ...]) -> bool:
    """Move a replica to ``promoting`` unless another transaction got there first."""
    result = await session.execute(
        update(Replica)
        .where(Replica.id == replica_id, Replica.status.in_(statuses))
        .values(status="promoting", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def _check_cloud_id_free(session: AsyncSession, instance: Instance, cloud_id: str) -> None:
    other = await session.scalar(
        select(Instance.id).where(
            Instance.client_id == instance.client_id,
            Instance.cloud_id == cloud_id,
            Instance.id != instance.id,
        )
    )
    if other is not None:
        raise Conflict(f"cloud id {cloud_id} belongs to instance {other}", instance_id=other)


async def _latest_price(
    session: AsyncSession, client_id: int, pool_id: int, lifecycle: str
) -> tuple[float | None, float | None]:
    """The latest (price in ``lifecycle``, on-demand price) this client saw in a pool."""
    row = (
        await session.execute(
            select(PricePoint.spot_price, PricePoint.on_demand_price)
            .where(PricePoint.client_id == client_id, PricePoint.pool_id == pool_id)
            .order_by(PricePoint.observed_at.desc(), PricePoint.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None, None
    price = row.on_demand_price if lifecycle == "on-demand" else row.spot_price
    return price, row.on_demand_price


async def _promote(
    session: AsyncSession,
    agent: Agent,
    replica_id: int,
    *,
    reason: str,
    actor: str | None,
) -> Replica:
    """Make a claimed (``promoting``) replica the agent's instance; publishes once."""
    instance = await lock_row(session, Instance, (await instance_of_agent(session, agent.id)).id)
    replica = await lock_row(session, Replica, replica_id)
    new_cloud_id = replica.cloud_id or placeholder(replica)
    await _check_cloud_id_free(session, instance, new_cloud_id)
    at = utcnow()
    current = await session.scalar(
        select(func.max(Placement.started_at)).where(
            Placement.instance_id == instance.id, Placement.ended_at.is_(None)
        )
    )
    at = max(at, current) if current is not None else at
    await close_placement(session, instance.id, at)
    from_price, on_demand = await _latest_price(
        session, instance.client_id, instance.pool_id, instance.lifecycle
    )
    to_price, to_on_demand = await _latest_price(
        session, instance.client_id, replica.pool_id, replica.lifecycle
    )
    switch = Switch(
        client_id=instance.client_id,
        instance_id=instance.id,
        from_pool_id=instance.pool_id,
        to_pool_id=replica.pool_id,
        from_lifecycle=instance.lifecycle,
        to_lifecycle=replica.lifecycle,
        reason=reason,
        from_price=from_price,
        to_price=to_price,
        on_demand_price=on_demand if on_demand is not None else to_on_demand,
        downtime_seconds=0.0,
        old_cloud_id=instance.cloud_id,
        new_cloud_id=new_cloud_id,
        switched_at=at,
    )
    session.add(switch)
    instance.cloud_id = new_cloud_id
    instance.pool_id = replica.pool_id
    instance.lifecycle = replica.lifecycle
    instance.last_switch_at = at
    await open_placement(session, instance, at)
    replica.status = "promoted"
    replica.promoted_at = at
    replica.updated_at = at
    await session.execute(
        update(Command)
        .where(Command.agent_id == agent.id, Command.status == "pending")
        .values(status="superseded", result=f"superseded by the promotion of replica {replica.id}")
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    publish(
        session,
        events.ReplicaPromoted(
            client_id=instance.client_id,
            replica_id=replica.id,
            agent_id=agent.id,
            instance_id=instance.id,
            pool_id=replica.pool_id,
            emergency=replica.emergency,
        ),
        actor=actor,
    )
    return replica


async def promote_replica(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    replica_id: int,
    *,
    reason: str = "",
    actor: str | None = None,
) -> Replica:
    """Promote a standby replica by hand (client admin or admin); 409 names its status."""
    agent = await get_agent(session, tenant, agent_id)
    require_client_admin(tenant)
    replica = await _replica(session, agent, replica_id)
    # Lock order of every promotion: the instance, then the replica (no deadlock with a
    # termination notice promoting a standby of the same agent).
    await lock_row(session, Instance, (await instance_of_agent(session, agent.id)).id)
    if not await _claim(session, replica.id, ("standby",)):
        current = await _replica(session, agent, replica_id)
        raise Conflict(
            f"replica {replica.id} is {current.status}: only a standby replica is promoted",
            current_status=current.status,
        )
    return await _promote(
        session,
        agent,
        replica.id,
        reason=f"promotion: {reason}" if reason else "promotion",
        actor=actor,
    )


# -- termination notices ----------------------------------------------------------------


async def _cloud_instance_at(
    session: AsyncSession, instance: Instance, noticed_at: datetime
) -> tuple[str, int]:
    """The agent's cloud instance (and its pool) when a notice without cloud id was seen.

    A late duplicate of a notice whose promotion already moved the instance still names the
    old cloud instance, so it collapses into the first notice.
    """
    moved = (
        await session.execute(
            select(Switch.old_cloud_id, Switch.from_pool_id)
            .where(Switch.instance_id == instance.id, Switch.switched_at > noticed_at)
            .order_by(Switch.switched_at, Switch.id)
            .limit(1)
        )
    ).first()
    if moved is not None and moved.old_cloud_id:
        return moved.old_cloud_id, moved.from_pool_id or instance.pool_id
    return instance.cloud_id, instance.pool_id


async def _emergency_pool(
    session: AsyncSession,
    client_id: int,
    interrupted_pool_id: int,
    now: datetime,
    settings: PricingSettings,
) -> tuple[int, str]:
    """``(pool id, lifecycle)`` for a new emergency replica (see the module's doc)."""
    pool = await session.get(Pool, interrupted_pool_id)
    if pool is None:
        return interrupted_pool_id, "on-demand"
    client = await session.get(Client, client_id)
    override = (client.policy or {}).get("interruption_cooldown_seconds") if client else None
    cooldown = int(
        override if override is not None else settings.policy.interruption_cooldown_seconds
    )
    rows = await session.execute(
        select(
            PricePoint.pool_id,
            PricePoint.observed_at,
            PricePoint.spot_price,
            PricePoint.on_demand_price,
        )
        .join(Pool, Pool.id == PricePoint.pool_id)
        .where(
            PricePoint.client_id == client_id,
            PricePoint.observed_at >= now - timedelta(seconds=settings.recent_window_seconds),
            Pool.region == pool.region,
            Pool.instance_type == pool.instance_type,
            Pool.id != pool.id,
        )
    )
    latest: dict[int, tuple[datetime, float, float]] = {}
    for row in rows:
        seen = latest.get(row.pool_id)
        if seen is None or row.observed_at > seen[0]:
            latest[row.pool_id] = (row.observed_at, row.spot_price, row.on_demand_price)
    if latest:
        interrupted = set(
            await session.scalars(
                select(Interruption.pool_id).where(
                    Interruption.client_id == client_id,
                    Interruption.pool_id.in_(latest),
                    Interruption.kind.in_(INTERRUPTION_KINDS),
                    Interruption.noticed_at >= now - timedelta(seconds=cooldown),
                )
            )
        )
        candidates = [
            (spot, pid)
            for pid, (_, spot, on_demand) in latest.items()
            if pid not in interrupted and spot < on_demand
        ]
        if candidates:
            return min(candidates)[1], "spot"
    return pool.id, "on-demand"


async def _standby_for_emergency(
    session: AsyncSession, agent: Agent, interrupted_pool_id: int
) -> list[Replica]:
    rows = list(
        await session.scalars(
            select(Replica).where(
                Replica.agent_id == agent.id,
                Replica.status == "standby",
                Replica.sync_status != "failed",
                # An on-demand standby is safe even in the interrupted pool.
                or_(Replica.pool_id != interrupted_pool_id, Replica.lifecycle == "on-demand"),
            )
        )
    )
    return sorted(
        rows,
        key=lambda r: (
            SYNC_RANK.get(r.sync_status, 9),
            r.sync_lag_seconds if r.sync_lag_seconds is not None else float("inf"),
            r.id,
        ),
    )


async def _existing_notice(session: AsyncSession, client_id: int, cloud_id: str) -> dict[str, Any]:
    row = await session.scalar(
        select(Interruption)
        .where(
            Interruption.client_id == client_id,
            Interruption.cloud_id == cloud_id,
            Interruption.kind == "termination",
        )
        .execution_options(populate_existing=True)
    )
    if row is None:  # the winner rolled back after our INSERT saw its row: never committed
        raise Conflict(f"a concurrent termination notice for {cloud_id} failed; send it again")
    promoted = False
    if row.replica_id is not None:
        status = await session.scalar(select(Replica.status).where(Replica.id == row.replica_id))
        promoted = status == "promoted"
    return {
        "interruption_id": row.id,
        "replica_id": row.replica_id,
        "promoted": promoted,
        "duplicate": True,
    }


async def record_termination(
    session: AsyncSession,
    *,
    agent: Agent,
    instance: Instance,
    cloud_id: str | None,
    noticed_at: datetime,
    action_at: datetime | None,
    settings: PricingSettings,
    actor: str | None = None,
) -> dict[str, Any]:
    """Record a termination notice once per cloud instance and fail over to a replica.

    Returns ``{interruption_id, replica_id, promoted, duplicate}``; duplicates (later or
    concurrent) get the first notice's ids with ``duplicate: true`` and change nothing.
    ``cloud_id`` defaults to the agent's cloud instance at ``noticed_at``. A notice for a
    cloud instance that is no longer the agent's (an old one, or one of its replicas: that
    replica becomes ``terminated``) is recorded without a fail-over.
    """
    now = utcnow()
    replica_hit: Replica | None = None
    if cloud_id is None:
        cloud_id, pool_id = await _cloud_instance_at(session, instance, min(noticed_at, now))
    elif cloud_id == instance.cloud_id:
        pool_id = instance.pool_id
    else:
        replica_hit = await session.scalar(
            select(Replica).where(Replica.agent_id == agent.id, Replica.cloud_id == cloud_id)
        )
        if replica_hit is not None:
            pool_id = replica_hit.pool_id
        else:
            old = await session.scalar(
                select(Switch.from_pool_id)
                .where(Switch.instance_id == instance.id, Switch.old_cloud_id == cloud_id)
                .order_by(Switch.switched_at.desc())
                .limit(1)
            )
            pool_id = old or instance.pool_id
    interruption_id = await session.scalar(
        insert_ignoring(session, Interruption, index_elements=["client_id", "cloud_id", "kind"])
        .values(
            client_id=agent.client_id,
            instance_id=instance.id,
            pool_id=pool_id,
            cloud_id=cloud_id,
            kind="termination",
            noticed_at=noticed_at,
            action_at=action_at,
        )
        .returning(Interruption.id)
    )
    if interruption_id is None:
        return await _existing_notice(session, agent.client_id, cloud_id)

    publish(
        session,
        events.TerminationNotice(
            client_id=agent.client_id,
            agent_id=agent.id,
            instance_id=instance.id,
            cloud_id=cloud_id,
            pool_id=pool_id,
            action_at=action_at.isoformat() if action_at else None,
        ),
        actor=actor,
    )
    result = {
        "interruption_id": interruption_id,
        "replica_id": None,
        "promoted": False,
        "duplicate": False,
    }
    instance = await lock_row(session, Instance, instance.id)
    if cloud_id != instance.cloud_id:
        if replica_hit is not None and replica_hit.status in ("launching", "standby", "failed"):
            await session.execute(
                update(Replica)
                .where(Replica.id == replica_hit.id)
                .values(status="terminated", updated_at=now)
                .execution_options(synchronize_session="fetch")
            )
        return result

    replica_id: int | None = None
    standbys = await _standby_for_emergency(session, agent, pool_id)
    if not settings.emergency_promote:
        replica_id = standbys[0].id if standbys else None
    else:
        for standby in standbys:
            if await _claim(session, standby.id, ("standby",)):
                replica_id = standby.id
                break
    if replica_id is None:
        target_pool, lifecycle = await _emergency_pool(
            session, agent.client_id, pool_id, now, settings
        )
        replica = Replica(
            client_id=agent.client_id,
            agent_id=agent.id,
            pool_id=target_pool,
            lifecycle=lifecycle,
            cloud_id="",
            status="promoting" if settings.emergency_promote else "launching",
            sync_status="unknown",
            emergency=True,
            created_at=now,
            updated_at=now,
        )
        session.add(replica)
        await session.flush()
        replica_id = replica.id
    elif settings.emergency_promote:
        await session.execute(
            update(Replica)
            .where(Replica.id == replica_id)
            .values(emergency=True)
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        update(Interruption)
        .where(Interruption.id == interruption_id)
        .values(replica_id=replica_id)
        .execution_options(synchronize_session=False)
    )
    result["replica_id"] = replica_id
    if settings.emergency_promote:
        await _promote(session, agent, replica_id, reason="emergency promotion", actor=actor)
        result["promoted"] = True
    return result
