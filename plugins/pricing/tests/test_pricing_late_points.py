"""Price points that arrive after their hour was aggregated: the next aggregation run
re-aggregates the hours they reached, and a re-run changes nothing.

Points go in through the paths production uses (``insert_price_rows``: COPY on PostgreSQL;
the CSV import; an agent's report over HTTP); the hours they touch are marked by the
database trigger of migration ``pricing_0002_dirty_hours``.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from platform_pricing.models import DirtyHour, HourlyPrice, PricePoint
from platform_pricing.service import imports, maintenance, reports
from sqlalchemy import func, select


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hourly(items: list[HourlyPrice]) -> list[tuple[Any, ...]]:
    """``(hour, min, avg, max, samples, filled)`` per row."""
    return [
        (h.hour.hour, h.min_price, round(h.avg_price, 9), h.max_price, h.samples, h.filled)
        for h in items
    ]


async def rows(platform: Any, client_id: int) -> list[tuple[Any, ...]]:
    async with platform.ctx.db.session() as s:
        found = await s.scalars(
            select(HourlyPrice).where(HourlyPrice.client_id == client_id).order_by(HourlyPrice.hour)
        )
        return hourly(list(found))


async def aggregate(platform: Any, now: str, **kwargs: Any) -> dict[str, int]:
    async with platform.ctx.db.session() as s:
        return await maintenance.aggregate_hours(s, at(now), **kwargs)


async def insert(platform: Any, cid: int, pool: int, points: list[tuple[str, float]]) -> None:
    """Insert points the way an agent's report does (COPY on PostgreSQL)."""
    async with platform.ctx.db.session() as s:
        await reports.insert_price_rows(s, [(cid, pool, at(t), spot, 1.0) for t, spot in points])


async def test_a_late_point_in_a_filled_hour_is_aggregated_by_the_next_run(
    platform: Any, world: Any
) -> None:
    """10:05 at 1, 12:10 at 5: hour 11 is filled with 1. A point at 11:30 (3) arrives after
    the run; the next run makes hour 11 a real hour, and running again changes nothing."""
    cid, _ = await world.client()
    pool = await world.pool()
    await insert(platform, cid, pool, [("2024-03-05T10:05:00", 1.0), ("2024-03-05T12:10:00", 5.0)])
    await aggregate(platform, "2024-03-05T13:30:00")
    assert await rows(platform, cid) == [
        (10, 1.0, 1.0, 1.0, 1, False),
        (11, 1.0, 1.0, 1.0, 0, True),
        (12, 5.0, 5.0, 5.0, 1, False),
    ]

    await insert(platform, cid, pool, [("2024-03-05T11:30:00", 3.0)])
    out = await aggregate(platform, "2024-03-05T13:40:00")
    after = await rows(platform, cid)
    again = await aggregate(platform, "2024-03-05T13:50:00")

    assert out["rewritten"] == 1 and out["hours"] == 0
    assert after == [
        (10, 1.0, 1.0, 1.0, 1, False),
        (11, 3.0, 3.0, 3.0, 1, False),
        (12, 5.0, 5.0, 5.0, 1, False),
    ]
    assert again == {"pools": 1, "hours": 0, "filled": 0, "rewritten": 0}
    assert await rows(platform, cid) == after


async def test_a_late_point_changes_the_carried_price_of_the_hours_after_it(
    platform: Any, world: Any
) -> None:
    cid, _ = await world.client()
    pool = await world.pool()
    await insert(platform, cid, pool, [("2024-03-05T10:05:00", 1.0), ("2024-03-05T15:10:00", 2.0)])
    await aggregate(platform, "2024-03-05T16:30:00")

    await insert(platform, cid, pool, [("2024-03-05T12:20:00", 4.0)])
    out = await aggregate(platform, "2024-03-05T16:40:00")

    assert out["rewritten"] == 3  # hour 12, and 13 and 14 now carrying 4
    assert await rows(platform, cid) == [
        (10, 1.0, 1.0, 1.0, 1, False),
        (11, 1.0, 1.0, 1.0, 0, True),
        (12, 4.0, 4.0, 4.0, 1, False),
        (13, 4.0, 4.0, 4.0, 0, True),
        (14, 4.0, 4.0, 4.0, 0, True),
        (15, 2.0, 2.0, 2.0, 1, False),
    ]


async def test_late_points_in_real_hours_and_before_the_first_hour(
    platform: Any, world: Any
) -> None:
    """A late point joins an aggregated hour's min/avg/max; one before the first aggregated
    hour starts the pool's history earlier (the hour between filled). Through the CSV
    import, in one transaction with points of a new hour."""
    cid, _ = await world.client()
    pool = await world.pool()
    await insert(platform, cid, pool, [("2024-03-05T10:05:00", 1.0), ("2024-03-05T12:10:00", 5.0)])
    await aggregate(platform, "2024-03-05T13:30:00")
    text = (
        "region,zone,instance_type,spot_price,on_demand_price,observed_at\n"
        "us-east-1,us-east-1a,m5.large,3.0,1,2024-03-05T10:45:00Z\n"
        "us-east-1,us-east-1a,m5.large,7.0,1,2024-03-05T08:15:00Z\n"
        "us-east-1,us-east-1a,m5.large,6.0,1,2024-03-05T13:05:00Z\n"
    )
    points = list(imports.parse_csv(io.StringIO(text, newline="")))
    async with platform.ctx.db.session() as s:
        await imports.import_points(s, cid, points)

    out = await aggregate(platform, "2024-03-05T14:10:00")

    assert (out["rewritten"], out["hours"]) == (4, 1)  # 08 to 11 again; 13 forward
    assert await rows(platform, cid) == [
        (8, 7.0, 7.0, 7.0, 1, False),
        (9, 7.0, 7.0, 7.0, 0, True),
        (10, 1.0, 2.0, 3.0, 2, False),
        (11, 3.0, 3.0, 3.0, 0, True),  # carries 10:45's price now
        (12, 5.0, 5.0, 5.0, 1, False),
        (13, 6.0, 6.0, 6.0, 1, False),
    ]


async def test_a_late_duplicate_removed_by_dedup_is_aggregated_out(
    platform: Any, world: Any
) -> None:
    """A report repeats 10:05 with another price after hour 10 was aggregated: dedup keeps
    the latest; the next run counts only it."""
    cid, _ = await world.client()
    pool = await world.pool()
    await insert(platform, cid, pool, [("2024-03-05T10:05:00", 1.0), ("2024-03-05T10:20:00", 2.0)])
    await aggregate(platform, "2024-03-05T11:30:00")
    await insert(platform, cid, pool, [("2024-03-05T10:05:00", 4.0)])
    await aggregate(platform, "2024-03-05T11:40:00")  # before dedup: three points
    assert await rows(platform, cid) == [(10, 1.0, round(7 / 3, 9), 4.0, 3, False)]

    async with platform.ctx.db.session() as s:
        assert await maintenance.dedup_prices(s, at("2024-03-05T12:00:00")) == {"deleted": 1}
    out = await aggregate(platform, "2024-03-05T12:10:00")

    assert out["rewritten"] == 1
    assert await rows(platform, cid) == [(10, 2.0, 3.0, 4.0, 2, False)]


async def test_marks_older_than_the_raw_retention_are_dropped(platform: Any, world: Any) -> None:
    cid, _ = await world.client()
    pool = await world.pool()
    await insert(platform, cid, pool, [("2024-03-05T10:05:00", 1.0), ("2024-03-05T12:10:00", 5.0)])
    await aggregate(platform, "2024-03-05T13:30:00")
    before = await rows(platform, cid)
    await insert(platform, cid, pool, [("2024-03-05T10:30:00", 9.0)])

    out = await aggregate(platform, "2024-03-05T13:40:00", raw_since=at("2024-03-05T11:00:00"))

    assert out["rewritten"] == 0 and await rows(platform, cid) == before
    async with platform.ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(DirtyHour)) == 0


async def test_a_late_point_reported_by_an_agent_reaches_the_aggregates(
    platform: Any, tenants: Any
) -> None:
    """Through the HTTP report: prices 5 and 3 hours ago, aggregated; then a report of a
    price 4 hours ago; the next run aggregates its hour."""
    client = await tenants.client()
    agent = await tenants.agent(client)
    await agent.report_prices(("us-east-1a", 0.5), ago=5 * 3600)
    await agent.report_prices(("us-east-1a", 0.9), ago=3 * 3600)
    async with platform.ctx.db.session() as s:
        await maintenance.aggregate_hours(s, datetime.now(UTC))
    late_hour = (datetime.now(UTC) - timedelta(hours=4)).replace(minute=0, second=0, microsecond=0)

    await agent.report_prices(("us-east-1a", 0.7), ago=4 * 3600)
    async with platform.ctx.db.session() as s:
        out = await maintenance.aggregate_hours(s, datetime.now(UTC))

    assert out["rewritten"] >= 1
    async with platform.ctx.db.session() as s:
        row = await s.scalar(
            select(HourlyPrice).where(
                HourlyPrice.client_id == client.id, HourlyPrice.hour == late_hour
            )
        )
    assert row is not None and row.samples >= 1 and 0.7 in (row.min_price, row.max_price)


async def test_a_point_committed_after_the_run_read_the_marks_waits_for_the_next_run(
    platform: Any, world: Any
) -> None:
    """PostgreSQL: a late point whose transaction is still open while the job runs is not
    lost; its mark is claimed by the run after it commits."""
    if platform.ctx.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no transaction can be open meanwhile")
    cid, _ = await world.client()
    pool = await world.pool()
    await insert(platform, cid, pool, [("2024-03-05T10:05:00", 1.0), ("2024-03-05T12:10:00", 5.0)])
    await aggregate(platform, "2024-03-05T13:30:00")

    async with platform.ctx.db.session() as slow:
        # As in a report, a statement runs first: the transaction is open before the COPY.
        await slow.execute(select(func.count()).select_from(DirtyHour))
        await reports.insert_price_rows(slow, [(cid, pool, at("2024-03-05T11:30:00"), 3.0, 1.0)])
        during = await asyncio.wait_for(aggregate(platform, "2024-03-05T13:40:00"), 10)
    after = await aggregate(platform, "2024-03-05T13:50:00")

    assert during["rewritten"] == 0
    assert after["rewritten"] == 1
    assert (await rows(platform, cid))[1] == (11, 3.0, 3.0, 3.0, 1, False)


async def test_dirty_hours_migration_matches_the_model_and_downgrades(
    platform: Any, world: Any
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from platform_pricing.models import PricingBase

    def compare(conn: Any) -> list[Any]:
        diff = compare_metadata(MigrationContext.configure(conn), PricingBase.metadata)
        return [d for d in diff if "pricing_dirty_hours" in repr(d)]

    async with platform.ctx.db.engine.connect() as conn:
        assert await conn.run_sync(compare) == []
    cid, _ = await world.client()
    pool = await world.pool()

    await platform.migrate("pricing", "pricing_0001")
    await insert(platform, cid, pool, [("2024-03-05T10:05:00", 1.0)])  # no trigger, no table
    await platform.migrate("pricing", "heads")
    await insert(platform, cid, pool, [("2024-03-05T11:05:00", 2.0)])

    async with platform.ctx.db.session() as s:
        marks = list(await s.scalars(select(DirtyHour.hour)))
    assert marks == [at("2024-03-05T11:00:00")]


async def test_price_rows_roll_back_with_the_transaction_they_opened(
    platform: Any, world: Any
) -> None:
    """A COPY that is the first statement of a session joins its transaction (PostgreSQL):
    rolled back, nothing stays."""
    cid, _ = await world.client()
    pool = await world.pool()
    async with platform.ctx.db.session() as s:
        await reports.insert_price_rows(s, [(cid, pool, at("2024-03-05T10:05:00"), 1.0, 1.0)])
        await s.rollback()
    async with platform.ctx.db.session() as s:
        count = select(func.count()).select_from(PricePoint).where(PricePoint.client_id == cid)
        assert await s.scalar(count) == 0
