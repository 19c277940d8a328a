"""Background loops: which ones a process runs, and a supervisor that keeps them alive.

Roles and their loops:

- ``serve`` (``platformctl serve``): event dispatch, webhook delivery, and, when no broker
  is configured (the embedded default), the job scheduler and runner in-process;
- ``worker`` (``platformctl worker``): event dispatch, webhook delivery, job execution
  from the broker;
- ``scheduler`` (``platformctl scheduler``): enqueues periodic job runs and requeues runs
  whose worker died (expired leases).

Every loop is ``async def loop(ctx, stop: asyncio.Event)`` and returns when ``stop`` is set.
A loop that crashes is logged and restarted after a pause; it never takes the process down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from platform_core.context import PlatformContext

log = logging.getLogger("platform_core.background")

Loop = Callable[[PlatformContext, asyncio.Event], Awaitable[None]]
Role = Literal["serve", "worker", "scheduler"]
RESTART_DELAY = 1.0


def loops_for(ctx: PlatformContext, role: Role) -> list[tuple[str, Loop]]:
    """The loops a process of ``role`` runs with this configuration."""
    from platform_core.events.dispatcher import run_event_dispatcher
    from platform_core.jobs.runners import embedded_loops, scheduler_loops, worker_loops
    from platform_core.webhooks.delivery import run_webhook_deliveries

    loops: list[tuple[str, Loop]] = []
    if role in ("serve", "worker"):
        loops += [("events", run_event_dispatcher), ("webhooks", run_webhook_deliveries)]
    distributed = bool(ctx.config.core.jobs.broker_url)
    if role == "serve" and not distributed:
        loops += embedded_loops()
    elif role == "worker":
        loops += worker_loops()
    elif role == "scheduler":
        loops += scheduler_loops()
    return loops


def job_runner(ctx: PlatformContext) -> str:
    """One line saying which job runner this configuration uses (logged by ``serve``)."""
    from platform_core.jobs.distributed import broker_target

    if ctx.config.core.jobs.broker_url:
        url, queue = broker_target(ctx.config.core.jobs.broker_url)
        return (
            f"distributed: jobs run in `platformctl worker` processes, fed by "
            f"`platformctl scheduler` through {redact_url(url)} (stream {queue})"
        )
    if not ctx.config.core.background:
        return "embedded, but [core] background = false: no job runs in this process"
    return "embedded: jobs run inside this serve process (no broker configured)"


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and reports)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def _supervise(name: str, loop: Loop, ctx: PlatformContext, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await loop(ctx, stop)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background loop crashed; restarting", extra={"loop": name})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RESTART_DELAY)


class Background:
    """Starts a role's loops as tasks and stops them (gracefully, then by cancelling)."""

    def __init__(self, ctx: PlatformContext, role: Role) -> None:
        self.ctx = ctx
        self.role = role
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start every loop of the role."""
        for name, loop in loops_for(self.ctx, self.role):
            task = asyncio.create_task(_supervise(name, loop, self.ctx, self.stop_event))
            task.set_name(f"platform:{name}")
            self.tasks.append(task)

    async def stop(self, grace: float = 5.0) -> None:
        """Ask the loops to stop; cancel those still running after ``grace`` seconds."""
        self.stop_event.set()
        if not self.tasks:
            return
        _, pending = await asyncio.wait(self.tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.tasks.clear()
