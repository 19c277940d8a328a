"""Background jobs of the deployments plugin: thin ``(ctx)`` wrappers, each safe to re-run.

- ``apply`` (every ``apply_interval_seconds``): pending, deleting and failed apps whose retry
  is due are brought to the cluster (backoff per app: ``retry_base_seconds`` doubling).
- ``reconcile`` (every ``reconcile_interval_seconds``): settled apps compared with the
  cluster in bulk; drift re-applied; nothing written when all is in line.
- ``health`` (every minute): failed rollouts raise ``deployments.app.unhealthy``.
- ``cleanup`` (hourly): objects labelled as ours with no app row (after
  ``orphan_grace_seconds``), namespaces of deleted users.
- ``viewer_idle`` (every 5 minutes): MongoDB viewers unused for ``viewer_idle_seconds`` stop.
- ``mongo_usage`` (hourly): ``dbStats`` of every user's database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from platform_core import JobSpec, PlatformContext
from platform_deployments.runtime import env_of
from platform_deployments.service import maintenance, mongo, sync, viewer


def job_specs(ctx: PlatformContext) -> list[JobSpec]:
    """The six periodic jobs (``deployments.apply``, ...)."""
    env = env_of(ctx)
    settings = env.settings

    async def apply() -> dict[str, int]:
        return await sync.apply_pending(ctx.db, env_of(ctx))

    async def reconcile() -> dict[str, int]:
        return await sync.reconcile(ctx.db, env_of(ctx))

    async def health() -> dict[str, int]:
        return await maintenance.check_health(ctx.db, env_of(ctx))

    async def cleanup() -> dict[str, int]:
        return await maintenance.cleanup(ctx.db, env_of(ctx))

    async def viewer_idle() -> dict[str, int]:
        return await viewer.stop_idle(ctx.db, env_of(ctx))

    async def mongo_usage() -> dict[str, Any]:
        if not env_of(ctx).settings.mongo.admin_uri:
            return {"skipped": "no MongoDB configured"}
        return await mongo.sample_all(ctx.db, env_of(ctx))

    return [
        JobSpec(
            "apply",
            apply,
            every=timedelta(seconds=settings.apply_interval_seconds),
            timeout=300,
            description="apply stored changes to the clusters",
        ),
        JobSpec(
            "reconcile",
            reconcile,
            every=timedelta(seconds=settings.reconcile_interval_seconds),
            timeout=900,
            description="compare clusters with the stored state, fix drift",
        ),
        JobSpec(
            "health",
            health,
            every=timedelta(minutes=1),
            timeout=120,
            description="failed rollouts raise deployments.app.unhealthy",
        ),
        JobSpec(
            "cleanup",
            cleanup,
            every=timedelta(hours=1),
            timeout=900,
            description="orphaned objects and namespaces of deleted users",
        ),
        JobSpec(
            "viewer_idle",
            viewer_idle,
            every=timedelta(minutes=5),
            timeout=300,
            description="stop MongoDB viewers idle for viewer_idle_seconds",
        ),
        JobSpec(
            "mongo_usage",
            mongo_usage,
            every=timedelta(hours=1),
            timeout=300,
            description="dbStats of every user's database",
        ),
    ]
