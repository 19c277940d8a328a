"""Hook implementations of the scheduler plugin: wiring only, the logic lives elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from platform_core import (
    HealthCheck,
    JobSpec,
    Models,
    NotificationRule,
    Permission,
    PluginMeta,
    hookimpl,
)

if TYPE_CHECKING:
    import typer
    from sqlalchemy.ext.asyncio import AsyncSession

    from platform_core import PlatformContext

EVERYONE = ("admin", "operator", "member")
APPROVERS = ("admin", "operator")


@hookimpl
def platform_plugin_meta() -> PluginMeta:
    """Needs the inventory (its service layer and its veto hook); core 0.1.x."""
    return PluginMeta(
        requires=["inventory>=0.1"],
        core=">=0.1,<0.2",
        description="Scheduler: device bookings, approvals, policies, power control",
    )


@hookimpl
def platform_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Offer ``scheduler_power_drivers`` to other plugins."""
    from platform_scheduler import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def scheduler_power_drivers() -> list[Any]:
    """The built-in drivers: ``redfish`` (sushy) and ``snmp`` (pysnmp, APC outlets)."""
    from platform_scheduler.power import builtin_drivers

    return builtin_drivers()


@hookimpl
def platform_settings() -> type[BaseModel]:
    """``[plugins.scheduler]`` settings."""
    from platform_scheduler.settings import SchedulerSettings

    return SchedulerSettings


@hookimpl
def platform_models() -> Models:
    """The ``scheduler_*`` tables and their migrations."""
    from platform_scheduler.models import SchedulerBase

    return Models(SchedulerBase.metadata, Path(__file__).resolve().parent / "migrations")


@hookimpl
def platform_permissions() -> list[Permission]:
    """Everyone books; operators and admins approve; admins set policies and power configs."""
    return [
        Permission("scheduler:read", "see bookings, availability, policies", EVERYONE),
        Permission("scheduler:write", "book devices, switch held devices", EVERYONE),
        Permission("scheduler:approve", "approve and reject bookings, read power audit", APPROVERS),
        Permission("scheduler:admin", "manage policies and power configs", ("admin",)),
    ]


@hookimpl
def platform_routes() -> list[APIRouter]:
    """Bookings, availability, policies and power under ``/api/scheduler``."""
    from platform_scheduler.routes import router

    return [router]


@hookimpl
def platform_jobs(ctx: PlatformContext) -> list[JobSpec]:
    """Start, end, expire and remind, every ``job_interval_seconds``."""
    from platform_scheduler.jobs import job_specs

    return job_specs(ctx)


@hookimpl
def platform_notification_rules() -> list[NotificationRule]:
    """Owners hear about their bookings; approvers about bookings awaiting approval."""
    from platform_scheduler.notify import rules

    return rules()


@hookimpl
async def inventory_device_delete_veto(
    device: dict[str, Any], action: str, session: AsyncSession
) -> str | None:
    """Refuse deleting or retiring a device with current or future bookings."""
    from platform_scheduler.veto import reason

    return await reason(session, device, action)


@hookimpl
def platform_cli(cli: typer.Typer) -> None:
    """``platformctl scheduler bookings ...`` and ``platformctl scheduler power ...``."""
    from platform_scheduler.cli import register

    register(cli)


@hookimpl
def platform_health(ctx: PlatformContext) -> list[HealthCheck]:
    """The bookings table is reachable (fails until migrations have run)."""
    from platform_scheduler.models import Booking

    async def bookings_table() -> None:
        async with ctx.db.session() as session:
            await session.execute(select(Booking.id).limit(1))

    return [HealthCheck("bookings_table", bookings_table)]
