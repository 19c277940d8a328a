"""Background jobs of the pricing plugin: thin ``(ctx)`` wrappers over
:mod:`platform_pricing.service.maintenance`, each safe to re-run.

- ``agent_health`` (every 5 minutes): silent agents go offline.
- ``dedup_prices`` (hourly, at :00): duplicate price points are deleted.
- ``hourly_aggregates`` (daily, 00:15 UTC): hourly min/avg/max per pool, gaps filled; hours
  that late points reached are aggregated again.
- ``client_snapshots`` (daily, 00:05 UTC): each client's figures for the previous day.
- ``monthly_savings`` (the 1st, 00:30 UTC): every instance's savings of the previous month.
- ``retention`` (daily, 03:45 UTC): rows past their ``*_retention_days`` are deleted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from platform_core import JobSpec, PlatformContext, utcnow
from platform_pricing.service.maintenance import (
    aggregate_hours,
    apply_retention,
    check_agents,
    dedup_prices,
    snapshot_clients,
    store_monthly_savings,
)
from platform_pricing.settings import PricingSettings


def _settings(ctx: PlatformContext) -> PricingSettings:
    settings = ctx.settings_for("pricing", PricingSettings)
    return settings


async def agent_health(ctx: PlatformContext) -> dict[str, int]:
    """Mark silent agents offline."""
    after = _settings(ctx).agent_offline_after_seconds
    async with ctx.db.session() as session:
        return await check_agents(session, utcnow(), after)


async def dedup_prices_job(ctx: PlatformContext) -> dict[str, int]:
    """Delete exact duplicate price points."""
    async with ctx.db.session() as session:
        return await dedup_prices(session, utcnow())


async def hourly_aggregates(ctx: PlatformContext) -> dict[str, int]:
    """Aggregate full hours (with gap filling), re-aggregate hours late points reached."""
    now = utcnow()
    raw_since = now - timedelta(days=_settings(ctx).raw_retention_days)
    async with ctx.db.session() as session:
        return await aggregate_hours(session, now, raw_since=raw_since)


async def client_snapshots(ctx: PlatformContext) -> dict[str, int]:
    """Snapshot every client for yesterday."""
    async with ctx.db.session() as session:
        return await snapshot_clients(session, utcnow())


async def monthly_savings(ctx: PlatformContext) -> dict[str, Any]:
    """Store last month's savings."""
    async with ctx.db.session() as session:
        return await store_monthly_savings(session, utcnow())


async def retention(ctx: PlatformContext) -> dict[str, int]:
    """Delete rows past their retention."""
    settings = _settings(ctx)
    async with ctx.db.session() as session:
        return await apply_retention(session, utcnow(), settings)


def job_specs(ctx: PlatformContext) -> list[JobSpec]:
    """The six periodic jobs (``pricing.agent_health``, ...), schedules in UTC."""

    def spec(name: str, func: Any, doc: str, **when: Any) -> JobSpec:
        async def run() -> Any:
            return await func(ctx)

        return JobSpec(name, run, retries=2, backoff=10, timeout=1800, description=doc, **when)

    return [
        spec(
            "agent_health",
            agent_health,
            "agents silent past agent_offline_after_seconds go offline",
            every=timedelta(minutes=5),
        ),
        spec("dedup_prices", dedup_prices_job, "delete duplicate price points", cron="0 * * * *"),
        spec(
            "hourly_aggregates",
            hourly_aggregates,
            "hourly min/avg/max per pool with gap filling",
            cron="15 0 * * *",
        ),
        spec(
            "client_snapshots",
            client_snapshots,
            "each client's figures for the previous day",
            cron="5 0 * * *",
        ),
        spec(
            "monthly_savings",
            monthly_savings,
            "every instance's savings of the previous month",
            cron="30 0 1 * *",
        ),
        spec("retention", retention, "delete rows past their retention", cron="45 3 * * *"),
    ]
