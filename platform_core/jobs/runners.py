"""Job runners (stub until the runners land): the loops each process role runs."""

from __future__ import annotations

from platform_core.background import Loop


def embedded_loops() -> list[tuple[str, Loop]]:
    """Scheduler and runner inside ``platformctl serve`` (no broker configured)."""
    return []


def worker_loops() -> list[tuple[str, Loop]]:
    """Job execution from the broker, in ``platformctl worker``."""
    return []


def scheduler_loops() -> list[tuple[str, Loop]]:
    """Periodic enqueueing and lease recovery, in ``platformctl scheduler``."""
    return []
