"""Hook implementations of the pricing plugin: wiring only, the logic lives elsewhere."""

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

    from platform_core import PlatformContext

EVERYONE = ("admin", "operator", "member")


@hookimpl
def platform_plugin_meta() -> PluginMeta:
    """Needs nothing but the core 0.1.x."""
    return PluginMeta(
        requires=[],
        core=">=0.1,<0.2",
        description="Pricing: spot-instance cost optimisation, decisions, replicas, savings",
    )


@hookimpl
def platform_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Offer ``pricing_decision_engines`` to other plugins."""
    from platform_pricing import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def pricing_decision_engines() -> list[Any]:
    """The built-in engines (``rules`` is also every engine's fallback) and ``onnx``, which
    serves the active version of an uploaded model."""
    from platform_pricing.engines import builtin_engines
    from platform_pricing.ml import OnnxEngine

    return [*builtin_engines(), OnnxEngine()]


@hookimpl
def platform_settings() -> type[BaseModel]:
    """``[plugins.pricing]`` settings."""
    from platform_pricing.settings import PricingSettings

    return PricingSettings


@hookimpl
def platform_models() -> Models:
    """The ``pricing_*`` tables and their migrations."""
    from platform_pricing.models import PricingBase

    return Models(PricingBase.metadata, Path(__file__).resolve().parent / "migrations")


@hookimpl
def platform_permissions() -> list[Permission]:
    """Admins manage clients and engines; clients and agents are robot users (members).

    A member holds the client and agent scopes, but only a user bound to a client or an
    agent reaches any data through them (see ``tenancy.py``).
    """
    return [
        Permission("pricing:admin", "manage clients and engines, see every client", ("admin",)),
        Permission("pricing:client", "a client's agents, instances, prices, savings", EVERYONE),
        Permission("pricing:client_admin", "force switches, change the client's policy", EVERYONE),
        Permission("pricing:agent", "an agent's heartbeats, reports and commands", EVERYONE),
    ]


@hookimpl
def platform_routes() -> list[APIRouter]:
    """Clients, agents, reports, commands, decisions, replicas, history under ``/api/pricing``."""
    from platform_pricing.routes import router

    return [router]


@hookimpl
def platform_jobs(ctx: PlatformContext) -> list[JobSpec]:
    """Agent health, price de-duplication, hourly aggregates, snapshots, savings, retention."""
    from platform_pricing.jobs import job_specs

    return job_specs(ctx)


@hookimpl
def platform_notification_rules() -> list[NotificationRule]:
    """Clients and admins hear about offline agents, switches, terminations and promotions."""
    from platform_pricing.notify import rules

    return rules()


@hookimpl
def platform_cli(cli: typer.Typer) -> None:
    """``platformctl pricing clients|agents|import-prices|savings``."""
    from platform_pricing.cli import register

    register(cli)


@hookimpl
def platform_health(ctx: PlatformContext) -> list[HealthCheck]:
    """The agents table is reachable (fails until migrations have run)."""
    from platform_pricing.models import Agent

    async def agents_table() -> None:
        async with ctx.db.session() as session:
            await session.execute(select(Agent.id).limit(1))

    return [HealthCheck("agents_table", agents_table)]
