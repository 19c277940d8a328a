"""Agent reports: price batches (bulk-inserted), switches, terminations, rebalances, clean-ups.

Every report is idempotent on ``(agent, report_id)``: a :class:`Report` row is inserted first
(``ON CONFLICT DO NOTHING``, so concurrent replays wait for the first one and then see it),
holding the SHA-256 digest of the report's canonical JSON and, once processed, its result.
A replay with the same digest returns that result with ``duplicate=True``; the same id with
another body is a ``Conflict`` naming the id.

Price points skip the ORM: one ``pool_ids`` call maps the batch's pools, and one executemany
INSERT writes the rows (plain dicts, no objects per point).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Table, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    Conflict,
    NotFound,
    insert_ignoring,
    invalid,
    lock_row,
    publish,
    utcnow,
)
from platform_pricing import events, tenancy
from platform_pricing.models import (
    Agent,
    Command,
    Instance,
    Interruption,
    Placement,
    PricePoint,
    Report,
    Switch,
)
from platform_pricing.schemas.reports import (
    CleanupReport,
    PricingReport,
    RebalanceReport,
    SwitchReport,
    TerminationReport,
)
from platform_pricing.service.agent_settings import require_enabled
from platform_pricing.service.agents import close_placement, open_placement
from platform_pricing.service.pools import pool_id, pool_ids
from platform_pricing.settings import PricingSettings
from platform_pricing.tenancy import Tenant

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future an agent's timestamps may be (its clock may run ahead)."""

_PRICE_TABLE = cast(Table, PricePoint.__table__)


@dataclass(frozen=True)
class ReportResult:
    """What a report produced; ``duplicate`` when it replayed one already received."""

    report_id: str
    kind: str
    duplicate: bool
    received_at: datetime
    result: dict[str, Any]


def digest(report: BaseModel) -> str:
    """SHA-256 of the report's canonical JSON (validated, timestamps in UTC, fixed key order)."""
    return hashlib.sha256(report.model_dump_json().encode()).hexdigest()


async def _reporting_agent(session: AsyncSession, tenant: Tenant, agent_id: int) -> Agent:
    """The agent ``agent_id`` when the caller is that agent (404 across clients, 403 else)."""
    agent = await tenancy.get_agent(session, tenant, agent_id)
    tenancy.require_agent(tenant, agent.id)
    require_enabled(agent)
    return agent


class _Receipt:
    """A report row claimed by this request (``stored`` is set for a replay)."""

    def __init__(self, row_id: int | None, received_at: datetime, stored: Report | None) -> None:
        self.row_id = row_id
        self.received_at = received_at
        self.stored = stored


async def _claim(
    session: AsyncSession, agent: Agent, kind: str, report: Any, now: datetime
) -> _Receipt:
    report_id: str = report.report_id
    body_digest = digest(report)
    row_id = await session.scalar(
        insert_ignoring(session, Report)
        .values(
            client_id=agent.client_id,
            agent_id=agent.id,
            report_id=report_id,
            kind=kind,
            digest=body_digest,
            result={},
            received_at=now,
        )
        .returning(Report.id)
    )
    if row_id is not None:
        return _Receipt(row_id, now, None)
    stored = await session.scalar(
        select(Report).where(Report.agent_id == agent.id, Report.report_id == report_id)
    )
    if stored is None:  # deleted by retention between the two statements: very unlikely
        raise Conflict(f"report {report_id!r} is being processed; retry", report_id=report_id)
    if stored.kind != kind or stored.digest != body_digest:
        raise Conflict(
            f"report {report_id!r} was already received with a different body",
            report_id=report_id,
        )
    return _Receipt(None, stored.received_at, stored)


async def _finish(
    session: AsyncSession, receipt: _Receipt, report_id: str, kind: str, result: dict[str, Any]
) -> ReportResult:
    await session.execute(update(Report).where(Report.id == receipt.row_id).values(result=result))
    return ReportResult(report_id, kind, False, receipt.received_at, result)


def _replay(receipt: _Receipt) -> ReportResult:
    stored = receipt.stored
    assert stored is not None
    return ReportResult(stored.report_id, stored.kind, True, stored.received_at, stored.result)


# -- prices ------------------------------------------------------------------------------------


async def ingest_prices(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    report: PricingReport,
    *,
    settings: PricingSettings,
    now: datetime | None = None,
) -> ReportResult:
    """Store a batch of price points observed by the calling agent (idempotent per id)."""
    agent = await _reporting_agent(session, tenant, agent_id)
    limit = settings.max_points_per_report
    points = report.points
    if len(points) > limit:
        raise invalid("points", f"at most {limit} points per report (got {len(points)})")
    now = now or utcnow()
    latest = now + CLOCK_SKEW
    if max(p.observed_at for p in points) > latest:
        i = next(i for i, p in enumerate(points) if p.observed_at > latest)
        raise invalid(f"points.{i}.observed_at", "is in the future")
    receipt = await _claim(session, agent, "pricing", report, now)
    if receipt.stored is not None:
        return _replay(receipt)
    ids = await pool_ids(session, {(p.region, p.zone, p.instance_type) for p in points})
    client_id = agent.client_id
    rows = [
        (
            client_id,
            ids[(p.region, p.zone, p.instance_type)],
            p.observed_at,
            p.spot_price,
            p.on_demand_price,
        )
        for p in points
    ]
    await insert_price_rows(session, rows)
    result = {"accepted": len(rows), "pools": len(ids)}
    return await _finish(session, receipt, report.report_id, "pricing", result)


PRICE_COLUMNS = ("client_id", "pool_id", "observed_at", "spot_price", "on_demand_price")
_SQLITE_INSERT = (
    f"INSERT INTO {_PRICE_TABLE.name} ({', '.join(PRICE_COLUMNS)}) VALUES (?, ?, ?, ?, ?)"
)


async def insert_price_rows(session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
    """Insert price rows ``(client_id, pool_id, observed_at, spot, on_demand)`` in bulk.

    PostgreSQL: ``COPY`` through the session's own asyncpg connection (same transaction),
    several times faster than a multi-row INSERT. SQLite: one executemany INSERT on the
    driver. Other drivers: a Core executemany INSERT.
    Timestamps must be aware UTC datetimes (the report schema guarantees it).
    """
    if not rows:
        return
    conn = await session.connection()
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg":
        # SQLAlchemy begins asyncpg's transaction on the first statement it runs: without
        # one, a COPY opening the session would commit on its own, outside the transaction.
        await conn.execute(select(literal(1)))
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            _PRICE_TABLE.name, records=rows, columns=list(PRICE_COLUMNS)
        )
        return
    await conn.execute(
        insert(_PRICE_TABLE), [dict(zip(PRICE_COLUMNS, r, strict=True)) for r in rows]
    )


# -- switches ----------------------------------------------------------------------------------


async def record_switch(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    report: SwitchReport,
    *,
    now: datetime | None = None,
) -> ReportResult:
    """Move the agent's instance to the reported pool at ``switched_at``.

    The open placement closes at ``switched_at`` exactly and a new one opens there; the
    instance takes the new pool, lifecycle and cloud id; the command (``command_id``, one of
    this agent's) is acknowledged; a :class:`Switch` is recorded and ``SwitchCompleted``
    published.
    """
    agent = await _reporting_agent(session, tenant, agent_id)
    now = now or utcnow()
    if report.switched_at > now + CLOCK_SKEW:
        raise invalid("switched_at", "is in the future")
    receipt = await _claim(session, agent, "switch", report, now)
    if receipt.stored is not None:
        return _replay(receipt)
    # Locked like a promotion locks it: a switch and a promotion never interleave.
    instance = await lock_row(
        session, Instance, (await tenancy.instance_of_agent(session, agent.id)).id
    )
    command = None
    if report.command_id is not None:
        command = await lock_row(session, Command, report.command_id)  # vs. an acknowledgement
        if command is None or command.agent_id != agent.id:
            raise NotFound(f"command {report.command_id} not found")
    current = await session.scalar(
        select(Placement.started_at).where(
            Placement.instance_id == instance.id, Placement.ended_at.is_(None)
        )
    )
    if current is not None and report.switched_at < current:
        raise invalid(
            "switched_at", f"is before the current placement started ({current.isoformat()})"
        )
    taken = await session.scalar(
        select(Instance.id).where(
            Instance.client_id == agent.client_id,
            Instance.cloud_id == report.new_cloud_id,
            Instance.id != instance.id,
        )
    )
    if taken is not None:
        raise Conflict(
            f"cloud instance {report.new_cloud_id!r} belongs to another instance of this client",
            field="new_cloud_id",
        )
    target = report.to
    to_pool = await pool_id(session, target.region, target.zone, target.instance_type)
    switch = Switch(
        client_id=agent.client_id,
        instance_id=instance.id,
        command_id=report.command_id,
        from_pool_id=instance.pool_id,
        to_pool_id=to_pool,
        from_lifecycle=instance.lifecycle,
        to_lifecycle=target.lifecycle,
        reason=report.reason,
        from_price=report.from_price,
        to_price=report.to_price,
        on_demand_price=report.on_demand_price,
        downtime_seconds=report.downtime_seconds,
        old_cloud_id=instance.cloud_id,
        new_cloud_id=report.new_cloud_id,
        switched_at=report.switched_at,
    )
    session.add(switch)
    await close_placement(session, instance.id, report.switched_at)
    instance.pool_id, instance.lifecycle = to_pool, target.lifecycle
    instance.cloud_id = report.new_cloud_id
    instance.last_switch_at = report.switched_at
    instance.state = "running"
    placement = await open_placement(session, instance, report.switched_at)
    if command is not None and command.status == "pending":
        command.status = "acknowledged"
        command.acknowledged_at = now
        command.result = f"switched (report {report.report_id})"[:500]
    await session.flush()
    publish(
        session,
        events.SwitchCompleted(
            client_id=agent.client_id,
            switch_id=switch.id,
            agent_id=agent.id,
            instance_id=instance.id,
            from_pool_id=switch.from_pool_id,
            to_pool_id=to_pool,
            to_lifecycle=target.lifecycle,
        ),
        actor=tenant.username,
    )
    result = {
        "switch_id": switch.id,
        "instance_id": instance.id,
        "placement_id": placement.id,
        "pool_id": to_pool,
        "command_acknowledged": command is not None and command.status == "acknowledged",
    }
    return await _finish(session, receipt, report.report_id, "switch", result)


# -- interruptions -----------------------------------------------------------------------------


async def record_termination(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    report: TerminationReport,
    *,
    settings: PricingSettings,
    now: datetime | None = None,
) -> ReportResult:
    """A termination notice: handled by the replicas service (one per cloud instance)."""
    from platform_pricing.service import replicas

    agent = await _reporting_agent(session, tenant, agent_id)
    now = now or utcnow()
    if report.noticed_at > now + CLOCK_SKEW:
        raise invalid("noticed_at", "is in the future")
    receipt = await _claim(session, agent, "termination", report, now)
    if receipt.stored is not None:
        return _replay(receipt)
    instance = await tenancy.instance_of_agent(session, agent.id)
    result = await replicas.record_termination(
        session,
        agent=agent,
        instance=instance,
        cloud_id=report.cloud_id,
        noticed_at=report.noticed_at,
        action_at=report.action_at,
        settings=settings,
        actor=tenant.username,
    )
    return await _finish(session, receipt, report.report_id, "termination", dict(result))


async def record_rebalance(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    report: RebalanceReport,
    *,
    now: datetime | None = None,
) -> ReportResult:
    """A rebalance recommendation: one :class:`Interruption` per cloud instance, announced once."""
    agent = await _reporting_agent(session, tenant, agent_id)
    now = now or utcnow()
    if report.noticed_at > now + CLOCK_SKEW:
        raise invalid("noticed_at", "is in the future")
    receipt = await _claim(session, agent, "rebalance", report, now)
    if receipt.stored is not None:
        return _replay(receipt)
    instance = await tenancy.instance_of_agent(session, agent.id)
    cloud_id = report.cloud_id or instance.cloud_id
    new_id = await session.scalar(
        insert_ignoring(session, Interruption)
        .values(
            client_id=agent.client_id,
            instance_id=instance.id,
            pool_id=instance.pool_id,
            cloud_id=cloud_id,
            kind="rebalance",
            noticed_at=report.noticed_at,
        )
        .returning(Interruption.id)
    )
    if new_id is not None:
        publish(
            session,
            events.RebalanceRecommendation(
                client_id=agent.client_id,
                agent_id=agent.id,
                instance_id=instance.id,
                cloud_id=cloud_id,
                pool_id=instance.pool_id,
            ),
            actor=tenant.username,
        )
        interruption_id = new_id
    else:
        interruption_id = await session.scalar(
            select(Interruption.id).where(
                Interruption.client_id == agent.client_id,
                Interruption.cloud_id == cloud_id,
                Interruption.kind == "rebalance",
            )
        )
    result = {"interruption_id": interruption_id, "created": new_id is not None}
    return await _finish(session, receipt, report.report_id, "rebalance", result)


async def record_cleanup(
    session: AsyncSession,
    tenant: Tenant,
    agent_id: int,
    report: CleanupReport,
    *,
    now: datetime | None = None,
) -> ReportResult:
    """Resources the agent cleaned up: kept as the report's result (counts by action)."""
    agent = await _reporting_agent(session, tenant, agent_id)
    now = now or utcnow()
    receipt = await _claim(session, agent, "cleanup", report, now)
    if receipt.stored is not None:
        return _replay(receipt)
    by_action: dict[str, int] = {}
    for resource in report.resources:
        by_action[resource.action] = by_action.get(resource.action, 0) + 1
    result = {
        "resources": len(report.resources),
        "by_action": by_action,
        "finished_at": report.finished_at.isoformat(),
    }
    return await _finish(session, receipt, report.report_id, "cleanup", result)
