"""The embedded runner: scheduler and job execution inside ``platformctl serve``.

Used when ``[core.jobs] broker_url`` is unset. Two loops run in the server process:

- the **scheduler** sleeps until the next periodic slot falls and enqueues it (a row in
  ``core_job_runs``);
- the **runner** claims due queued runs (woken at once by an enqueue in this process,
  otherwise every ``poll_seconds``), executes up to ``[core.jobs] concurrency`` (default 4)
  of them at a time as asyncio tasks, and declares runs whose lease expired ``lost`` (a
  server that was killed mid-job) so they run again.

Several server processes on one database are safe: slots are deduplicated by the
database and claims are conditional updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from platform_core.context import PlatformContext
from platform_core.db import utcnow
from platform_core.jobs import service
from platform_core.jobs.execute import execute
from platform_core.jobs.planner import SlotPlanner

log = logging.getLogger("platform_core.jobs")

CONCURRENCY = 4
"""The default of ``[core.jobs] concurrency``: runs executed at once by one process."""
MAX_SLEEP = 60.0


async def wait_for_any(events: list[asyncio.Event], timeout: float) -> None:
    """Return when any of ``events`` is set, or after ``timeout`` seconds."""
    if any(e.is_set() for e in events):
        return
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def concurrency(ctx: PlatformContext) -> int:
    """How many runs this process executes at once: ``[core.jobs] concurrency``.

    ``ctx.state["jobs_concurrency"]`` overrides it (``platformctl worker --concurrency``).
    """
    configured = ctx.state.get("jobs_concurrency", ctx.config.core.jobs.concurrency)
    return max(1, int(configured))


async def run_scheduler(ctx: PlatformContext, stop: asyncio.Event) -> None:
    """Enqueue periodic slots as they fall, until ``stop`` is set."""
    planner = SlotPlanner(ctx)
    while not stop.is_set():
        await planner.enqueue_due()
        nxt = planner.next_due()
        delay = MAX_SLEEP if nxt is None else (nxt - utcnow()).total_seconds() + 0.001
        await wait_for_any([stop], min(MAX_SLEEP, max(0.0, delay)))


class LocalRunner:
    """Claims and executes due runs in this process, at most ``limit`` at a time."""

    def __init__(self, ctx: PlatformContext, worker: str, limit: int) -> None:
        self.ctx = ctx
        self.worker = worker
        self.limit = limit
        self.active: set[asyncio.Task[object]] = set()
        self.wake = asyncio.Event()

    def _done(self, task: asyncio.Task[object]) -> None:
        self.active.discard(task)
        self.wake.set()

    async def fill(self) -> int:
        """Claim due runs up to the free capacity and start them; return how many started."""
        free = self.limit - len(self.active)
        if free <= 0:
            return 0
        started = 0
        jobs = sorted(self.ctx.jobs)
        for candidate in await service.due_runs(self.ctx, jobs=jobs, limit=free + 20):
            if len(self.active) >= self.limit:
                break
            run = await service.claim(self.ctx, candidate.id, self.worker, job=candidate.job)
            if run is None:
                continue
            task: asyncio.Task[object] = asyncio.create_task(
                execute(self.ctx, run, self.worker), name=f"job-run:{run.id}"
            )
            self.active.add(task)
            task.add_done_callback(self._done)
            started += 1
        return started

    async def drain(self) -> None:
        """Wait for the running attempts (cancelled, and recorded, if this is cancelled)."""
        if not self.active:
            return
        tasks = list(self.active)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
            raise


async def run_runner(ctx: PlatformContext, stop: asyncio.Event) -> None:
    """Claim and execute due runs, and recover lost ones, until ``stop`` is set."""
    runner = LocalRunner(ctx, service.new_worker_id("serve"), concurrency(ctx))
    service.register_waiter(runner.wake)
    poll = ctx.config.core.jobs.poll_seconds
    recover_every = timedelta(seconds=max(poll, 1.0))
    last_recovery = utcnow() - recover_every
    try:
        while not stop.is_set():
            runner.wake.clear()
            try:
                if utcnow() - last_recovery >= recover_every:
                    last_recovery = utcnow()
                    await service.recover_lost(ctx)
                await runner.fill()
            except Exception:
                log.exception("job runner pass failed; retrying")
            await wait_for_any([runner.wake, stop], poll)
        await runner.drain()
    finally:
        service.unregister_waiter(runner.wake)
        if runner.active:
            for task in list(runner.active):
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*runner.active, return_exceptions=True)
