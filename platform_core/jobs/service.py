"""Job run records: enqueue, claim, heartbeat, finish, retry, recover, list, prune.

Everything that makes the runners correct lives in the database, so the embedded runner,
the distributed workers and ``platformctl jobs run --wait`` share these functions:

- **Enqueue** inserts a ``queued`` row. A periodic slot is ``(job, scheduled_for, attempt=1)``
  and the unique constraint over those columns makes a second scheduler's insert of the
  same slot fail (``IntegrityError``): the slot is enqueued, hence run, once.
- ``enqueued_at`` is the time an attempt **may start** (not before): now for new runs,
  now + backoff for retries.
- **Claim** is a conditional ``UPDATE ... SET state='running' WHERE state='queued'``: of two
  processes claiming one run, exactly one updates a row. Unless the job allows overlap,
  the same statement refuses while another run of the job is running with a live lease
  (PostgreSQL additionally serializes claims of one job with an advisory lock).
- **Leases**: a running attempt holds ``lease_until``, extended by a heartbeat while the
  job runs. A running row whose lease expired belongs to a dead worker: it becomes
  ``lost`` and a new attempt is enqueued (at least once).
- **Finish** is conditional on still holding the run (a worker that lost its lease cannot
  overwrite the record) and enqueues the retry, if any, in the same transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from platform_core.context import PlatformContext
from platform_core.db import utcnow
from platform_core.errors import Conflict, NotFound, ValidationFailed
from platform_core.jobs import schedule
from platform_core.jobs.models import RUN_STATES, JobRun
from platform_core.specs import JobSpec

FINISHED_STATES = ("succeeded", "failed", "timeout", "cancelled", "lost")
FAILED_STATES = ("failed", "timeout", "cancelled")
INTERRUPTION_ALLOWANCE = 3
"""Extra attempts granted to runs interrupted by a dead or stopping worker (lost)."""
ERROR_LIMIT = 4000
RESULT_LIMIT = 4000

_waiters: set[asyncio.Event] = set()


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a job function receives as ``run``: which run and attempt this is."""

    id: int
    job: str
    attempt: int
    scheduled_for: datetime
    trigger: str


@dataclasses.dataclass(frozen=True)
class JobOverview:
    """One row of ``platformctl jobs list``: the job, its schedule and its last run."""

    name: str
    schedule: str
    next_run: datetime | None
    last_state: str | None
    last_run_at: datetime | None
    retries: int
    timeout: float | None
    overlap: bool
    description: str


def run_info(run: JobRun) -> RunInfo:
    """The :class:`RunInfo` of a run record."""
    return RunInfo(run.id, run.job, run.attempt, run.scheduled_for, run.trigger)


def new_worker_id(role: str) -> str:
    """A process-unique worker name: ``<role>:<host>:<pid>:<random>``."""
    return f"{role}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def register_waiter(event: asyncio.Event) -> None:
    """Have ``event`` set whenever this process enqueues a run (wakes the embedded runner)."""
    _waiters.add(event)


def unregister_waiter(event: asyncio.Event) -> None:
    """Stop waking ``event``."""
    _waiters.discard(event)


def _notify() -> None:
    for event in list(_waiters):
        event.set()


def get_spec(ctx: PlatformContext, name: str) -> JobSpec:
    """The spec of job ``name`` (``<plugin>.<job>``); ``NotFound`` naming the known jobs."""
    spec = ctx.jobs.get(name)
    if spec is None:
        known = ", ".join(sorted(ctx.jobs)) or "none"
        raise NotFound(f"unknown job {name!r} (known jobs: {known})")
    return spec


def lease(ctx: PlatformContext) -> timedelta:
    """How long a claim holds without a heartbeat: ``[core.jobs] lease_seconds``."""
    return timedelta(seconds=ctx.config.core.jobs.lease_seconds)


def backoff_delay(spec: JobSpec, attempt: int) -> float:
    """Seconds before the attempt after ``attempt``: ``backoff * 2**(attempt - 1)``."""
    return float(max(0.0, spec.backoff) * 2 ** (attempt - 1))


def max_attempts(spec: JobSpec | None, *, interrupted: bool) -> int:
    """How many attempts a run may have: ``retries + 1``, plus an allowance for interruptions."""
    retries = spec.retries if spec is not None else 0
    return retries + 1 + (INTERRUPTION_ALLOWANCE if interrupted else 0)


def format_result(value: Any) -> str | None:
    """A job's return value as stored text (JSON when possible); None for None."""
    if value is None:
        return None
    try:
        encoded = json.dumps(value, default=str)
    except (TypeError, ValueError):
        encoded = repr(value)
    return encoded[:RESULT_LIMIT]


# -- enqueueing ---------------------------------------------------------------------------


async def _insert(ctx: PlatformContext, run: JobRun) -> JobRun | None:
    try:
        async with ctx.db.session() as session:
            session.add(run)
    except IntegrityError:
        return None
    _notify()
    return run


async def enqueue(
    ctx: PlatformContext,
    name: str,
    *,
    trigger: str = "manual",
    scheduled_for: datetime | None = None,
) -> JobRun:
    """Enqueue a run of job ``name`` now (``NotFound`` for an unknown job); return it."""
    get_spec(ctx, name)
    for _ in range(5):  # two manual runs in the same microsecond: try the next one
        now = utcnow()
        run = await _insert(
            ctx,
            JobRun(
                job=name,
                scheduled_for=scheduled_for or now,
                attempt=1,
                trigger=trigger,
                state="queued",
                enqueued_at=now,
            ),
        )
        if run is not None:
            return run
        if scheduled_for is not None:
            break
        await asyncio.sleep(0.001)
    raise Conflict(f"a run of {name!r} for that time is already enqueued")


def _busy_query(name: str, *, include_queued: bool) -> Select[int]:
    """The id of a queued (optionally) or live running run of ``name``, the oldest."""
    live = and_(JobRun.state == "running", JobRun.lease_until >= utcnow())
    cond = or_(live, JobRun.state == "queued") if include_queued else live
    return select(JobRun.id).where(JobRun.job == name, cond).order_by(JobRun.id).limit(1)


async def _busy(ctx: PlatformContext, name: str, *, include_queued: bool) -> int | None:
    """The id of a queued (optionally) or live running run of ``name``, else None."""
    async with ctx.db.session() as session:
        return await session.scalar(_busy_query(name, include_queued=include_queued))


async def enqueue_slot(ctx: PlatformContext, name: str, slot: datetime) -> JobRun | None:
    """Enqueue the periodic slot ``slot`` of job ``name``; None when not enqueued.

    Not enqueued: another scheduler already enqueued this slot (the unique constraint), or
    the job does not allow overlap and one of its runs is still queued or running, so the
    slot is skipped rather than piling up behind a slow run.
    """
    spec = get_spec(ctx, name)
    if not spec.overlap and await _busy(ctx, name, include_queued=True) is not None:
        return None
    return await _insert(
        ctx,
        JobRun(
            job=name,
            scheduled_for=slot,
            attempt=1,
            trigger="schedule",
            state="queued",
            enqueued_at=utcnow(),
        ),
    )


# -- claiming and running -------------------------------------------------------------------


async def due_runs(
    ctx: PlatformContext, *, jobs: Sequence[str], limit: int, older_than: float = 0.0
) -> list[JobRun]:
    """Queued runs of ``jobs`` whose start time has come (oldest first)."""
    if not jobs or limit <= 0:
        return []
    cutoff = utcnow() - timedelta(seconds=older_than)
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(JobRun)
            .where(JobRun.state == "queued", JobRun.enqueued_at <= cutoff, JobRun.job.in_(jobs))
            .order_by(JobRun.enqueued_at, JobRun.id)
            .limit(limit)
        )
        return list(rows.all())


async def _lock_job(ctx: PlatformContext, session: AsyncSession, name: str) -> None:
    """Hold job ``name``'s lock until the transaction ends, on PostgreSQL.

    Starts of one non-overlapping job (claims, foreground runs) take it, so two of them
    cannot both miss each other's run. SQLite needs none: it has one writer at a time.
    """
    if ctx.db.dialect == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:job))"), {"job": name})


async def claim(
    ctx: PlatformContext, run_id: int, worker: str, *, job: str | None = None
) -> JobRun | None:
    """Take run ``run_id`` for ``worker``: queued -> running with a lease; None when not taken.

    Not taken: the run does not exist, is not queued (someone else claimed it, or a
    duplicate message), is not due yet, belongs to a job this process does not know, or
    would overlap a live run of a job that forbids overlap (it stays queued). ``job``, when
    the caller knows it, saves reading the row first.
    """
    name = job
    if name is None:  # a broker message carries only the id
        async with ctx.db.session() as session:
            name = await session.scalar(select(JobRun.job).where(JobRun.id == run_id))
    if name is None or name not in ctx.jobs:
        return None
    spec = ctx.jobs[name]
    now = utcnow()
    stmt = update(JobRun).where(
        JobRun.id == run_id,
        JobRun.job == name,
        JobRun.state == "queued",
        JobRun.enqueued_at <= now,
    )
    if not spec.overlap:
        other = aliased(JobRun)
        stmt = stmt.where(
            ~exists(
                select(other.id).where(
                    other.job == name,
                    other.state == "running",
                    other.lease_until >= now,
                    other.id != run_id,
                )
            )
        )
    stmt = stmt.values(state="running", worker=worker)  # start and lease: stamped below
    async with ctx.db.session() as session:
        if not spec.overlap:
            await _lock_job(ctx, session, name)
        result = await session.execute(stmt)
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        # Stamp the start now that the claim has seen the state it starts from, not with
        # ``now``: that was read before the claim waited its turn, so a run of this job that
        # finished in between would seem to overlap this one (started before it finished).
        # The same transaction: nobody sees the run running without a start and a lease.
        started = utcnow()
        return await session.scalar(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(started_at=started, lease_until=started + lease(ctx))
            .returning(JobRun)
        )


async def start_now(ctx: PlatformContext, name: str, worker: str) -> JobRun:
    """Insert a manual run already claimed by ``worker`` (``jobs run --wait``).

    ``Conflict`` when the job forbids overlap and a run of it is running. The run is
    inserted first and the check made in the same transaction, under the job's lock (the
    one ``claim`` takes on PostgreSQL; SQLite's single writer on SQLite): of two concurrent
    starts, or a start and a claim, the second sees the first and does not run.
    """
    spec = get_spec(ctx, name)
    now = utcnow()
    run = JobRun(
        job=name,
        scheduled_for=now,
        attempt=1,
        trigger="manual",
        state="running",
        worker=worker,
        enqueued_at=now,
        started_at=now,
        lease_until=now + lease(ctx),
    )
    async with ctx.db.session() as session:
        if not spec.overlap:
            await _lock_job(ctx, session, name)
        session.add(run)
        await session.flush()
        if not spec.overlap:
            busy = await session.scalar(
                _busy_query(name, include_queued=False).where(JobRun.id != run.id)
            )
            if busy is not None:
                raise Conflict(f"job {name!r} is already running (run {busy}); it does not overlap")
            started = utcnow()  # as in ``claim``: not before a run that finished while we waited
            run.started_at, run.lease_until = started, started + lease(ctx)
    return run


async def heartbeat(ctx: PlatformContext, run_id: int, worker: str) -> bool:
    """Extend the lease of a run ``worker`` holds; False when it no longer holds it."""
    async with ctx.db.session() as session:
        result = await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.state == "running", JobRun.worker == worker)
            .values(lease_until=utcnow() + lease(ctx))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _retry_row(run: JobRun, delay: float) -> JobRun:
    now = utcnow()
    return JobRun(
        job=run.job,
        scheduled_for=run.scheduled_for,
        attempt=run.attempt + 1,
        trigger="retry",
        state="queued",
        enqueued_at=now + timedelta(seconds=delay),
    )


async def finish(
    ctx: PlatformContext,
    run: JobRun,
    worker: str,
    state: str,
    *,
    error: str | None = None,
    result: str | None = None,
    retry: bool = True,
    interrupted: bool = False,
) -> JobRun | None:
    """Record the outcome of an attempt ``worker`` holds; return the retry enqueued, if any.

    A failed, timed-out or cancelled attempt is retried (a new row, ``attempt + 1``,
    starting after the backoff) while attempts are left and ``retry`` is true; an
    ``interrupted`` one (the runner shut down under it) is re-run at once, like a lost one.
    Nothing happens when the worker no longer holds the run (it was declared lost).
    """
    if state not in FINISHED_STATES:
        raise ValueError(f"not a final state: {state!r}")
    spec = ctx.jobs.get(run.job)
    next_run = None
    async with ctx.db.session() as session:
        done = await session.execute(
            update(JobRun)
            .where(JobRun.id == run.id, JobRun.state == "running", JobRun.worker == worker)
            .values(
                state=state,
                finished_at=utcnow(),
                lease_until=None,
                error=error[:ERROR_LIMIT] if error else None,
                result=result,
            )
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            return None
        allowed = max_attempts(spec, interrupted=interrupted)
        if retry and state in FAILED_STATES and run.attempt < allowed:
            delay = 0.0 if interrupted or spec is None else backoff_delay(spec, run.attempt)
            next_run = _retry_row(run, delay)
            session.add(next_run)
    if next_run is not None:
        _notify()
    return next_run


async def recover_lost(ctx: PlatformContext) -> list[JobRun]:
    """Mark running attempts whose lease expired as ``lost`` and enqueue their next attempt.

    Returns the attempts enqueued. Safe to call from several processes at once: the
    state change is conditional, and the retry row is inserted in the same transaction.
    """
    now = utcnow()
    async with ctx.db.session() as session:
        expired = list(
            (
                await session.scalars(
                    select(JobRun)
                    .where(JobRun.state == "running", JobRun.lease_until < now)
                    .order_by(JobRun.id)
                    .limit(200)
                )
            ).all()
        )
    enqueued = []
    for run in expired:
        try:
            async with ctx.db.session() as session:
                marked = await session.execute(
                    update(JobRun)
                    .where(JobRun.id == run.id, JobRun.state == "running", JobRun.lease_until < now)
                    .values(
                        state="lost",
                        finished_at=now,
                        lease_until=None,
                        error=f"lease expired at {run.lease_until:%Y-%m-%d %H:%M:%S} UTC: "
                        f"worker {run.worker} stopped (killed or hung); run again",
                    )
                )
                if not marked.rowcount:  # type: ignore[attr-defined]
                    continue
                if run.attempt < max_attempts(ctx.jobs.get(run.job), interrupted=True):
                    retry = _retry_row(run, 0.0)
                    session.add(retry)
                    enqueued.append(retry)
        except IntegrityError:  # the next attempt exists already
            continue
    if enqueued:
        _notify()
    return enqueued


# -- reading ------------------------------------------------------------------------------


async def get_run(ctx: PlatformContext, run_id: int) -> JobRun:
    """One run record; ``NotFound`` when there is none."""
    async with ctx.db.session() as session:
        run = await session.get(JobRun, run_id)
    if run is None:
        raise NotFound(f"job run {run_id} not found")
    return run


async def list_runs(
    ctx: PlatformContext,
    *,
    job: str | None = None,
    state: str | None = None,
    limit: int = 50,
) -> list[JobRun]:
    """Run records, newest first, optionally of one job and in one state."""
    if state is not None and state not in RUN_STATES:
        raise ValidationFailed(f"unknown run state {state!r} (one of {', '.join(RUN_STATES)})")
    query = select(JobRun).order_by(JobRun.id.desc()).limit(max(1, limit))
    if job is not None:
        query = query.where(JobRun.job == job)
    if state is not None:
        query = query.where(JobRun.state == state)
    async with ctx.db.session() as session:
        return list((await session.scalars(query)).all())


async def overview(ctx: PlatformContext) -> list[JobOverview]:
    """Every job of the active plugins: schedule, next run and the last run's state."""
    names = sorted(ctx.jobs)
    last: dict[str, JobRun] = {}
    if names:
        latest = (
            select(func.max(JobRun.id)).where(JobRun.job.in_(names)).group_by(JobRun.job)
        ).scalar_subquery()
        async with ctx.db.session() as session:
            rows = await session.scalars(select(JobRun).where(JobRun.id.in_(latest)))
            last = {r.job: r for r in rows.all()}
    now = utcnow()
    out = []
    for name in names:
        spec = ctx.jobs[name]
        run = last.get(name)
        out.append(
            JobOverview(
                name=name,
                schedule=schedule.describe(spec),
                next_run=schedule.next_run(spec, now),
                last_state=run.state if run else None,
                last_run_at=(run.started_at or run.enqueued_at) if run else None,
                retries=spec.retries,
                timeout=spec.timeout,
                overlap=spec.overlap,
                description=spec.description,
            )
        )
    return out


# -- retention ----------------------------------------------------------------------------


async def prune_job_runs(ctx: PlatformContext) -> int:
    """Delete finished run records older than ``[core.jobs] history_days``; return how many.

    Queued and running attempts are never pruned. Meant to run daily as the core job
    ``core.prune_job_runs``.
    """
    cutoff = utcnow() - timedelta(days=ctx.config.core.jobs.history_days)
    async with ctx.db.session() as session:
        result = await session.execute(
            delete(JobRun).where(
                JobRun.state.in_(FINISHED_STATES),
                func.coalesce(JobRun.finished_at, JobRun.enqueued_at) < cutoff,
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
