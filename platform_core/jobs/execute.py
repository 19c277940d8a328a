"""Running one claimed attempt: heartbeat, timeout, outcome, retry. Never raises.

Shared by the embedded runner, the distributed worker and ``platformctl jobs run --wait``.
Outcomes:

- the function returns: ``succeeded`` (its return value stored as JSON text in ``result``);
- it raises: ``failed`` with ``<ExceptionType>: <message>`` in ``error``;
- it runs past ``timeout``: it is cancelled and the attempt is ``timeout``;
- it cancels itself (``CancelledError`` from inside), or its lease was taken away
  (the attempt was declared lost meanwhile): ``cancelled``;
- the runner itself stops under it (shutdown): ``cancelled`` with "interrupted" and a new
  attempt enqueued at once, as for a killed worker.

Failed, timed-out and cancelled attempts are retried per the spec (``retries``, ``backoff``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import time
from typing import Any

from platform_core.calling import call_with_available
from platform_core.context import PlatformContext
from platform_core.jobs import service
from platform_core.jobs.models import JobRun

log = logging.getLogger("platform_core.jobs")

CANCEL_GRACE = 5.0
"""Seconds a cancelled job gets to unwind before the runner stops waiting for it."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How an attempt ended, and the retry enqueued (if any)."""

    run_id: int
    job: str
    attempt: int
    state: str
    error: str | None
    result: str | None
    duration: float
    retry: JobRun | None


async def _call(ctx: PlatformContext, run: JobRun) -> Any:
    spec = service.get_spec(ctx, run.job)
    value = call_with_available(spec.func, ctx=ctx, run=service.run_info(run))
    if inspect.isawaitable(value):
        value = await value
    return value


async def _heartbeat(
    ctx: PlatformContext, run: JobRun, worker: str, job: asyncio.Task[Any], lost: list[bool]
) -> None:
    interval = max(0.5, ctx.config.core.jobs.lease_seconds / 3)
    while not job.done():
        await asyncio.sleep(interval)
        try:
            held = await service.heartbeat(ctx, run.id, worker)
        except Exception:
            log.warning("job heartbeat failed; retrying", exc_info=True, extra={"run": run.id})
            continue
        if not held:
            log.warning(
                "job run lost its lease (declared lost); stopping it",
                extra={"job": run.job, "run": run.id},
            )
            lost.append(True)
            job.cancel()
            return


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(asyncio.shield(task), CANCEL_GRACE)


def _describe(exc: BaseException) -> str:
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


async def execute(ctx: PlatformContext, run: JobRun, worker: str, *, retry: bool = True) -> Outcome:
    """Run attempt ``run`` (claimed by ``worker``) to its end and record the outcome."""
    spec = ctx.jobs.get(run.job)
    timeout = spec.timeout if spec is not None else None
    started = time.perf_counter()
    job = asyncio.create_task(_call(ctx, run), name=f"job:{run.job}:{run.id}")
    lost: list[bool] = []
    beat = asyncio.create_task(_heartbeat(ctx, run, worker, job, lost))
    state, error, result = "succeeded", None, None
    interrupted = False
    try:
        done, _ = await asyncio.wait({job}, timeout=timeout)
        if not done:
            await _stop(job)
            state, error = "timeout", f"timed out after {timeout:g}s"
        elif job.cancelled():
            state = "cancelled"
            error = "cancelled: lease lost (declared lost)" if lost else "cancelled by the job"
        elif job.exception() is not None:
            exc = job.exception()
            assert exc is not None
            state, error = "failed", _describe(exc)
            log.warning(
                "job failed",
                exc_info=(type(exc), exc, exc.__traceback__),
                extra={"job": run.job, "run": run.id, "attempt": run.attempt},
            )
        else:
            result = service.format_result(job.result())
    except asyncio.CancelledError:
        interrupted = True
        state, error = "cancelled", "interrupted: the runner stopped during the run"
        await _stop(job)
    finally:
        beat.cancel()
        with contextlib.suppress(BaseException):
            await beat
    duration = time.perf_counter() - started
    outcome_retry = None
    try:
        record = asyncio.ensure_future(
            service.finish(
                ctx,
                run,
                worker,
                state,
                error=error,
                result=result,
                retry=retry,
                interrupted=interrupted,
            )
        )
        outcome_retry = await asyncio.shield(record)
    except asyncio.CancelledError:
        interrupted = True
    except Exception:
        log.exception("could not record a job outcome", extra={"job": run.job, "run": run.id})
    if state != "succeeded":
        log.warning(
            "job attempt ended",
            extra={
                "job": run.job,
                "run": run.id,
                "attempt": run.attempt,
                "state": state,
                "error": error,
                "retry": outcome_retry.id if outcome_retry is not None else None,
            },
        )
    outcome = Outcome(run.id, run.job, run.attempt, state, error, result, duration, outcome_retry)
    if interrupted:
        raise asyncio.CancelledError
    return outcome
