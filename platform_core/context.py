"""The platform context handed to hooks: settings, database, plugins, scopes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from platform_core.config import Config
from platform_core.db import Database
from platform_core.specs import (
    ROLES,
    EventHandler,
    HealthCheck,
    JobSpec,
    NotificationRule,
    Permission,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from platform_core.manager import PlatformPlugins


@dataclass
class PlatformContext:
    """What a running platform holds; hooks receive it as ``ctx``."""

    config: Config
    db: Database
    plugins: PlatformPlugins
    permissions: dict[str, Permission] = field(default_factory=dict)
    jobs: dict[str, JobSpec] = field(default_factory=dict)
    event_handlers: list[tuple[str, EventHandler]] = field(default_factory=list)
    health_checks: list[tuple[str, HealthCheck]] = field(default_factory=list)
    notification_rules: list[tuple[str, NotificationRule]] = field(default_factory=list)
    secret_key: str = ""
    state: dict[str, Any] = field(default_factory=dict)

    def plugin_settings(self, name: str) -> BaseModel | None:
        """The validated ``[plugins.<name>]`` settings of an active plugin."""
        return self.plugins.get(name).settings

    def role_scopes(self, role: str) -> frozenset[str]:
        """Every scope a role holds by default (admins hold all of them)."""
        if role == "admin":
            return frozenset(self.permissions)
        return frozenset(s for s, p in self.permissions.items() if role in p.roles)

    @staticmethod
    def roles() -> tuple[str, ...]:
        """The built-in roles, most powerful first."""
        return ROLES
