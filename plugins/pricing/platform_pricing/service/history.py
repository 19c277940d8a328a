"""Price history, current prices, options, metrics and switch history of a client's instances.

Price history is read from the hourly aggregates (``pricing_hourly_prices``) for the hours
the daily job has aggregated and from the raw points for the rest (see
:func:`platform_pricing.downsample.fetch_plan`); both parts are grouped into the requested
buckets by the database, so a year of minute prices is never shipped to Python.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Float, and_, bindparam, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from platform_core import NotFound, ValidationFailed, fetch_page, invalid_cursor
from platform_pricing import downsample, tenancy
from platform_pricing.models import (
    HourlyPrice,
    Instance,
    Interruption,
    Placement,
    Pool,
    PricePoint,
    Switch,
)
from platform_pricing.service import savings as savings_service
from platform_pricing.settings import PricingSettings

DEFAULT_WINDOW = timedelta(hours=24)
HOUR = timedelta(hours=1)


# -- helpers ----------------------------------------------------------------------------


def _pool_dict(pool: Pool) -> dict[str, Any]:
    return {
        "id": pool.id,
        "region": pool.region,
        "zone": pool.zone,
        "instance_type": pool.instance_type,
    }


def epoch_us(session: AsyncSession, column: Any) -> ColumnElement[int]:
    """``column`` (a UTCDateTime) as integer microseconds since the epoch, in SQL.

    PostgreSQL's ``extract(epoch ...)`` is an exact numeric. SQLite stores the timestamps as
    ``YYYY-MM-DD HH:MM:SS.ffffff`` text (UTC): whole seconds of the first 19 characters plus
    the six fraction digits, so no float decides which bucket a point falls in.
    """
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", column) * 1_000_000, BigInteger)
    # julianday() is several times faster than strftime('%s'); a double's error there is
    # far below half a second, so rounding gives the exact whole seconds.
    seconds = cast(
        func.round((func.julianday(func.substr(column, 1, 19)) - 2440587.5) * 86400), BigInteger
    )
    fraction = cast(func.substr(column, 21, 6), BigInteger)
    return seconds * 1_000_000 + fraction


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


async def latest_price(
    session: AsyncSession, client_id: int, pool_id: int, *, since: datetime | None = None
) -> tuple[datetime, float, float] | None:
    """``(observed_at, spot, on_demand)`` of the latest point of a pool (None: none)."""
    query = select(PricePoint.observed_at, PricePoint.spot_price, PricePoint.on_demand_price).where(
        PricePoint.client_id == client_id, PricePoint.pool_id == pool_id
    )
    if since is not None:
        query = query.where(PricePoint.observed_at >= since)
    row = (
        await session.execute(
            query.order_by(PricePoint.observed_at.desc(), PricePoint.id.desc()).limit(1)
        )
    ).first()
    return None if row is None else (row[0], float(row[1]), float(row[2]))


async def _client_has_prices(session: AsyncSession, client_id: int, pool_id: int) -> bool:
    found = await session.scalar(
        select(PricePoint.id)
        .where(PricePoint.client_id == client_id, PricePoint.pool_id == pool_id)
        .limit(1)
    )
    return found is not None


async def resolve_pool(
    session: AsyncSession,
    instance: Instance,
    *,
    pool_id: int | None = None,
    region: str | None = None,
    zone: str | None = None,
    instance_type: str | None = None,
) -> Pool:
    """The pool asked for: the instance's current pool by default, or one the client has
    prices for (by id, or by region, zone and instance type given together); else 404.

    :raises ValidationFailed: ``pool_id`` combined with a key, or an incomplete key.
    """
    key = {"region": region, "zone": zone, "instance_type": instance_type}
    given = {k for k, v in key.items() if v is not None}
    if pool_id is not None and given:
        raise ValidationFailed(
            "give pool_id or region/zone/instance_type, not both",
            errors=[{"field": "pool_id", "message": "not together with region/zone/instance_type"}],
        )
    if given and len(given) < 3:
        missing = sorted(set(key) - given)
        raise ValidationFailed(
            "region, zone and instance_type go together",
            errors=[
                {"field": f, "message": "required with the other pool fields"} for f in missing
            ],
        )
    if pool_id is None and not given:
        pool = await session.get(Pool, instance.pool_id)
        assert pool is not None
        return pool
    if pool_id is not None:
        pool = await session.get(Pool, pool_id)
    else:
        pool = await session.scalar(
            select(Pool).where(
                Pool.region == region, Pool.zone == zone, Pool.instance_type == instance_type
            )
        )
    label = pool_id if pool_id is not None else f"{region}/{zone}/{instance_type}"
    if pool is None or (
        pool.id != instance.pool_id
        and not await _client_has_prices(session, instance.client_id, pool.id)
    ):
        raise NotFound(f"pool {label} not found")
    return pool


def _window(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    if end is None:
        end = now if start is None or start < now else start + DEFAULT_WINDOW
    if start is None:
        start = end - DEFAULT_WINDOW
    if start >= end:
        raise ValidationFailed(
            "start must be before end",
            errors=[{"field": "start", "message": "must be before end"}],
        )
    return start, end


# -- price history ----------------------------------------------------------------------


async def aggregated_until(session: AsyncSession, client_id: int, pool_id: int) -> datetime | None:
    """The end of the last hour the daily job aggregated for the pool (None: none yet)."""
    last = await session.scalar(
        select(func.max(HourlyPrice.hour)).where(
            HourlyPrice.client_id == client_id, HourlyPrice.pool_id == pool_id
        )
    )
    return None if last is None else last + HOUR


async def pool_buckets(
    session: AsyncSession,
    client_id: int,
    pool_id: int,
    start: datetime,
    end: datetime,
    points: int,
    *,
    use_hourly: bool = True,
) -> tuple[list[downsample.Bucket], dict[str, Any]]:
    """Non-empty min/avg/max buckets of a pool's spot price over ``[start, end)``.

    Returns the buckets and what was read (``hourly``/``raw`` ranges). ``use_hourly=False``
    reads raw points only (the benchmark's comparison).
    """
    until = await aggregated_until(session, client_id, pool_id) if use_hourly else None
    plan = downsample.fetch_plan(start, end, points, until)
    edges = downsample.bucket_edges(start, end, points)
    start_us, span_us = _us(start), _us(end) - _us(start)
    n = bindparam("n", points, type_=BigInteger)
    span = bindparam("span", span_us, type_=BigInteger)
    origin = bindparam("origin", start_us, type_=BigInteger)
    rows: list[tuple[datetime, float, float, float, int]] = []

    if plan.hourly is not None:
        bucket = ((epoch_us(session, HourlyPrice.hour) - origin) * n // span).label("b")
        query = (
            select(
                bucket,
                func.min(HourlyPrice.min_price),
                func.sum(HourlyPrice.avg_price * cast(HourlyPrice.samples, Float)),
                func.max(HourlyPrice.max_price),
                func.sum(HourlyPrice.samples),
            )
            .where(
                HourlyPrice.client_id == client_id,
                HourlyPrice.pool_id == pool_id,
                HourlyPrice.hour >= plan.hourly[0],
                HourlyPrice.hour < plan.hourly[1],
                HourlyPrice.samples > 0,
            )
            .group_by(bucket)
        )
        for b, lo, total, hi, count in await session.execute(query):
            rows.append(
                (edges[int(b)], float(lo), float(total) / int(count), float(hi), int(count))
            )

    for raw_from, raw_to in plan.raw:
        bucket = ((epoch_us(session, PricePoint.observed_at) - origin) * n // span).label("b")
        query = (
            select(
                bucket,
                func.min(PricePoint.spot_price),
                func.sum(PricePoint.spot_price),
                func.max(PricePoint.spot_price),
                func.count(),
            )
            .where(
                PricePoint.client_id == client_id,
                PricePoint.pool_id == pool_id,
                PricePoint.observed_at >= raw_from,
                PricePoint.observed_at < raw_to,
            )
            .group_by(bucket)
        )
        for b, lo, total, hi, count in await session.execute(query):
            rows.append(
                (edges[int(b)], float(lo), float(total) / int(count), float(hi), int(count))
            )

    buckets = downsample.downsample(start, end, points, rows, ())
    sources = {
        "hourly": None if plan.hourly is None else [t.isoformat() for t in plan.hourly],
        "raw": [[a.isoformat(), b.isoformat()] for a, b in plan.raw],
    }
    return buckets, sources


def _check_points(points: int, settings: PricingSettings) -> None:
    limit = min(settings.history_max_points, downsample.MAX_POINTS)
    if not 1 <= points <= limit:
        raise ValidationFailed(
            f"points must be between 1 and {limit}",
            errors=[{"field": "points", "message": f"must be between 1 and {limit}"}],
        )


async def price_history(
    session: AsyncSession,
    tenant: tenancy.Tenant,
    instance_id: int,
    *,
    settings: PricingSettings,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    points: int = 500,
    pool_id: int | None = None,
    region: str | None = None,
    zone: str | None = None,
    instance_type: str | None = None,
    use_hourly: bool = True,
) -> dict[str, Any]:
    """Min/avg/max spot price buckets of one of the instance's pools over a window.

    Defaults: the last 24 hours and the instance's current pool. Empty buckets are left out.

    :raises NotFound: the instance or pool is not visible to ``tenant``.
    :raises ValidationFailed: ``start`` not before ``end``, ``points`` out of range.
    """
    instance = await tenancy.get_instance(session, tenant, instance_id)
    _check_points(points, settings)
    start, end = _window(start, end, now)
    pool = await resolve_pool(
        session, instance, pool_id=pool_id, region=region, zone=zone, instance_type=instance_type
    )
    buckets, sources = await pool_buckets(
        session, instance.client_id, pool.id, start, end, points, use_hourly=use_hourly
    )
    return {
        "instance_id": instance.id,
        "pool": _pool_dict(pool),
        "start": start,
        "end": end,
        "points": points,
        "bucket_seconds": (end - start).total_seconds() / points,
        "sources": sources,
        "buckets": [
            {
                "start": b.start,
                "end": b.end,
                "min": b.min,
                "avg": b.avg,
                "max": b.max,
                "samples": b.samples,
            }
            for b in buckets
        ],
    }


# -- current prices and options ---------------------------------------------------------


async def _sibling_pools(session: AsyncSession, pool: Pool) -> list[Pool]:
    """Pools of the same instance type in the same region (``pool`` included)."""
    rows = await session.scalars(
        select(Pool)
        .where(Pool.region == pool.region, Pool.instance_type == pool.instance_type)
        .order_by(Pool.zone, Pool.id)
    )
    return list(rows)


async def current_pricing(
    session: AsyncSession, tenant: tenancy.Tenant, instance_id: int
) -> dict[str, Any]:
    """Latest spot/on-demand price of the instance's pool and of the other pools of its type
    in its region (those the client has prices for)."""
    instance = await tenancy.get_instance(session, tenant, instance_id)
    pool = await session.get(Pool, instance.pool_id)
    assert pool is not None
    current = await latest_price(session, instance.client_id, pool.id)
    others = []
    for other in await _sibling_pools(session, pool):
        if other.id == pool.id:
            continue
        latest = await latest_price(session, instance.client_id, other.id)
        if latest is None:
            continue
        others.append(_price_entry(other, latest))
    others.sort(key=lambda e: (e["spot_price"], e["pool"]["id"]))
    return {
        "instance_id": instance.id,
        "lifecycle": instance.lifecycle,
        "current": {"pool": _pool_dict(pool)} | _price_fields(current),
        "others": others,
    }


def _price_fields(latest: tuple[datetime, float, float] | None) -> dict[str, Any]:
    if latest is None:
        return {"spot_price": None, "on_demand_price": None, "observed_at": None}
    return {"observed_at": latest[0], "spot_price": latest[1], "on_demand_price": latest[2]}


def _price_entry(pool: Pool, latest: tuple[datetime, float, float]) -> dict[str, Any]:
    return {"pool": _pool_dict(pool)} | _price_fields(latest)


async def available_options(
    session: AsyncSession,
    tenant: tenancy.Tenant,
    instance_id: int,
    *,
    settings: PricingSettings,
    now: datetime,
) -> dict[str, Any]:
    """Pools of the instance's type in its region with a price reported within
    ``recent_window_seconds``, ranked by spot price, then by interruptions per day over the
    last ``interruption_rate_days`` (then pool id), each with its figures and the reason."""
    instance = await tenancy.get_instance(session, tenant, instance_id)
    pool = await session.get(Pool, instance.pool_id)
    assert pool is not None
    recent = now - timedelta(seconds=settings.recent_window_seconds)
    rate_since = now - timedelta(days=settings.interruption_rate_days)
    pools = await _sibling_pools(session, pool)
    counts = dict(
        (
            await session.execute(
                select(Interruption.pool_id, func.count())
                .where(
                    Interruption.client_id == instance.client_id,
                    Interruption.pool_id.in_([p.id for p in pools]),
                    Interruption.noticed_at >= rate_since,
                    Interruption.noticed_at < now,
                )
                .group_by(Interruption.pool_id)
            )
        ).all()
    )
    options = []
    for candidate in pools:
        latest = await latest_price(session, instance.client_id, candidate.id, since=recent)
        if latest is None:
            continue
        _, spot, on_demand = latest
        interruptions = int(counts.get(candidate.id, 0))
        rate = interruptions / settings.interruption_rate_days
        saving = 100.0 * (on_demand - spot) / on_demand if on_demand > 0 else 0.0
        options.append(
            _price_entry(candidate, latest)
            | {
                "current": candidate.id == instance.pool_id,
                "saving_percent": saving,
                "interruptions": interruptions,
                "interruption_rate_per_day": rate,
            }
        )
    options.sort(key=lambda o: (o["spot_price"], o["interruption_rate_per_day"], o["pool"]["id"]))
    for rank, option in enumerate(options, start=1):
        option["rank"] = rank
        option["reason"] = (
            f"spot {option['spot_price']:.6g}/h ({option['saving_percent']:.1f}% under "
            f"on-demand {option['on_demand_price']:.6g}/h), {option['interruptions']} "
            f"interruption(s) in {settings.interruption_rate_days} day(s)"
            + (" (current pool)" if option["current"] else "")
        )
    return {
        "instance_id": instance.id,
        "region": pool.region,
        "instance_type": pool.instance_type,
        "recent_since": recent,
        "interruption_rate_days": settings.interruption_rate_days,
        "options": options,
    }


# -- metrics ----------------------------------------------------------------------------


async def instance_metrics(
    session: AsyncSession, tenant: tenancy.Tenant, instance_id: int, *, now: datetime
) -> dict[str, Any]:
    """Uptime, time per pool and per lifecycle, switches, interruptions, savings to date."""
    instance = await tenancy.get_instance(session, tenant, instance_id)
    placements = list(
        await session.scalars(
            select(Placement)
            .where(Placement.instance_id == instance.id)
            .order_by(Placement.started_at, Placement.id)
        )
    )
    per_pool: dict[int, float] = defaultdict(float)
    per_lifecycle: dict[str, float] = defaultdict(float)
    for p in placements:
        end = min(p.ended_at or now, now)
        seconds = max((end - p.started_at).total_seconds(), 0.0)
        per_pool[p.pool_id] += seconds
        per_lifecycle[p.lifecycle] += seconds
    pools = {
        p.id: p
        for p in await session.scalars(select(Pool).where(Pool.id.in_(list(per_pool) or [0])))
    }
    switches = await session.scalar(
        select(func.count()).select_from(Switch).where(Switch.instance_id == instance.id)
    )
    interruptions = dict(
        (
            await session.execute(
                select(Interruption.kind, func.count())
                .where(Interruption.instance_id == instance.id)
                .group_by(Interruption.kind)
            )
        ).all()
    )
    since = placements[0].started_at if placements else instance.created_at
    totals = await savings_service.instance_savings_to_date(session, instance, now=now)
    return {
        "instance_id": instance.id,
        "since": since,
        "uptime_seconds": max((now - since).total_seconds(), 0.0),
        "time_per_pool": [
            {"pool": _pool_dict(pools[pid]), "seconds": s}
            for pid, s in sorted(per_pool.items(), key=lambda kv: -kv[1])
        ],
        "time_per_lifecycle": {k: per_lifecycle.get(k, 0.0) for k in ("spot", "on-demand")},
        "switches": int(switches or 0),
        "interruptions": {k: int(interruptions.get(k, 0)) for k in ("termination", "rebalance")},
        "savings": totals,
    }


# -- switch history ---------------------------------------------------------------------


async def list_switches(
    session: AsyncSession,
    tenant: tenancy.Tenant,
    *,
    instance_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of the caller's switches, newest first (an agent sees its own instance's only).

    Keyset on ``(switched_at, id)`` descending: ``switched_at`` is the agent's reported time,
    so it need not follow the id order. ``cursor`` is the id of the previous page's last
    switch; the next page holds the switches strictly before it in that order.

    :raises NotFound: ``instance_id`` is not visible to the caller.
    :raises ValidationFailed: ``start`` not before ``end``; ``cursor`` not a switch the caller
        sees.
    """
    if start is not None and end is not None and start >= end:
        raise ValidationFailed(
            "start must be before end", errors=[{"field": "start", "message": "must be before end"}]
        )
    conditions = [tenant.where(Switch.client_id)]
    if tenant.kind == "agent":
        own = await tenancy.instance_of_agent(session, tenant.agent_id or 0)
        if instance_id is not None and instance_id != own.id:
            raise NotFound(f"instance {instance_id} not found")
        instance_id = own.id
    elif instance_id is not None:
        await tenancy.get_instance(session, tenant, instance_id)
    if instance_id is not None:
        conditions.append(Switch.instance_id == instance_id)
    if start is not None:
        conditions.append(Switch.switched_at >= start)
    if end is not None:
        conditions.append(Switch.switched_at < end)
    after = None
    if cursor is not None:
        last = await session.scalar(
            select(Switch.switched_at).where(Switch.id == cursor, *conditions)
        )
        if last is None:
            raise invalid_cursor()
        after = or_(Switch.switched_at < last, and_(Switch.switched_at == last, Switch.id < cursor))
    items, next_cursor = await fetch_page(
        session,
        select(Switch).where(and_(*conditions)),
        order_by=[Switch.switched_at.desc(), Switch.id.desc()],
        limit=limit,
        after=after,
    )
    pool_ids = {s.to_pool_id for s in items} | {s.from_pool_id for s in items if s.from_pool_id}
    pools = {
        p.id: p for p in await session.scalars(select(Pool).where(Pool.id.in_(pool_ids or {0})))
    }

    def pool_of(pid: int | None) -> dict[str, Any] | None:
        return _pool_dict(pools[pid]) if pid in pools else None

    return {
        "items": [
            {
                "id": s.id,
                "client_id": s.client_id,
                "instance_id": s.instance_id,
                "command_id": s.command_id,
                "from_pool": pool_of(s.from_pool_id),
                "to_pool": pool_of(s.to_pool_id),
                "from_lifecycle": s.from_lifecycle,
                "to_lifecycle": s.to_lifecycle,
                "reason": s.reason,
                "from_price": s.from_price,
                "to_price": s.to_price,
                "on_demand_price": s.on_demand_price,
                "downtime_seconds": s.downtime_seconds,
                "old_cloud_id": s.old_cloud_id,
                "new_cloud_id": s.new_cloud_id,
                "switched_at": s.switched_at,
            }
            for s in items
        ],
        "next_cursor": next_cursor,
    }


# -- charts -----------------------------------------------------------------------------


async def price_chart(
    session: AsyncSession,
    tenant: tenancy.Tenant,
    instance_id: int,
    *,
    settings: PricingSettings,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    points: int = 200,
) -> dict[str, Any]:
    """One average-price series per pool of the instance's type in its region (those the
    client has prices for), on the same buckets, plus the latest on-demand price."""
    instance = await tenancy.get_instance(session, tenant, instance_id)
    _check_points(points, settings)
    start, end = _window(start, end, now)
    pool = await session.get(Pool, instance.pool_id)
    assert pool is not None
    series = []
    on_demand = None
    for candidate in await _sibling_pools(session, pool):
        latest = await latest_price(session, instance.client_id, candidate.id)
        if latest is None:
            continue
        if candidate.id == pool.id or on_demand is None:
            on_demand = latest[2]
        buckets, _ = await pool_buckets(
            session, instance.client_id, candidate.id, start, end, points
        )
        series.append(
            {
                "pool": _pool_dict(candidate),
                "current": candidate.id == pool.id,
                "points": [
                    {"at": b.start, "avg": b.avg, "min": b.min, "max": b.max} for b in buckets
                ],
            }
        )
    return {
        "instance_id": instance.id,
        "start": start,
        "end": end,
        "points": points,
        "on_demand_price": on_demand,
        "series": series,
    }
