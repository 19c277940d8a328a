# mypy: disable-error-code="empty-body"
"""Every hook of the plugin contract, with what it receives and what it returns.

The core calls each hook through pluggy (``platform_core.extension``): once per active
plugin, in load order (a plugin after those it requires) unless an implementation says
``tryfirst``/``trylast``; ``platform_cli`` only for the plugin whose command runs. A plugin
whose hook raises is isolated, its dependents too; with ``[core] strict = true`` the
platform then refuses to start. A hookimpl may accept any subset of the arguments listed.
``docs/plugin-hooks.md`` documents each hook; ``tests/test_docs.py`` fails when one is
missing there.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import pluggy

from platform_core.specs import (
    EventHandler,
    HealthCheck,
    JobSpec,
    MetricsSource,
    Models,
    NotificationRule,
    Permission,
    PluginMeta,
)

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter
    from pydantic import BaseModel

    from platform_core.context import PlatformContext

hookspec = pluggy.HookspecMarker("platform_core")


@hookspec
def platform_plugin_meta() -> PluginMeta:
    """Return the plugin's version constraints: ``requires`` and supported core versions.

    Called first, right after the plugin is imported. The plugin's name and version come
    from its distribution's metadata, not from here.
    """


@hookspec
def platform_settings() -> type[BaseModel]:
    """Return the pydantic model validating ``[plugins.<name>]`` in ``plugins.toml``.

    Validated at load; an error names the file, the section and the key, and isolates the
    plugin. The validated instance is ``ctx.plugin_settings("<name>")``.
    """


@hookspec
def platform_models() -> Models:
    """Return the plugin's SQLAlchemy metadata and its alembic migrations directory.

    Every table name must start with ``<plugin>_``. Migrations run in the plugin's own
    version table (``alembic_version_<plugin>``) in dependency order.
    """


@hookspec
def platform_routes(ctx: PlatformContext) -> list[APIRouter]:
    """Return FastAPI routers; the core mounts them under ``/api/<plugin>``.

    Every operation requires authentication and the scope ``<plugin>:read`` (GET, HEAD)
    or ``<plugin>:write`` (other methods) unless declared otherwise with
    ``openapi_extra=platform_core.PUBLIC`` or ``platform_core.requires_scopes(...)``.
    """


@hookspec
def platform_permissions() -> list[Permission]:
    """Return the scopes the plugin defines and the roles that hold each by default."""


@hookspec
def platform_jobs(ctx: PlatformContext) -> list[JobSpec]:
    """Return job specs (periodic or on-demand); names are qualified ``<plugin>.<name>``."""


@hookspec
def platform_event_handlers(ctx: PlatformContext) -> list[EventHandler]:
    """Return subscriptions to events (by name or ``prefix.*``) of this or other plugins."""


@hookspec
def platform_notification_rules(ctx: PlatformContext) -> list[NotificationRule]:
    """Return rules turning events into notifications in users' inboxes."""


@hookspec
def platform_cli(cli: typer.Typer) -> None:
    """Add commands to ``cli``, a Typer app mounted as ``platformctl <plugin> ...``.

    Called lazily, only when the user runs a command of this plugin.
    """


@hookspec
def platform_health(ctx: PlatformContext) -> list[HealthCheck]:
    """Return readiness checks; ``/readyz`` and ``platformctl doctor`` run them."""


@hookspec
def platform_metrics(ctx: PlatformContext) -> list[MetricsSource]:
    """Return Prometheus metrics sources, appended to ``/metrics`` at each scrape."""


@hookspec
def platform_startup(ctx: PlatformContext) -> Awaitable[None] | None:
    """Run when the app starts, in dependency order; may be a coroutine function.

    Raising isolates the plugin: its routes answer 503 with the reason.
    """


@hookspec
def platform_shutdown(ctx: PlatformContext) -> Awaitable[None] | None:
    """Run when the app stops, in reverse dependency order; may be a coroutine function.

    Errors are logged and never stop the other plugins' shutdown.
    """


@hookspec(historic=True)
def platform_add_hookspecs(pm: pluggy.PluginManager) -> Any:
    """Add the plugin's own hookspecs (extension points) with ``pm.add_hookspecs(module)``.

    Called before every other hook but ``platform_plugin_meta``, so that plugins loaded
    after this one can implement the new hooks.
    """
