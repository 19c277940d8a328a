"""Background jobs of the example plugin."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from platform_core import JobSpec, utcnow
from platform_example import service
from platform_example.settings import ExampleSettings

if TYPE_CHECKING:
    from platform_core import PlatformContext

log = logging.getLogger("platform_example.jobs")


def purge_expired(ctx: PlatformContext) -> Callable[[], Awaitable[int]]:
    """A job function deleting notes older than ``retention_days`` (none when unset)."""

    async def run() -> int:
        settings = ctx.settings_for("example", ExampleSettings)
        if settings.retention_days is None:
            return 0
        cutoff = utcnow() - timedelta(days=settings.retention_days)
        async with ctx.db.session() as session:
            purged = await service.purge_before(session, cutoff)
        log.info("expired notes purged", extra={"plugin": "example", "purged": purged})
        return purged

    return run


def job_specs(ctx: PlatformContext) -> list[JobSpec]:
    """The plugin's jobs, bound to the running platform."""
    return [
        JobSpec(
            "purge_expired",
            purge_expired(ctx),
            every=timedelta(hours=1),
            retries=2,
            timeout=300,
            description="delete notes older than [plugins.example] retention_days",
        )
    ]
