"""Hook implementations of the example plugin: wiring only, the logic lives elsewhere."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from platform_core import (
    EventHandler,
    HealthCheck,
    JobSpec,
    Models,
    NotificationRule,
    Permission,
    PluginMeta,
    hookimpl,
    utcnow,
)

if TYPE_CHECKING:
    import typer

    from platform_core import PlatformContext

log = logging.getLogger("platform_example")

STATE_KEY = "example"
"""Key of the plugin's runtime facts in ``ctx.state`` (startup and shutdown times)."""


@hookimpl
def platform_plugin_meta() -> PluginMeta:
    """No other plugin needed; any 0.x core."""
    return PluginMeta(core=">=0.1,<1", description="Personal notes: the example plugin")


@hookimpl
def platform_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Offer ``example_validate_note`` to other plugins."""
    from platform_example import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def platform_settings() -> type[BaseModel]:
    """``[plugins.example]`` settings."""
    from platform_example.settings import ExampleSettings

    return ExampleSettings


@hookimpl
def platform_models() -> Models:
    """The ``example_notes`` table and its migrations."""
    from platform_example.models import ExampleBase

    return Models(ExampleBase.metadata, Path(__file__).resolve().parent / "migrations")


@hookimpl
def platform_permissions() -> list[Permission]:
    """Read and write for every role; ``example:admin`` (stats) for admins."""
    everyone = ("admin", "operator", "member")
    return [
        Permission("example:read", "read your notes", everyone),
        Permission("example:write", "create, change and delete your notes", everyone),
        Permission("example:admin", "see note statistics across users", ("admin",)),
    ]


@hookimpl
def platform_routes() -> list[APIRouter]:
    """Notes CRUD, stats and a public ping under ``/api/example``."""
    from platform_example.routes import router

    return [router]


@hookimpl
def platform_jobs(ctx: PlatformContext) -> list[JobSpec]:
    """Hourly purge of expired notes."""
    from platform_example.jobs import job_specs

    return job_specs(ctx)


@hookimpl
def platform_event_handlers(ctx: PlatformContext) -> list[EventHandler]:
    """Delete a user's notes when the core deletes the user."""
    from platform_example.events import handlers

    return handlers(ctx)


@hookimpl
def platform_notification_rules() -> list[NotificationRule]:
    """Tell admins about new notes."""
    from platform_example.events import notification_rules

    return notification_rules()


@hookimpl
def platform_cli(cli: typer.Typer) -> None:
    """``platformctl example count``."""
    from platform_example.cli import register

    register(cli)


@hookimpl
def platform_health(ctx: PlatformContext) -> list[HealthCheck]:
    """The notes table is reachable (fails until migrations have run)."""
    from platform_example.models import Note

    async def notes_table() -> None:
        async with ctx.db.session() as session:
            await session.execute(select(Note.id).limit(1))

    return [HealthCheck("notes_table", notes_table)]


@hookimpl
async def platform_startup(ctx: PlatformContext) -> None:
    """Record the start time in ``ctx.state["example"]``."""
    ctx.state[STATE_KEY] = {"started_at": utcnow()}
    log.info("example plugin started", extra={"plugin": "example"})


@hookimpl
async def platform_shutdown(ctx: PlatformContext) -> None:
    """Record the stop time in ``ctx.state["example"]``."""
    ctx.state.setdefault(STATE_KEY, {})["stopped_at"] = utcnow()
    log.info("example plugin stopped", extra={"plugin": "example"})
