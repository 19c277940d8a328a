"""Job runners: the loops each process role runs (see :mod:`platform_core.background`).

- ``serve`` without a broker: :mod:`platform_core.jobs.embedded` (scheduler and runner);
- ``worker``: :func:`platform_core.jobs.distributed.run_worker` (consumes the broker);
- ``scheduler``: :func:`platform_core.jobs.distributed.run_scheduler` (enqueues periodic
  slots, recovers lost runs, re-sends unclaimed ones).
"""

from __future__ import annotations

from platform_core.background import Loop


def embedded_loops() -> list[tuple[str, Loop]]:
    """Scheduler and runner inside ``platformctl serve`` (no broker configured)."""
    from platform_core.jobs.embedded import run_runner, run_scheduler

    return [("jobs-scheduler", run_scheduler), ("jobs-runner", run_runner)]


def worker_loops() -> list[tuple[str, Loop]]:
    """Job execution from the broker, in ``platformctl worker``."""
    from platform_core.jobs.distributed import run_worker

    return [("jobs-worker", run_worker)]


def scheduler_loops() -> list[tuple[str, Loop]]:
    """Periodic enqueueing and lease recovery, in ``platformctl scheduler``."""
    from platform_core.jobs.distributed import run_scheduler

    return [("jobs-scheduler", run_scheduler)]
