"""Maintenance of the pricing data, run by the jobs (``jobs.py``): each function takes
``(session, now)`` and is safe to re-run.

- :func:`check_agents`: silent agents go offline (``AgentOffline`` once per transition).
- :func:`dedup_prices`: exact duplicate price points (same client, pool and ``observed_at``)
  are deleted, the highest id kept; their hours are marked dirty (below).
- :func:`aggregate_hours`: per client and pool, the hours after the last aggregated one up to
  the last full hour get min/avg/max rows; hours without points between two reported hours
  are filled with the last known price (``samples`` 0, ``filled``). Hours after the pool's
  last point are left for a later run (a pool that stopped reporting is not extended
  forever). Upserted: a re-run writes the same rows.
  Late points: a trigger marks every hour that received points (``pricing_dirty_hours``, in
  the inserting transaction). Each run claims the marks (``DELETE ... RETURNING``: a mark of
  a transaction not yet committed stays for the next run) and re-aggregates every marked
  hour at or before the pool's last aggregated hour, together with the filled hours after
  it up to the next hour with points (their carried price may have changed). Marks older
  than the raw retention are dropped (the raw points that made those rows are gone).
- :func:`snapshot_clients`: each client's figures for the previous day.
- :func:`store_monthly_savings`: every instance's savings of the previous month.
- :func:`apply_retention`: raw points, hourly rows, decisions and reports past their
  ``*_retention_days``.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from platform_core import upsert
from platform_pricing import savings as pure_savings
from platform_pricing.models import (
    Agent,
    Client,
    ClientSnapshot,
    Decision,
    DirtyHour,
    HourlyPrice,
    Instance,
    Interruption,
    PricePoint,
    Report,
    Switch,
)
from platform_pricing.service import savings as savings_service
from platform_pricing.service.history import epoch_us
from platform_pricing.settings import PricingSettings

HOUR = timedelta(hours=1)
_HOUR_US = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AGGREGATE_CHUNK = timedelta(days=7)
"""Raw points are aggregated a week at a time (bounded memory for a year of backlog)."""
CHUNK = 1000


def floor_hour(t: datetime) -> datetime:
    """The start of the UTC hour ``t`` is in."""
    t = t.astimezone(UTC)
    return t.replace(minute=0, second=0, microsecond=0)


def _rowcount(result: Any) -> int:
    """Rows a DELETE touched (a ``CursorResult``'s ``rowcount``)."""
    return int(getattr(result, "rowcount", 0) or 0)


# -- agent health -----------------------------------------------------------------------


async def check_agents(session: AsyncSession, now: datetime, after_seconds: int) -> dict[str, int]:
    """Agents silent for more than ``after_seconds`` go offline; how many did."""
    from platform_pricing.service import agents

    return {"offline": await agents.mark_offline(session, now, after_seconds)}


# -- price de-duplication ---------------------------------------------------------------


async def dedup_prices(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Delete price points whose (client, pool, observed_at) a later report repeated; the
    highest id of each group (the latest report) stays, the one the savings integral and
    the decisions already use; the hours they were in are marked for re-aggregation.
    ``now`` is unused (the whole table is checked)."""
    newer = aliased(PricePoint)
    result = await session.execute(
        delete(PricePoint)
        .where(
            exists()
            .where(
                newer.client_id == PricePoint.client_id,
                newer.pool_id == PricePoint.pool_id,
                newer.observed_at == PricePoint.observed_at,
                newer.id > PricePoint.id,
            )
            .correlate(PricePoint)
        )
        .returning(PricePoint.client_id, PricePoint.pool_id, PricePoint.observed_at)
        .execution_options(synchronize_session=False)
    )
    deleted = result.all()
    hours = sorted({(c, p, floor_hour(t)) for c, p, t in deleted})
    marks = [{"client_id": c, "pool_id": p, "hour": h} for c, p, h in hours]
    for i in range(0, len(marks), CHUNK):
        await session.execute(insert(DirtyHour), marks[i : i + CHUNK])
    return {"deleted": len(deleted)}


# -- hourly aggregates ------------------------------------------------------------------


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


async def aggregate_hours(
    session: AsyncSession, now: datetime, *, raw_since: datetime | None = None
) -> dict[str, int]:
    """Aggregate every client's pools up to the last full hour before ``now``, and
    re-aggregate the hours late points reached (see module). ``raw_since``: the oldest
    raw point the retention keeps; marks before it are dropped."""
    until = floor_hour(now)
    # Claimed before the points are read: a mark is committed with its points, so every
    # claimed mark's points are visible to the reads below.
    dirty = await _claim_dirty_hours(session)
    pairs = (
        await session.execute(select(PricePoint.client_id, PricePoint.pool_id).distinct())
    ).all()
    done = {
        (c, p): h
        for c, p, h in await session.execute(
            select(HourlyPrice.client_id, HourlyPrice.pool_id, func.max(HourlyPrice.hour)).group_by(
                HourlyPrice.client_id, HourlyPrice.pool_id
            )
        )
    }
    rewritten = 0
    for (client_id, pool_id), hours in sorted(dirty.items()):
        last = done.get((client_id, pool_id))
        if last is None:
            continue  # nothing aggregated yet: the forward pass below covers every hour
        late = sorted(h for h in hours if h <= last and (raw_since is None or h >= raw_since))
        if late:
            rewritten += await _reaggregate(session, client_id, pool_id, late, last)
    written = filled = 0
    for client_id, pool_id in pairs:
        last = done.get((client_id, pool_id))
        w, f = await _aggregate_pool(
            session, client_id, pool_id, None if last is None else last + HOUR, until
        )
        written += w
        filled += f
    return {"pools": len(pairs), "hours": written, "filled": filled, "rewritten": rewritten}


async def _claim_dirty_hours(session: AsyncSession) -> dict[tuple[int, int], set[datetime]]:
    """Delete every committed dirty-hour mark; ``{(client, pool): {hour, ...}}``."""
    result = await session.execute(
        delete(DirtyHour)
        .returning(DirtyHour.client_id, DirtyHour.pool_id, DirtyHour.hour)
        .execution_options(synchronize_session=False)
    )
    dirty: dict[tuple[int, int], set[datetime]] = {}
    for client_id, pool_id, hour in result.all():
        dirty.setdefault((client_id, pool_id), set()).add(floor_hour(hour))
    return dirty


async def _reaggregate(
    session: AsyncSession, client_id: int, pool_id: int, hours: list[datetime], last: datetime
) -> int:
    """Rewrite the aggregated ``hours`` (sorted, none after ``last``) of a pool, each with the
    filled hours after it up to the next hour that has points; rows rewritten."""
    real = list(
        await session.scalars(
            select(HourlyPrice.hour)
            .where(
                HourlyPrice.client_id == client_id,
                HourlyPrice.pool_id == pool_id,
                HourlyPrice.hour > hours[0],
                HourlyPrice.filled.is_(False),
            )
            .order_by(HourlyPrice.hour)
        )
    )
    spans: list[list[datetime]] = []
    for hour in hours:
        if spans and hour < spans[-1][1]:
            continue  # inside a span already: its end is this hour's next real hour too
        i = bisect_right(real, hour)
        end = real[i] if i < len(real) else last + HOUR
        if spans and hour == spans[-1][1]:
            spans[-1][1] = end
        else:
            spans.append([hour, end])
    rows = 0
    for start, end in spans:
        fill_to = end if end <= last else None
        w, _ = await _aggregate_pool(session, client_id, pool_id, start, end, fill_to=fill_to)
        rows += w
    return rows


async def _aggregate_pool(
    session: AsyncSession,
    client_id: int,
    pool_id: int,
    since: datetime | None,
    until: datetime,
    *,
    fill_to: datetime | None = None,
) -> tuple[int, int]:
    """Upsert the pool's hours in ``[since, until)``; ``fill_to`` also fills the hours after
    the last point up to it (a span followed by an hour with points). ``(rows, filled)``."""
    mine = (PricePoint.client_id == client_id, PricePoint.pool_id == pool_id)
    if since is None:
        first = await session.scalar(select(func.min(PricePoint.observed_at)).where(*mine))
        if first is None:
            return 0, 0
        since = floor_hour(first)
    if since >= until:
        return 0, 0
    carry_row = (
        await session.execute(
            select(PricePoint.spot_price, PricePoint.on_demand_price)
            .where(*mine, PricePoint.observed_at < since)
            .order_by(PricePoint.observed_at.desc(), PricePoint.id.desc())
            .limit(1)
        )
    ).first()
    carry: tuple[float, float] | None = (
        None if carry_row is None else (float(carry_row[0]), float(carry_row[1]))
    )
    at_us = epoch_us(session, PricePoint.observed_at)
    written = filled = 0
    next_hour = since
    chunk_start = since
    while chunk_start < until:
        chunk_end = min(chunk_start + AGGREGATE_CHUNK, until)
        rows = await session.execute(
            select(at_us, PricePoint.spot_price, PricePoint.on_demand_price)
            .where(*mine, PricePoint.observed_at >= chunk_start, PricePoint.observed_at < chunk_end)
            .order_by(PricePoint.observed_at, PricePoint.id)
        )
        hours: list[_Hour] = []
        for us, spot, od in rows:
            h = us // _HOUR_US * _HOUR_US
            if not hours or hours[-1].hour_us != h:
                hours.append(_Hour(h, float(spot), float(spot)))
            hours[-1].add(float(spot), float(od))
        pending: list[dict[str, Any]] = []
        for stats in hours:
            hour = _from_us(stats.hour_us)
            while carry is not None and next_hour < hour:
                pending.append(_row(client_id, pool_id, next_hour, carry[0], carry[1]))
                filled += 1
                next_hour += HOUR
            pending.append(stats.row(client_id, pool_id, hour))
            written += 1
            next_hour = hour + HOUR
            carry = (stats.last_spot, stats.last_od)
        if pending:
            await upsert(
                session, HourlyPrice, pending, keys=("client_id", "pool_id", "hour"), chunk=CHUNK
            )
        chunk_start = chunk_end
    tail: list[dict[str, Any]] = []
    while carry is not None and fill_to is not None and next_hour < fill_to:
        tail.append(_row(client_id, pool_id, next_hour, carry[0], carry[1]))
        filled += 1
        next_hour += HOUR
    if tail:
        await upsert(session, HourlyPrice, tail, keys=("client_id", "pool_id", "hour"), chunk=CHUNK)
    return written + filled, filled


class _Hour:
    """Running min/sum/max of one hour's points, and its last point's prices."""

    __slots__ = ("count", "hi", "hour_us", "last_od", "last_spot", "lo", "od_total", "total")

    def __init__(self, hour_us: int, lo: float, hi: float) -> None:
        self.hour_us, self.lo, self.hi = hour_us, lo, hi
        self.total = self.od_total = self.last_spot = self.last_od = 0.0
        self.count = 0

    def add(self, spot: float, od: float) -> None:
        self.lo = min(self.lo, spot)
        self.hi = max(self.hi, spot)
        self.total += spot
        self.od_total += od
        self.count += 1
        self.last_spot, self.last_od = spot, od

    def row(self, client_id: int, pool_id: int, hour: datetime) -> dict[str, Any]:
        return {
            "client_id": client_id,
            "pool_id": pool_id,
            "hour": hour,
            "min_price": self.lo,
            "avg_price": self.total / self.count,
            "max_price": self.hi,
            "on_demand_price": self.od_total / self.count,
            "samples": self.count,
            "filled": False,
        }


def _row(client_id: int, pool_id: int, hour: datetime, spot: float, od: float) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "pool_id": pool_id,
        "hour": hour,
        "min_price": spot,
        "avg_price": spot,
        "max_price": spot,
        "on_demand_price": od,
        "samples": 0,
        "filled": True,
    }


# -- client snapshots -------------------------------------------------------------------


async def snapshot_clients(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Each client's figures for the UTC day before ``now`` (upserted on client and day).

    Agents counts agents registered by the end of the day; online agents and instances per
    lifecycle are the state at the time the job runs; switches, interruptions and savings
    are those of the day.
    """
    day_end = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day_start = day_end - timedelta(days=1)
    day = day_start.date().isoformat()
    client_ids = list(await session.scalars(select(Client.id).order_by(Client.id)))
    if not client_ids:
        return {"clients": 0}

    async def grouped(query: Any) -> dict[Any, int]:
        return {
            tuple(r[:-1]) if len(r) > 2 else r[0]: int(r[-1]) for r in await session.execute(query)
        }

    agents = await grouped(
        select(Agent.client_id, func.count())
        .where(Agent.registered_at < day_end)
        .group_by(Agent.client_id)
    )
    online = await grouped(
        select(Agent.client_id, func.count())
        .where(Agent.status == "online")
        .group_by(Agent.client_id)
    )
    lifecycles = await grouped(
        select(Instance.client_id, Instance.lifecycle, func.count()).group_by(
            Instance.client_id, Instance.lifecycle
        )
    )
    switches = await grouped(
        select(Switch.client_id, func.count())
        .where(Switch.switched_at >= day_start, Switch.switched_at < day_end)
        .group_by(Switch.client_id)
    )
    interruptions = await grouped(
        select(Interruption.client_id, func.count())
        .where(Interruption.noticed_at >= day_start, Interruption.noticed_at < day_end)
        .group_by(Interruption.client_id)
    )
    figures = await savings_service.compute_live(session, day_start, day_end)
    per_client: dict[int, list[pure_savings.IntervalSavings]] = {}
    for f in figures.values():
        per_client.setdefault(f.client_id, []).append(
            pure_savings.IntervalSavings(
                f.totals.hours, f.totals.on_demand_cost, f.totals.actual_cost, f.totals.savings
            )
        )
    rows = []
    for cid in client_ids:
        totals = pure_savings.summarize(per_client.get(cid, []))
        rows.append(
            {
                "client_id": cid,
                "day": day,
                "agents": agents.get(cid, 0),
                "agents_online": online.get(cid, 0),
                "instances_spot": lifecycles.get((cid, "spot"), 0),
                "instances_on_demand": lifecycles.get((cid, "on-demand"), 0),
                "switches": switches.get(cid, 0),
                "interruptions": interruptions.get(cid, 0),
                "on_demand_cost": totals.on_demand_cost,
                "actual_cost": totals.actual_cost,
                "savings": totals.savings,
                "created_at": now,
            }
        )
    await upsert(session, ClientSnapshot, rows, keys=("client_id", "day"), chunk=CHUNK)
    return {"clients": len(rows)}


# -- monthly savings --------------------------------------------------------------------


async def store_monthly_savings(session: AsyncSession, now: datetime) -> dict[str, Any]:
    """Every instance's savings of the month before ``now``, upserted."""
    year, month = savings_service.previous_month(now)
    rows = await savings_service.store_month(session, year, month, now)
    return {"month": savings_service.month_key(year, month), "instances": rows}


# -- retention --------------------------------------------------------------------------


async def apply_retention(
    session: AsyncSession, now: datetime, settings: PricingSettings
) -> dict[str, int]:
    """Delete rows older than their retention: raw points, hourly rows, decisions, reports."""
    days = timedelta(days=1)
    plan = {
        "price_points": delete(PricePoint).where(
            PricePoint.observed_at < now - settings.raw_retention_days * days
        ),
        "hourly_prices": delete(HourlyPrice).where(
            HourlyPrice.hour < now - settings.hourly_retention_days * days
        ),
        "decisions": delete(Decision).where(
            Decision.created_at < now - settings.decisions_retention_days * days
        ),
        "reports": delete(Report).where(
            Report.received_at < now - settings.reports_retention_days * days
        ),
    }
    deleted = {}
    for name, statement in plan.items():
        result = await session.execute(statement.execution_options(synchronize_session=False))
        deleted[name] = _rowcount(result)
    return deleted


# -- job wrappers -----------------------------------------------------------------------
