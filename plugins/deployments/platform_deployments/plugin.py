"""Hook implementations of the deployments plugin: wiring only, the logic lives elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel

from platform_core import (
    DeliveredEvent,
    HealthCheck,
    JobSpec,
    MetricsSource,
    Models,
    NotificationRule,
    Permission,
    PluginMeta,
    hookimpl,
)

if TYPE_CHECKING:
    import typer

    from platform_core import PlatformContext


@hookimpl
def platform_plugin_meta() -> PluginMeta:
    """Needs nothing but the core 0.1.x."""
    return PluginMeta(
        requires=[],
        core=">=0.1,<0.2",
        description="Deployments: apps on Kubernetes from templates, revisions, per-user MongoDB",
    )


@hookimpl
def platform_settings() -> type[BaseModel]:
    """``[plugins.deployments]`` settings."""
    from platform_deployments.settings import DeploymentsSettings

    return DeploymentsSettings


@hookimpl
def platform_models() -> Models:
    """The ``deployments_*`` tables and their migrations (built-in templates seeded)."""
    from platform_deployments.models import DeploymentsBase

    return Models(DeploymentsBase.metadata, Path(__file__).resolve().parent / "migrations")


@hookimpl
def platform_permissions() -> list[Permission]:
    """Everyone reads and runs their own apps; admins manage templates, quotas, all apps."""
    everyone = ("admin", "operator", "member")
    return [
        Permission("deployments:read", "see templates, your apps, their status and logs", everyone),
        Permission("deployments:write", "create and change your apps and your MongoDB", everyone),
        Permission(
            "deployments:admin", "templates, quotas, every user's apps and databases", ("admin",)
        ),
    ]


@hookimpl
def platform_routes() -> list[APIRouter]:
    """Templates, apps, MongoDB, quotas and admin views under ``/api/deployments``."""
    from platform_deployments.routes import router

    return [router]


@hookimpl
def platform_jobs(ctx: PlatformContext) -> list[JobSpec]:
    """Apply, reconcile, health, cleanup, MongoDB usage."""
    from platform_deployments.jobs import job_specs

    return job_specs(ctx)


@hookimpl
def platform_notification_rules() -> list[NotificationRule]:
    """The owner hears about their apps' deploys, failures, rollbacks, deletes, ill health."""

    async def owner(event: DeliveredEvent) -> list[int]:
        return [int(event.payload["user_id"])]

    titles = {
        "deployments.app.created": "App {name} created",
        "deployments.app.deployed": "App {name} deployed (revision {revision})",
        "deployments.app.failed": "App {name}: revision {revision} failed to apply",
        "deployments.app.rolled_back": "App {name} rolled back to revision {to_revision}",
        "deployments.app.deleted": "App {name} deleted",
        "deployments.app.unhealthy": "App {name} is unhealthy ({reason})",
    }
    return [NotificationRule(name, owner, title=title) for name, title in titles.items()]


@hookimpl
def platform_cli(cli: typer.Typer) -> None:
    """``platformctl deployments apps|templates|reconcile|mongo``."""
    from platform_deployments.cli import register

    register(cli)


@hookimpl
def platform_metrics(ctx: PlatformContext) -> list[MetricsSource]:
    """Gauges on the core's ``/metrics``: apps by state, per-user requests, MongoDB storage."""
    from platform_deployments.service.metrics import exposition

    async def collect() -> bytes:
        async with ctx.db.session() as session:
            return await exposition(session)

    return [MetricsSource("apps", collect)]


@hookimpl
def platform_health(ctx: PlatformContext) -> list[HealthCheck]:
    """One check per configured cluster (the API server answers); with none configured, a
    passing ``no_cluster_configured`` check says so in ``/readyz`` and ``doctor``."""
    from platform_deployments.runtime import settings_of
    from platform_deployments.service.gateway import connect

    settings = settings_of(ctx)
    if not settings.clusters:

        async def no_cluster() -> None:
            return None

        return [HealthCheck("no_cluster_configured", no_cluster)]

    def check(name: str) -> HealthCheck:
        async def ping() -> None:
            async with connect(settings.clusters[name], timeout=2.0) as gw:
                await gw.ping()

        return HealthCheck(f"cluster_{name}", ping, timeout=3.0)

    return [check(name) for name in sorted(settings.clusters)]
