"""Savings from the database: placements and price points fed to the pure arithmetic.

What an instance saved over a window is the on-demand price minus the price actually paid,
integrated over the intervals it spent in each pool (``pricing_placements``), with the
prices its client reported for those pools read as step functions (see
:mod:`platform_pricing.savings`). A closed month uses the rows the monthly job stored
(``pricing_monthly_savings``) when present; anything else is computed live.

A placement in a pool the client never reported a price for counts its hours with zero
costs (nothing is known) and is flagged ``missing_prices``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import NotFound, ValidationFailed, upsert, utcnow
from platform_pricing import savings, tenancy
from platform_pricing.models import Instance, MonthlySavings, Placement, PricePoint

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
CHUNK = 1000


@dataclass(frozen=True)
class InstanceSavings:
    """One instance's figures over a window and where they came from."""

    client_id: int
    instance_id: int
    totals: savings.SavingsTotals
    source: str  # "stored" | "live"
    missing_prices: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The figures rounded to 6 decimals, with the ids and the source."""
        return {
            "instance_id": self.instance_id,
            "client_id": self.client_id,
            **self.totals.to_dict(),
            "source": self.source,
            "missing_prices": self.missing_prices,
        }


def parse_month(month: str) -> tuple[int, int]:
    """``YYYY-MM`` as ``(year, month)``.

    :raises ValidationFailed: not ``YYYY-MM`` with a month 01..12 and a year 2000..2999.
    """
    match = MONTH_RE.match(month)
    if not match or not 1 <= int(match[2]) <= 12 or not 2000 <= int(match[1]) <= 2999:
        raise ValidationFailed(
            f"month must be YYYY-MM, got {month!r}",
            errors=[{"field": "month", "message": "must be YYYY-MM (e.g. 2024-03)"}],
        )
    return int(match[1]), int(match[2])


def month_key(year: int, month: int) -> str:
    """``(2024, 3)`` as ``"2024-03"``."""
    return f"{year:04d}-{month:02d}"


def previous_month(now: datetime) -> tuple[int, int]:
    """The calendar month (UTC) before the one ``now`` is in."""
    return (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)


async def load_series(
    session: AsyncSession, client_id: int, pool_id: int, start: datetime, end: datetime
) -> list[savings.PricePoint]:
    """A pool's prices in force over ``[start, end)``: the last point before ``start`` and
    every point in the window, oldest first (only the columns the integral needs)."""
    columns = (PricePoint.observed_at, PricePoint.spot_price, PricePoint.on_demand_price)
    mine = (PricePoint.client_id == client_id, PricePoint.pool_id == pool_id)
    before = (
        await session.execute(
            select(*columns)
            .where(*mine, PricePoint.observed_at < start)
            .order_by(PricePoint.observed_at.desc(), PricePoint.id.desc())
            .limit(1)
        )
    ).first()
    rows = await session.execute(
        select(*columns)
        .where(*mine, PricePoint.observed_at >= start, PricePoint.observed_at < end)
        .order_by(PricePoint.observed_at, PricePoint.id)
    )
    series = [savings.PricePoint(at, float(spot), float(od)) for at, spot, od in rows]
    if before is not None:
        series.insert(0, savings.PricePoint(before[0], float(before[1]), float(before[2])))
    elif not series:
        # No price yet in force: the pool's first price is assumed to have held since the
        # placement began (as the arithmetic assumes inside a window), wherever a month ends.
        after = (
            await session.execute(
                select(*columns)
                .where(*mine, PricePoint.observed_at >= end)
                .order_by(PricePoint.observed_at, PricePoint.id)
                .limit(1)
            )
        ).first()
        if after is not None:
            series.append(savings.PricePoint(after[0], float(after[1]), float(after[2])))
    return series


async def _placements(
    session: AsyncSession,
    client_ids: Iterable[int] | None,
    instance_ids: Iterable[int] | None,
    start: datetime,
    end: datetime,
) -> list[Placement]:
    query = select(Placement).where(
        Placement.started_at < end,
        or_(Placement.ended_at.is_(None), Placement.ended_at > start),
    )
    if client_ids is not None:
        query = query.where(Placement.client_id.in_(list(client_ids)))
    if instance_ids is not None:
        query = query.where(Placement.instance_id.in_(list(instance_ids)))
    return list(await session.scalars(query.order_by(Placement.instance_id, Placement.started_at)))


async def compute_live(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    client_ids: Iterable[int] | None = None,
    instance_ids: Iterable[int] | None = None,
) -> dict[int, InstanceSavings]:
    """Savings over ``[start, end)`` per instance with a placement overlapping the window."""
    if end <= start:
        return {}
    placements = await _placements(session, client_ids, instance_ids, start, end)
    cache: dict[tuple[int, int], list[savings.PricePoint]] = {}
    per_instance: dict[int, list[savings.IntervalSavings]] = defaultdict(list)
    owner: dict[int, int] = {}
    missing: set[int] = set()
    for p in placements:
        owner[p.instance_id] = p.client_id
        key = (p.client_id, p.pool_id)
        if key not in cache:
            cache[key] = await load_series(session, p.client_id, p.pool_id, start, end)
        series = cache[key]
        pure = savings.Placement(
            pool_id=p.pool_id,
            lifecycle="on-demand" if p.lifecycle == "on-demand" else "spot",
            start=p.started_at,
            end=p.ended_at,
        )
        if not series:
            seconds = (min(p.ended_at or end, end) - max(p.started_at, start)).total_seconds()
            per_instance[p.instance_id].append(
                savings.IntervalSavings(max(seconds, 0.0) / 3600, 0.0, 0.0, 0.0)
            )
            missing.add(p.instance_id)
            continue
        per_instance[p.instance_id].append(
            savings.placement_savings(pure, series, series, start, end)
        )
    return {
        iid: InstanceSavings(owner[iid], iid, savings.summarize(items), "live", iid in missing)
        for iid, items in per_instance.items()
    }


def _stored(row: MonthlySavings) -> InstanceSavings:
    totals = savings.summarize(
        [savings.IntervalSavings(row.hours, row.on_demand_cost, row.actual_cost, row.savings)]
    )
    return InstanceSavings(row.client_id, row.instance_id, totals, "stored")


async def month_figures(
    session: AsyncSession,
    year: int,
    month: int,
    now: datetime,
    *,
    client_ids: Sequence[int] | None = None,
    instance_ids: Sequence[int] | None = None,
    use_stored: bool = True,
) -> tuple[datetime, datetime, bool, dict[int, InstanceSavings]]:
    """``(start, end, complete, per instance)`` of one month.

    A month that has ended is ``complete``: stored rows are used where present and the
    others computed live; the current month is computed live up to ``now``.
    """
    month_start, month_end = savings.month_bounds(year, month)
    complete = month_end <= now
    end = month_end if complete else max(min(month_end, now), month_start)
    stored: dict[int, InstanceSavings] = {}
    if complete and use_stored:
        query = select(MonthlySavings).where(MonthlySavings.month == month_key(year, month))
        if client_ids is not None:
            query = query.where(MonthlySavings.client_id.in_(list(client_ids)))
        if instance_ids is not None:
            query = query.where(MonthlySavings.instance_id.in_(list(instance_ids)))
        stored = {r.instance_id: _stored(r) for r in await session.scalars(query)}
    live = await compute_live(
        session, month_start, end, client_ids=client_ids, instance_ids=instance_ids
    )
    # Stored rows win for a closed month; live figures fill the instances never stored.
    figures = live | stored
    return month_start, end, complete, figures


def _totals(items: Iterable[InstanceSavings]) -> savings.SavingsTotals:
    return savings.summarize(
        savings.IntervalSavings(
            i.totals.hours, i.totals.on_demand_cost, i.totals.actual_cost, i.totals.savings
        )
        for i in items
    )


async def _scope(
    session: AsyncSession,
    tenant: tenancy.Tenant,
    client_id: int | None,
    instance_id: int | None,
) -> tuple[list[int] | None, list[int] | None]:
    """The client ids and instance ids the caller asked for and may see (None: all)."""
    if client_id is not None:
        await tenancy.get_client(session, tenant, client_id)
    client_ids = [client_id] if client_id is not None else None
    if not tenant.is_admin:
        client_ids = [tenant.client_id or 0]
    instance_ids = None
    if tenant.kind == "agent":
        own = await tenancy.instance_of_agent(session, tenant.agent_id or 0)
        if instance_id is not None and instance_id != own.id:
            raise NotFound(f"instance {instance_id} not found")
        instance_id = own.id
    if instance_id is not None:
        instance = await tenancy.get_instance(session, tenant, instance_id)
        if client_id is not None and instance.client_id != client_id:
            raise NotFound(f"instance {instance_id} not found")
        instance_ids = [instance.id]
    return client_ids, instance_ids


async def savings_report(
    session: AsyncSession,
    tenant: tenancy.Tenant,
    *,
    month: str | None,
    instance_id: int | None,
    client_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Savings of one month (default: the current one) per instance, per client and in total.

    :raises ValidationFailed: ``month`` is not ``YYYY-MM``.
    :raises NotFound: the client or instance is not visible to ``tenant``.
    """
    now = now or utcnow()
    year, mon = parse_month(month) if month is not None else (now.year, now.month)
    client_ids, instance_ids = await _scope(session, tenant, client_id, instance_id)
    start, end, complete, figures = await month_figures(
        session, year, mon, now, client_ids=client_ids, instance_ids=instance_ids
    )
    items = sorted(figures.values(), key=lambda i: (i.client_id, i.instance_id))
    per_client: dict[int, list[InstanceSavings]] = defaultdict(list)
    for item in items:
        per_client[item.client_id].append(item)
    return {
        "month": month_key(year, mon),
        "start": start,
        "end": end,
        "complete": complete,
        "instances": [i.to_dict() for i in items],
        "clients": [
            {"client_id": cid, **_totals(rows).to_dict()}
            for cid, rows in sorted(per_client.items())
        ],
        "totals": _totals(items).to_dict(),
    }


async def savings_chart(
    session: AsyncSession,
    tenant: tenancy.Tenant,
    *,
    months: int,
    instance_id: int | None = None,
    client_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Monthly totals of the last ``months`` months (the current one last)."""
    now = now or utcnow()
    client_ids, instance_ids = await _scope(session, tenant, client_id, instance_id)
    year, mon = now.year, now.month
    keys = []
    for _ in range(months):
        keys.append((year, mon))
        year, mon = (year - 1, 12) if mon == 1 else (year, mon - 1)
    series = []
    for y, m in reversed(keys):
        _, _, complete, figures = await month_figures(
            session, y, m, now, client_ids=client_ids, instance_ids=instance_ids
        )
        series.append(
            {"month": month_key(y, m), "complete": complete} | _totals(figures.values()).to_dict()
        )
    return {"months": months, "series": series}


async def instance_savings_to_date(
    session: AsyncSession, instance: Instance, *, now: datetime
) -> dict[str, Any]:
    """An instance's savings since its first placement up to ``now`` (stored closed months,
    live for the rest)."""
    first = await session.scalar(
        select(Placement.started_at)
        .where(Placement.instance_id == instance.id)
        .order_by(Placement.started_at)
        .limit(1)
    )
    items: list[InstanceSavings] = []
    if first is not None and first < now:
        for piece_start, _ in savings.split_by_month(first, now):
            _, _, _, figures = await month_figures(
                session, piece_start.year, piece_start.month, now, instance_ids=[instance.id]
            )
            items.extend(figures.values())
    return _totals(items).to_dict()


async def store_month(session: AsyncSession, year: int, month: int, now: datetime) -> int:
    """Compute one closed month for every instance and upsert ``pricing_monthly_savings``
    (a re-run updates the rows, never duplicates them). Returns the rows written."""
    month_start, month_end = savings.month_bounds(year, month)
    figures = await compute_live(session, month_start, month_end)
    if not figures:
        return 0
    rows = [
        {
            "client_id": f.client_id,
            "instance_id": f.instance_id,
            "month": month_key(year, month),
            "hours": f.totals.hours,
            "on_demand_cost": f.totals.on_demand_cost,
            "actual_cost": f.totals.actual_cost,
            "savings": f.totals.savings,
            "computed_at": now,
        }
        for f in figures.values()
    ]
    await upsert(
        session,
        MonthlySavings,
        rows,
        keys=("client_id", "instance_id", "month"),
        update_columns=("hours", "on_demand_cost", "actual_cost", "savings", "computed_at"),
        chunk=CHUNK,
    )
    return len(rows)
