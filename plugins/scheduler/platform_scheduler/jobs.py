"""Background jobs of the scheduler: start, end, expire, remind (every minute by default)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from platform_core import JobSpec, PlatformContext, Principal, utcnow
from platform_scheduler import power
from platform_scheduler.service import transitions
from platform_scheduler.settings import SchedulerSettings

SYSTEM = Principal(user_id=0, username="scheduler", role="admin", scopes=frozenset())
"""The actor of power actions the jobs take (recorded in the audit)."""


async def start_bookings(ctx: PlatformContext) -> dict[str, int]:
    """Approved bookings whose start passed become active (and are powered on if asked)."""
    async with ctx.db.session() as session:
        started = await transitions.start_due(session, utcnow())
        wanted = [ids for b, ids in started if b.power_on_start]
    powered = sum([await power.switch_configured(ctx, ids, "on", SYSTEM) for ids in wanted])
    return {"started": len(started), "powered_on": powered}


async def end_bookings(ctx: PlatformContext) -> dict[str, int]:
    """Active bookings whose end passed complete (and are powered off if asked)."""
    async with ctx.db.session() as session:
        ended = await transitions.end_due(session, utcnow())
        wanted = [ids for b, ids in ended if b.power_off_end]
    powered = sum([await power.switch_configured(ctx, ids, "off", SYSTEM) for ids in wanted])
    return {"ended": len(ended), "powered_off": powered}


async def expire_bookings(ctx: PlatformContext) -> dict[str, int]:
    """Pending bookings whose start passed unapproved become expired."""
    async with ctx.db.session() as session:
        return {"expired": len(await transitions.expire_pending(session, utcnow()))}


async def remind_bookings(ctx: PlatformContext) -> dict[str, int]:
    """Remind owners of approved bookings starting within ``reminder_minutes``."""
    settings = ctx.settings_for("scheduler", SchedulerSettings)
    ahead = timedelta(minutes=settings.reminder_minutes)
    async with ctx.db.session() as session:
        return {"reminded": await transitions.send_reminders(session, utcnow(), ahead)}


def job_specs(ctx: PlatformContext) -> list[JobSpec]:
    """The four periodic jobs (``scheduler.start_bookings``, ...)."""
    settings = ctx.settings_for("scheduler", SchedulerSettings)
    every = timedelta(seconds=settings.job_interval_seconds)

    def spec(name: str, func: Any, doc: str) -> JobSpec:
        async def run() -> dict[str, int]:
            return await func(ctx)

        return JobSpec(name, run, every=every, retries=2, backoff=5, timeout=120, description=doc)

    return [
        spec("start_bookings", start_bookings, "approved -> active at start (power on)"),
        spec("end_bookings", end_bookings, "active -> completed at end (power off)"),
        spec("expire_bookings", expire_bookings, "pending -> expired once the start passed"),
        spec("remind_bookings", remind_bookings, "remind owners before their booking starts"),
    ]
