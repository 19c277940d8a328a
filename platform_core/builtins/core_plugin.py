"""The ``core`` internal plugin: the core's tables, scopes, routes and health check."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platform_core import hookimpl
from platform_core.specs import ROLES, HealthCheck, JobSpec, Models, Permission

if TYPE_CHECKING:
    from platform_core.context import PlatformContext


@hookimpl
def platform_models() -> Models:
    """Users, tokens, job runs, events, webhooks and notifications, with their migrations."""
    from platform_core import idempotency as _idempotency  # noqa: F401
    from platform_core.auth import models as _auth  # noqa: F401  (registers the tables)
    from platform_core.base import CoreBase
    from platform_core.events import models as _events  # noqa: F401
    from platform_core.jobs import models as _jobs  # noqa: F401
    from platform_core.notifications import models as _inbox  # noqa: F401
    from platform_core.webhooks import models as _webhooks  # noqa: F401

    return Models(CoreBase.metadata, Path(__file__).resolve().parent.parent / "migrations")


@hookimpl
def platform_permissions() -> list[Permission]:
    """The core's scopes."""
    return [
        Permission("core:read", "see yourself and the plugin list", ROLES),
        Permission("core:write", "manage your own API tokens", ROLES),
        Permission("core:admin", "manage users, every token, webhooks and jobs", ("admin",)),
    ]


@hookimpl
def platform_routes() -> list[Any]:
    """Auth, users, tokens and plugins under /api/core."""
    from platform_core.auth.routes import router as auth_router
    from platform_core.builtins.plugins_routes import router as plugins_router
    from platform_core.jobs.routes import router as jobs_router
    from platform_core.notifications.routes import router as notifications_router
    from platform_core.webhooks.routes import router as webhooks_router

    return [auth_router, plugins_router, notifications_router, webhooks_router, jobs_router]


@hookimpl
def platform_health(ctx: PlatformContext) -> list[HealthCheck]:
    """The database answers and holds every active plugin's tables."""
    from platform_core.health import database_ready

    return [HealthCheck("database", partial(database_ready, ctx))]


@hookimpl
def platform_jobs() -> list[JobSpec]:
    """The core's clean-ups: old job runs, dispatched events, expired idempotency keys."""
    from platform_core.events.dispatcher import prune_events
    from platform_core.idempotency import prune_idempotency_keys
    from platform_core.jobs.service import prune_job_runs

    return [
        JobSpec(
            "prune_events",
            prune_events,
            cron="17 3 * * *",
            description="delete dispatched events older than [core.events] retention_days",
        ),
        JobSpec(
            "prune_job_runs",
            prune_job_runs,
            cron="23 3 * * *",
            description="delete job runs older than [core.jobs] history_days",
        ),
        JobSpec(
            "prune_idempotency_keys",
            prune_idempotency_keys,
            cron="41 * * * *",
            description="delete idempotency keys older than [core.idempotency] ttl_hours",
        ),
    ]
