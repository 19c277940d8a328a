"""Enqueueing the periodic slots that have come due, shared by both schedulers.

A planner remembers, per job, up to when it has enqueued; each pass enqueues the slots
that fell since. It starts at process start: slots that fell while no scheduler ran are
**not** backfilled (a platform down for a day does not run 24 hourly slots on restart;
the next slot runs as usual). A job that forbids overlap gets only its latest due slot,
and none while one of its runs is still queued or running (the slot is skipped, see
:func:`platform_core.jobs.service.enqueue_slot`). A job that allows overlap gets every
slot, up to :data:`MAX_SLOTS_PER_PASS` per pass.
"""

from __future__ import annotations

import logging
from datetime import datetime

from platform_core.context import PlatformContext
from platform_core.db import utcnow
from platform_core.jobs import schedule, service
from platform_core.jobs.models import JobRun

log = logging.getLogger("platform_core.jobs")

MAX_SLOTS_PER_PASS = 100


class SlotPlanner:
    """Enqueues due periodic slots of the context's jobs, from its creation on."""

    def __init__(self, ctx: PlatformContext, *, since: datetime | None = None) -> None:
        self.ctx = ctx
        start = since or utcnow()
        self.since: dict[str, datetime] = {}
        for name, spec in ctx.jobs.items():
            if not schedule.is_periodic(spec):
                continue
            try:
                schedule.validate(spec)
            except schedule.ScheduleError as exc:
                log.error("job not scheduled: %s", exc, extra={"job": name})
                continue
            self.since[name] = start

    def next_due(self) -> datetime | None:
        """When the earliest next slot of any periodic job falls (None without any)."""
        upcoming = [
            schedule.next_run(self.ctx.jobs[name], since) for name, since in self.since.items()
        ]
        times = [t for t in upcoming if t is not None]
        return min(times) if times else None

    async def enqueue_due(self) -> list[JobRun]:
        """Enqueue the slots due since the last pass; return the runs this process enqueued.

        A job whose enqueueing fails (database error) is tried again on the next pass.
        """
        now = utcnow()
        enqueued: list[JobRun] = []
        for name, since in list(self.since.items()):
            spec = self.ctx.jobs[name]
            if spec.overlap:
                slots = list(schedule.slots_between(spec, since, now))[-MAX_SLOTS_PER_PASS:]
            else:
                latest = schedule.latest_slot(spec, since, now)
                slots = [latest] if latest is not None else []
            try:
                for slot in slots:
                    run = await service.enqueue_slot(self.ctx, name, slot)
                    if run is not None:
                        enqueued.append(run)
            except Exception:
                log.exception("could not enqueue a periodic slot", extra={"job": name})
                continue
            self.since[name] = now
        return enqueued
