"""The pricing jobs: each core function called with explicit times, each safe to re-run.

Rows are written straight to the tables; the job's core function (``(session, now)``) runs,
twice where re-running matters, and the tables are read back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from platform_pricing import jobs
from platform_pricing.models import (
    Agent,
    ClientSnapshot,
    Decision,
    HourlyPrice,
    Instance,
    MonthlySavings,
    PricePoint,
    Report,
    Switch,
)
from platform_pricing.service import maintenance
from platform_pricing.settings import PricingSettings
from sqlalchemy import select


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def run(platform: Any, func: Any, *args: Any) -> Any:
    async with platform.ctx.db.session() as s:
        return await func(s, *args)


async def rows(platform: Any, model: Any, *order: Any) -> list[Any]:
    async with platform.ctx.db.session() as s:
        return list(await s.scalars(select(model).order_by(*order)))


def hourly_view(items: list[HourlyPrice]) -> list[tuple[Any, ...]]:
    return [
        (
            h.hour,
            h.min_price,
            round(h.avg_price, 9),
            h.max_price,
            h.on_demand_price,
            h.samples,
            h.filled,
        )
        for h in items
    ]


# -- job specs --------------------------------------------------------------------------------


def test_job_specs_names_and_schedules(platform: Any) -> None:
    specs = {s.name: s for s in jobs.job_specs(platform.ctx)}

    assert set(specs) == {
        "agent_health",
        "dedup_prices",
        "hourly_aggregates",
        "client_snapshots",
        "monthly_savings",
        "retention",
    }
    assert specs["agent_health"].every == timedelta(minutes=5)
    assert specs["dedup_prices"].cron == "0 * * * *"
    assert specs["client_snapshots"].cron == "5 0 * * *"
    assert specs["monthly_savings"].cron == "30 0 1 * *"
    assert specs["hourly_aggregates"].cron == "15 0 * * *"
    assert specs["retention"].cron == "45 3 * * *"


async def test_jobs_run_through_their_specs(platform: Any, world: Any) -> None:
    """Every registered job runs against an empty-ish database without error."""
    cid, _ = await world.client()
    p = await world.pool()
    await world.prices(cid, p, [(datetime.now(UTC) - timedelta(hours=3), 0.1, 1.0)])

    for spec in jobs.job_specs(platform.ctx):
        assert isinstance(await spec.func(), dict), spec.name


# -- agent health ---------------------------------------------------------------------------


async def test_agent_health_marks_silent_agents_offline_once(platform: Any, world: Any) -> None:
    cid, _ = await world.client()
    p = await world.pool()
    silent = await world.instance(cid, p)
    fresh = await world.instance(cid, p)
    now = at("2024-03-05T12:00:00")
    async with platform.ctx.db.session() as s:
        for iid, beat in (
            (silent, now - timedelta(minutes=11)),
            (fresh, now - timedelta(minutes=1)),
        ):
            inst = await s.get(Instance, iid)
            agent = await s.get(Agent, inst.agent_id)
            agent.last_heartbeat_at = beat

    first = await run(platform, maintenance.check_agents, now, 600)
    second = await run(platform, maintenance.check_agents, now, 600)

    assert (first, second) == ({"offline": 1}, {"offline": 0})
    statuses = {a.name: a.status for a in await rows(platform, Agent, Agent.id)}
    assert sorted(statuses.values()) == ["offline", "online"]


# -- dedup --------------------------------------------------------------------------------------


async def test_dedup_deletes_exact_duplicates_keeping_the_latest_report(
    platform: Any, world: Any
) -> None:
    cid, _ = await world.client()
    c2, _ = await world.client()
    p = await world.pool()
    t = "2024-03-05T10:00:00"
    await world.prices(cid, p, [(t, 0.1, 1.0), (t, 0.2, 1.0), (t, 0.3, 1.0)])
    await world.prices(cid, p, [("2024-03-05T10:01:00", 0.4, 1.0)])
    await world.prices(c2, p, [(t, 0.5, 1.0)])  # another client's point is not a duplicate

    first = await run(platform, maintenance.dedup_prices, at("2024-03-05T11:00:00"))
    second = await run(platform, maintenance.dedup_prices, at("2024-03-05T11:00:00"))

    assert (first, second) == ({"deleted": 2}, {"deleted": 0})
    left = [(r.client_id, r.spot_price) for r in await rows(platform, PricePoint, PricePoint.id)]
    assert left == [(cid, 0.3), (cid, 0.4), (c2, 0.5)]


# -- hourly aggregates ------------------------------------------------------------------------


async def test_hourly_aggregates_fill_gaps_with_the_last_price(platform: Any, world: Any) -> None:
    """Points at 10:05 (1), 10:40 (3), then a 5-hour gap, 16:10 (2). Run at 18:30: hours 10
    and 16 are aggregated, 11..15 filled with 3 (the last price), samples 0; the run stops at
    the last hour with a point (16), not at 17."""
    cid, _ = await world.client()
    p = await world.pool()
    await world.prices(
        cid,
        p,
        [
            ("2024-03-05T10:05:00", 1.0, 2.0),
            ("2024-03-05T10:40:00", 3.0, 4.0),
            ("2024-03-05T16:10:00", 2.0, 2.0),
        ],
    )

    out = await run(platform, maintenance.aggregate_hours, at("2024-03-05T18:30:00"))

    assert out == {"pools": 1, "hours": 7, "filled": 5, "rewritten": 0}
    got = hourly_view(await rows(platform, HourlyPrice, HourlyPrice.hour))
    assert got[0] == (at("2024-03-05T10:00:00"), 1.0, 2.0, 3.0, 3.0, 2, False)
    assert got[1:6] == [
        (at(f"2024-03-05T{h}:00:00"), 3.0, 3.0, 3.0, 4.0, 0, True) for h in range(11, 16)
    ]
    assert got[6] == (at("2024-03-05T16:00:00"), 2.0, 2.0, 2.0, 2.0, 1, False)


async def test_hourly_aggregates_rerun_gives_the_same_rows(platform: Any, world: Any) -> None:
    cid, _ = await world.client()
    p = await world.pool()
    base = at("2024-03-05T00:00:00")
    await world.prices(
        cid, p, [(base + timedelta(minutes=7 * k), 0.1 + k % 5, 1.0) for k in range(100)]
    )
    now = at("2024-03-06T00:30:00")

    await run(platform, maintenance.aggregate_hours, now)
    before = hourly_view(await rows(platform, HourlyPrice, HourlyPrice.hour))
    again = await run(platform, maintenance.aggregate_hours, now)
    after = hourly_view(await rows(platform, HourlyPrice, HourlyPrice.hour))

    assert again["hours"] == 0
    assert before == after
    assert len(before) == 12  # 700 minutes of points: hours 00..11


async def test_hourly_aggregates_skip_the_current_hour_and_continue_later(
    platform: Any, world: Any
) -> None:
    """The hour in progress is left for the next run, which fills the gap before it."""
    cid, _ = await world.client()
    p = await world.pool()
    await world.prices(
        cid, p, [("2024-03-05T10:05:00", 1.0, 2.0), ("2024-03-05T12:10:00", 5.0, 2.0)]
    )

    await run(platform, maintenance.aggregate_hours, at("2024-03-05T12:30:00"))
    first = [h.hour for h in await rows(platform, HourlyPrice, HourlyPrice.hour)]
    await run(platform, maintenance.aggregate_hours, at("2024-03-05T13:00:00"))
    second = hourly_view(await rows(platform, HourlyPrice, HourlyPrice.hour))

    assert first == [at("2024-03-05T10:00:00")]
    assert [(h[0].hour, h[2], h[6]) for h in second] == [
        (10, 1.0, False),
        (11, 1.0, True),
        (12, 5.0, False),
    ]


async def test_hourly_aggregates_are_per_client_and_pool(platform: Any, world: Any) -> None:
    c1, _ = await world.client()
    c2, _ = await world.client()
    p, q = await world.pool(), await world.pool("us-east-1b")
    await world.prices(c1, p, [("2024-03-05T10:05:00", 1.0, 2.0)])
    await world.prices(c2, p, [("2024-03-05T10:05:00", 7.0, 2.0)])
    await world.prices(c1, q, [("2024-03-05T10:05:00", 3.0, 2.0)])

    out = await run(platform, maintenance.aggregate_hours, at("2024-03-05T12:00:00"))

    assert out["pools"] == 3
    got = {
        (h.client_id, h.pool_id): h.avg_price
        for h in await rows(platform, HourlyPrice, HourlyPrice.id)
    }
    assert got == {(c1, p): 1.0, (c2, p): 7.0, (c1, q): 3.0}


# -- client snapshots -----------------------------------------------------------------------


async def test_client_snapshots_previous_day_and_rerun(platform: Any, world: Any) -> None:
    """Day 2024-03-05: one instance spot all day at 0.25 vs 1.0 saves 24*0.75 = 18; one
    switch that day, one the day after (not counted)."""
    cid, _ = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p)
    await world.place(cid, iid, p, "2024-03-04T00:00:00", None)
    await world.prices(cid, p, [("2024-03-04T00:00:00", 0.25, 1.0)])
    async with platform.ctx.db.session() as s:
        for when in ("2024-03-05T10:00:00", "2024-03-06T00:01:00"):
            s.add(
                Switch(
                    client_id=cid,
                    instance_id=iid,
                    to_pool_id=p,
                    from_lifecycle="spot",
                    to_lifecycle="spot",
                    switched_at=at(when),
                )
            )
    now = at("2024-03-06T00:05:00")

    await run(platform, maintenance.snapshot_clients, now)
    await run(platform, maintenance.snapshot_clients, now)

    snaps = [
        s for s in await rows(platform, ClientSnapshot, ClientSnapshot.id) if s.client_id == cid
    ]
    assert len(snaps) == 1
    snap = snaps[0]
    assert snap.day == "2024-03-05"
    assert (snap.agents, snap.instances_spot, snap.instances_on_demand, snap.switches) == (
        1,
        1,
        0,
        1,
    )
    assert (snap.on_demand_cost, snap.actual_cost, snap.savings) == pytest.approx((24.0, 6.0, 18.0))


# -- monthly savings ------------------------------------------------------------------------


async def test_monthly_savings_previous_month_upserted(platform: Any, world: Any) -> None:
    """February 2024 (29 days) in full at spot 0.5 vs 1.0: 696 h, savings 348. Re-running after
    a late price correction updates the one row."""
    cid, _ = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p)
    await world.place(cid, iid, p, "2024-01-15T00:00:00", None)
    await world.prices(cid, p, [("2024-01-15T00:00:00", 0.5, 1.0)])
    now = at("2024-03-01T00:30:00")

    out = await run(platform, maintenance.store_monthly_savings, now)
    await world.prices(cid, p, [("2024-02-29T00:00:00", 1.0, 1.0)])
    await run(platform, maintenance.store_monthly_savings, now)

    assert out == {"month": "2024-02", "instances": 1}
    stored = await rows(platform, MonthlySavings, MonthlySavings.id)
    assert [(r.instance_id, r.month) for r in stored] == [(iid, "2024-02")]
    # 28 days at 0.5 and the last day at 1.0: saving 28*24*0.5 = 336.
    assert (stored[0].hours, stored[0].savings) == pytest.approx((696.0, 336.0))


async def test_monthly_savings_in_january_stores_december(platform: Any) -> None:
    out = await run(platform, maintenance.store_monthly_savings, at("2024-01-01T00:30:00"))

    assert out == {"month": "2023-12", "instances": 0}


# -- retention ----------------------------------------------------------------------------------


async def test_retention_deletes_only_rows_past_their_age(platform: Any, world: Any) -> None:
    cid, _ = await world.client()
    p = await world.pool()
    iid = await world.instance(cid, p)
    now = at("2024-06-01T00:00:00")
    settings = PricingSettings(
        raw_retention_days=10,
        hourly_retention_days=20,
        decisions_retention_days=5,
        reports_retention_days=3,
    )
    await world.prices(
        cid, p, [(now - timedelta(days=11), 1.0, 1.0), (now - timedelta(days=9), 2.0, 1.0)]
    )
    async with platform.ctx.db.session() as s:
        inst = await s.get(Instance, iid)
        for days in (21, 19):
            s.add(
                HourlyPrice(
                    client_id=cid,
                    pool_id=p,
                    hour=now - timedelta(days=days),
                    min_price=1.0,
                    avg_price=1.0,
                    max_price=1.0,
                    on_demand_price=1.0,
                    samples=1,
                )
            )
        for days in (6, 4):
            s.add(
                Decision(
                    client_id=cid,
                    instance_id=iid,
                    engine="rules",
                    requested_engine="rules",
                    outcome="stay",
                    created_at=now - timedelta(days=days),
                )
            )
        for days in (4, 2):
            s.add(
                Report(
                    client_id=cid,
                    agent_id=inst.agent_id,
                    report_id=f"r{days}",
                    kind="pricing",
                    digest="x",
                    received_at=now - timedelta(days=days),
                )
            )

    first = await run(platform, maintenance.apply_retention, now, settings)
    second = await run(platform, maintenance.apply_retention, now, settings)

    assert first == {"price_points": 1, "hourly_prices": 1, "decisions": 1, "reports": 1}
    assert second == {"price_points": 0, "hourly_prices": 0, "decisions": 0, "reports": 0}
    assert [r.spot_price for r in await rows(platform, PricePoint, PricePoint.id)] == [2.0]
    assert [r.report_id for r in await rows(platform, Report, Report.id)] == ["r2"]
