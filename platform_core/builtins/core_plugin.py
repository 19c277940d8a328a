"""The ``core`` internal plugin: the core's tables, scopes, routes and health check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from platform_core import hookimpl
from platform_core.specs import ROLES, HealthCheck, Models, Permission

if TYPE_CHECKING:
    from platform_core.context import PlatformContext


@hookimpl
def platform_models() -> Models:
    """Users and API tokens, with the core's own migrations."""
    from platform_core.auth.models import CoreBase

    return Models(CoreBase.metadata, Path(__file__).resolve().parent.parent / "migrations")


@hookimpl
def platform_permissions() -> list[Permission]:
    """The core's scopes."""
    return [
        Permission("core:read", "see yourself and the plugin list", ROLES),
        Permission("core:write", "manage your own API tokens", ROLES),
        Permission("core:admin", "manage users and every token", ("admin",)),
    ]


@hookimpl
def platform_routes() -> list[Any]:
    """Auth, users, tokens and plugins under /api/core."""
    from platform_core.auth.routes import router as auth_router
    from platform_core.builtins.plugins_routes import router as plugins_router

    return [auth_router, plugins_router]


@hookimpl
def platform_health(ctx: PlatformContext) -> list[HealthCheck]:
    """The database answers ``SELECT 1``."""
    return [HealthCheck("database", ctx.db.ping)]
