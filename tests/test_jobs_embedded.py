"""The embedded job runner (inside ``serve``): schedules, retries, timeouts, overlap, leases.

Real runner loops on a real database (SQLite, or PostgreSQL with
``PLATFORM_TEST_DATABASE_URL``); jobs are in-test plugins.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from platform_core import JobSpec, hookimpl
from platform_core.db import utcnow
from platform_core.errors import Conflict, NotFound
from platform_core.jobs import service
from platform_core.jobs.embedded import run_runner
from platform_core.jobs.execute import execute
from platform_core.jobs.models import JobRun
from platform_core.jobs.planner import SlotPlanner

FAST = {"jobs": {"poll_seconds": 0.05, "lease_seconds": 5}}


class JobsPlugin:
    """An in-test plugin contributing the given job specs."""

    def __init__(self, *specs: JobSpec) -> None:
        self.specs = list(specs)

    @hookimpl
    def platform_jobs(self) -> list[JobSpec]:
        """The specs given."""
        return self.specs


async def runs_of(ctx: Any, job: str) -> list[JobRun]:
    """Every run record of ``job``, oldest first."""
    async with ctx.db.session() as session:
        rows = await session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id))
        return list(rows.all())


async def wait_until(
    check: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


async def boot(platform_factory: Any, *specs: JobSpec, **core: Any) -> Any:
    """A started platform (background loops on unless ``background=False``) with ``specs``."""
    return await platform_factory(extra_plugins={"demo": JobsPlugin(*specs)}, core=FAST | core)


class Tracker:
    """Counts calls and the largest number of concurrent executions."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = 0
        self.max_running = 0

    def job(self, seconds: float) -> Callable[[], Awaitable[str]]:
        """A job function sleeping ``seconds``, counted."""

        async def func() -> str:
            self.calls += 1
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            try:
                await asyncio.sleep(seconds)
            finally:
                self.running -= 1
            return "done"

        return func


async def test_periodic_job_runs_once_per_aligned_slot_embedded(platform_factory):
    seen: list[Any] = []

    async def tick(run: service.RunInfo) -> str:
        seen.append(run.scheduled_for)
        return run.scheduled_for.isoformat()

    every = timedelta(milliseconds=200)
    platform = await boot(platform_factory, JobSpec("tick", tick, every=every, overlap=True))

    async def five_done() -> list[JobRun]:
        runs = [r for r in await runs_of(platform.ctx, "demo.tick") if r.state == "succeeded"]
        return runs if len(runs) >= 5 else []

    runs = await wait_until(five_done)
    slots = [r.scheduled_for for r in runs]
    assert len(set(slots)) == len(slots)
    assert all(s.microsecond % 200_000 == 0 for s in slots)
    assert all(b - a == every for a, b in itertools.pairwise(slots))
    assert all(r.trigger == "schedule" and r.attempt == 1 for r in runs)
    assert runs[0].result == f'"{slots[0].isoformat()}"'
    assert all(r.started_at - r.scheduled_for < timedelta(seconds=1) for r in runs)


async def test_failing_job_is_retried_with_backoff_as_new_attempts(platform_factory):
    async def flaky() -> None:
        raise ValueError("boom")

    platform = await boot(platform_factory, JobSpec("flaky", flaky, retries=2, backoff=0.2))
    await service.enqueue(platform.ctx, "demo.flaky")

    async def three_failed() -> list[JobRun]:
        runs = await runs_of(platform.ctx, "demo.flaky")
        return runs if len(runs) == 3 and all(r.state == "failed" for r in runs) else []

    runs = await wait_until(three_failed)
    await asyncio.sleep(0.5)  # no fourth attempt follows
    assert len(await runs_of(platform.ctx, "demo.flaky")) == 3
    assert [r.attempt for r in runs] == [1, 2, 3]
    assert [r.trigger for r in runs] == ["manual", "retry", "retry"]
    assert len({r.scheduled_for for r in runs}) == 1
    assert all(r.error == "ValueError: boom" for r in runs)
    assert runs[1].enqueued_at - runs[0].finished_at >= timedelta(seconds=0.2)
    assert runs[2].enqueued_at - runs[1].finished_at >= timedelta(seconds=0.4)
    assert runs[1].started_at >= runs[1].enqueued_at
    assert runs[2].started_at >= runs[2].enqueued_at


async def test_job_running_past_its_timeout_is_recorded_as_timeout(platform_factory):
    tracker = Tracker()
    platform = await boot(platform_factory, JobSpec("slow", tracker.job(30), timeout=0.3))
    started = time.monotonic()
    run = await service.enqueue(platform.ctx, "demo.slow")

    async def finished() -> JobRun | None:
        found = await service.get_run(platform.ctx, run.id)
        return found if found.state != "queued" and found.state != "running" else None

    done = await wait_until(finished)
    assert done.state == "timeout"
    assert done.error == "timed out after 0.3s"
    assert time.monotonic() - started < 5
    assert tracker.running == 0  # the job was cancelled, not left running


async def test_raising_periodic_job_does_not_stop_the_scheduler_or_other_jobs(platform_factory):
    calls = {"ok": 0}

    async def broken() -> None:
        raise RuntimeError("always")

    async def fine() -> None:
        calls["ok"] += 1

    every = timedelta(milliseconds=200)
    platform = await boot(
        platform_factory,
        JobSpec("broken", broken, every=every),
        JobSpec("fine", fine, every=every),
    )

    async def three_failures() -> list[JobRun]:
        runs = await runs_of(platform.ctx, "demo.broken")
        failed = [r for r in runs if r.state == "failed"]
        return failed if len(failed) >= 3 else []

    failed = await wait_until(three_failures)
    assert len({r.scheduled_for for r in failed}) == len(failed)
    assert all(r.error == "RuntimeError: always" for r in failed)
    fine_runs = await runs_of(platform.ctx, "demo.fine")
    assert sum(r.state == "succeeded" for r in fine_runs) >= 2


async def test_job_cancelling_itself_is_recorded_cancelled_and_retried(platform_factory):
    async def quitter() -> None:
        raise asyncio.CancelledError

    platform = await boot(platform_factory, JobSpec("quitter", quitter, retries=1, backoff=0))
    await service.enqueue(platform.ctx, "demo.quitter")

    async def two_cancelled() -> list[JobRun]:
        runs = await runs_of(platform.ctx, "demo.quitter")
        return runs if len(runs) == 2 and all(r.state == "cancelled" for r in runs) else []

    runs = await wait_until(two_cancelled)
    assert runs[0].error == "cancelled by the job"
    assert runs[1].attempt == 2


async def test_non_overlapping_job_waits_for_the_running_run_manual(platform_factory):
    tracker = Tracker()
    platform = await boot(platform_factory, JobSpec("solo", tracker.job(0.4)))
    first = await service.enqueue(platform.ctx, "demo.solo")
    second = await service.enqueue(platform.ctx, "demo.solo")

    async def both_done() -> list[JobRun]:
        runs = [await service.get_run(platform.ctx, r.id) for r in (first, second)]
        return runs if all(r.state == "succeeded" for r in runs) else []

    a, b = await wait_until(both_done)
    assert tracker.max_running == 1
    assert b.started_at >= a.finished_at


async def test_overlapping_job_runs_concurrently_manual(platform_factory):
    tracker = Tracker()
    platform = await boot(platform_factory, JobSpec("multi", tracker.job(0.5), overlap=True))
    runs = [await service.enqueue(platform.ctx, "demo.multi") for _ in range(2)]

    async def both_done() -> bool:
        found = [await service.get_run(platform.ctx, r.id) for r in runs]
        return all(r.state == "succeeded" for r in found)

    await wait_until(both_done)
    assert tracker.max_running == 2


async def test_periodic_slot_is_skipped_while_the_previous_run_is_running(platform_factory):
    tracker = Tracker()
    every = timedelta(milliseconds=200)
    platform = await boot(platform_factory, JobSpec("slowtick", tracker.job(0.7), every=every))

    async def three_done() -> list[JobRun]:
        runs = [r for r in await runs_of(platform.ctx, "demo.slowtick") if r.state == "succeeded"]
        return runs if len(runs) >= 3 else []

    runs = await wait_until(three_done)
    assert tracker.max_running == 1
    gaps = [b.scheduled_for - a.scheduled_for for a, b in itertools.pairwise(runs)]
    assert all(gap > every for gap in gaps)  # slots falling during a run were skipped
    assert all(b.started_at >= a.finished_at for a, b in itertools.pairwise(runs))


async def test_manual_run_stores_the_return_value_as_json(platform_factory):
    async def report(ctx: Any, run: service.RunInfo) -> dict[str, Any]:
        return {"run": run.id, "attempt": run.attempt, "has_ctx": ctx is not None}

    platform = await boot(platform_factory, JobSpec("report", report))
    run = await service.enqueue(platform.ctx, "demo.report")

    async def done() -> JobRun | None:
        found = await service.get_run(platform.ctx, run.id)
        return found if found.state == "succeeded" else None

    found = await wait_until(done)
    assert found.result == f'{{"run": {run.id}, "attempt": 1, "has_ctx": true}}'
    assert found.trigger == "manual"
    assert found.worker.startswith("serve:")


async def test_enqueue_unknown_job_raises_not_found(platform_factory):
    platform = await boot(platform_factory, background=False)
    with pytest.raises(NotFound, match=r"unknown job 'demo\.nope'"):
        await service.enqueue(platform.ctx, "demo.nope")


async def test_two_planners_enqueue_each_slot_once(platform_factory):
    async def tick() -> None:
        return None

    every = timedelta(milliseconds=100)
    spec = JobSpec("tick", tick, every=every, overlap=True)
    platform = await boot(platform_factory, spec, background=False)
    start = utcnow()
    planners = [SlotPlanner(platform.ctx, since=start) for _ in range(2)]
    await asyncio.sleep(0.55)
    enqueued = await asyncio.gather(*(p.enqueue_due() for p in planners))
    runs = await runs_of(platform.ctx, "demo.tick")
    assert len(runs) >= 5
    assert len({r.scheduled_for for r in runs}) == len(runs)
    assert sum(len(e) for e in enqueued) == len(runs)


async def test_second_claim_of_a_run_takes_nothing(platform_factory):
    async def noop() -> None:
        return None

    platform = await boot(platform_factory, JobSpec("noop", noop), background=False)
    run = await service.enqueue(platform.ctx, "demo.noop")
    first, second = await asyncio.gather(
        service.claim(platform.ctx, run.id, "w1"), service.claim(platform.ctx, run.id, "w2")
    )
    claimed = [c for c in (first, second) if c is not None]
    assert len(claimed) == 1
    assert claimed[0].state == "running"
    assert claimed[0].lease_until > utcnow() + timedelta(seconds=4)


async def test_claim_after_a_run_finished_starts_after_it_finished(platform_factory, monkeypatch):
    # A claim reads the clock, then waits its turn (the database's write lock); the run it
    # waits behind finishes meanwhile. Its start must not read earlier than that finish.
    async def noop() -> None:
        return None

    platform = await boot(platform_factory, JobSpec("solo", noop), background=False)
    first = await service.enqueue(platform.ctx, "demo.solo")
    second = await service.enqueue(platform.ctx, "demo.solo")
    running = await service.claim(platform.ctx, first.id, "w1")
    assert running is not None
    assert await service.claim(platform.ctx, second.id, "w2") is None  # it does not overlap
    stale = utcnow()  # the clock as the waiting claim read it, before the first run finished
    await asyncio.sleep(0.01)
    await service.finish(platform.ctx, running, "w1", "succeeded")
    clock = iter([stale])
    monkeypatch.setattr(service, "utcnow", lambda: next(clock, None) or utcnow())
    claimed = await service.claim(platform.ctx, second.id, "w2")
    ended = await service.get_run(platform.ctx, first.id)
    assert claimed is not None and claimed.started_at is not None
    assert claimed.started_at >= ended.finished_at > stale
    assert claimed.lease_until > claimed.started_at + timedelta(seconds=4)


async def test_expired_lease_is_marked_lost_and_run_again(platform_factory):
    done = []

    async def work(run: service.RunInfo) -> None:
        done.append(run.attempt)

    platform = await boot(platform_factory, JobSpec("work", work))
    past = utcnow() - timedelta(minutes=5)
    async with platform.ctx.db.session() as session:  # a worker that died mid-run
        session.add(
            JobRun(
                job="demo.work",
                scheduled_for=past,
                attempt=1,
                trigger="schedule",
                state="running",
                worker="worker:gone:1:abc",
                enqueued_at=past,
                started_at=past,
                lease_until=past + timedelta(seconds=60),
            )
        )

    async def rerun() -> list[JobRun]:
        runs = await runs_of(platform.ctx, "demo.work")
        return runs if len(runs) == 2 and runs[1].state == "succeeded" else []

    lost, retry = await wait_until(rerun)
    assert lost.state == "lost"
    assert "lease expired" in lost.error and "worker:gone:1:abc" in lost.error
    assert (retry.attempt, retry.trigger, retry.scheduled_for) == (2, "retry", past)
    assert done == [2]


async def test_heartbeat_extends_the_lease_of_a_long_run(platform_factory):
    tracker = Tracker()
    platform = await boot(platform_factory, JobSpec("long", tracker.job(2.2)))
    run = await service.enqueue(platform.ctx, "demo.long")

    async def running() -> JobRun | None:
        found = await service.get_run(platform.ctx, run.id)
        return found if found.state == "running" else None

    first = await wait_until(running)
    await asyncio.sleep(1.9)
    later = await service.get_run(platform.ctx, run.id)
    assert later.state == "running"
    assert later.lease_until > first.lease_until + timedelta(seconds=1)


async def test_stopped_runner_records_interrupted_run_and_enqueues_it_again(platform_factory):
    tracker = Tracker()
    platform = await boot(platform_factory, JobSpec("long", tracker.job(30)), background=False)
    run = await service.enqueue(platform.ctx, "demo.long")
    stop = asyncio.Event()
    task = asyncio.create_task(run_runner(platform.ctx, stop))

    async def running() -> bool:
        return (await service.get_run(platform.ctx, run.id)).state == "running"

    await wait_until(running)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    runs = await runs_of(platform.ctx, "demo.long")
    assert runs[0].state == "cancelled"
    assert runs[0].error.startswith("interrupted")
    assert (runs[1].attempt, runs[1].state, runs[1].trigger) == (2, "queued", "retry")
    assert tracker.running == 0


async def test_foreground_run_refuses_while_a_non_overlapping_run_is_running(platform_factory):
    tracker = Tracker()
    platform = await boot(platform_factory, JobSpec("solo", tracker.job(0.1)), background=False)
    first = await service.start_now(platform.ctx, "demo.solo", "cli:a")
    with pytest.raises(Conflict, match="already running"):
        await service.start_now(platform.ctx, "demo.solo", "cli:b")
    outcome = await execute(platform.ctx, first, "cli:a", retry=False)
    assert outcome.state == "succeeded"
    assert outcome.result == '"done"'


async def test_concurrent_foreground_runs_of_a_non_overlapping_job_start_once(platform_factory):
    async def noop() -> None:
        return None

    platform = await boot(platform_factory, JobSpec("solo", noop), background=False)
    queued = await service.enqueue(platform.ctx, "demo.solo")
    outcomes = await asyncio.gather(
        service.claim(platform.ctx, queued.id, "worker:a"),
        *(service.start_now(platform.ctx, "demo.solo", f"cli:{i}") for i in range(8)),
        return_exceptions=True,
    )
    started = [o for o in outcomes if isinstance(o, JobRun)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(started) == 1, outcomes
    claim_lost = outcomes[0] is None  # a claim that loses takes nothing, without an error
    assert len(refused) == len(outcomes) - 1 - claim_lost
    running = [r for r in await runs_of(platform.ctx, "demo.solo") if r.state == "running"]
    assert [r.id for r in running] == [started[0].id]


async def test_prune_deletes_finished_runs_older_than_history_days(platform_factory):
    async def noop() -> None:
        return None

    platform = await boot(platform_factory, JobSpec("noop", noop), background=False)
    old = utcnow() - timedelta(days=31)
    recent = utcnow() - timedelta(days=1)

    def row(state: str, at: Any, attempt: int) -> JobRun:
        return JobRun(
            job="demo.noop",
            scheduled_for=at,
            attempt=attempt,
            trigger="schedule",
            state=state,
            enqueued_at=at,
            finished_at=at if state != "queued" else None,
        )

    async with platform.ctx.db.session() as session:
        session.add_all(
            [
                row("succeeded", old, 1),
                row("failed", old, 2),
                row("queued", old, 3),
                row("succeeded", recent, 1),
            ]
        )
    assert await service.prune_job_runs(platform.ctx) == 2
    left = await runs_of(platform.ctx, "demo.noop")
    assert sorted((r.state, r.finished_at is None) for r in left) == [
        ("queued", True),
        ("succeeded", False),
    ]


async def test_concurrency_setting_bounds_the_runs_executed_at_once(platform_factory):
    tracker = Tracker()
    jobs = FAST["jobs"] | {"concurrency": 2}
    platform = await boot(
        platform_factory, JobSpec("wide", tracker.job(0.3), overlap=True), jobs=jobs
    )
    runs = [await service.enqueue(platform.ctx, "demo.wide") for _ in range(6)]

    async def all_done() -> bool:
        found = [await service.get_run(platform.ctx, r.id) for r in runs]
        return all(r.state == "succeeded" for r in found)

    await wait_until(all_done)
    assert tracker.calls == 6
    assert tracker.max_running == 2  # the default, 4, would run four at once
