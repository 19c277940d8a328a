"""The platform context handed to hooks: settings, database, plugins, scopes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from platform_core._deprecation import moved_names
from platform_core.config import Config
from platform_core.db import Database
from platform_core.specs import (
    ROLES,
    EventHandler,
    HealthCheck,
    JobSpec,
    MetricsSource,
    NotificationRule,
    Permission,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from platform_core.auth.cache import CredentialCache
    from platform_core.manager import PlatformPlugins
    from platform_core.migrate import MigrationTarget

SettingsT = TypeVar("SettingsT", bound="BaseModel")


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
    metrics_sources: list[tuple[str, MetricsSource]] = field(default_factory=list)
    notification_rules: list[tuple[str, NotificationRule]] = field(default_factory=list)
    secret_key: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    """Runtime values by key: plugins keep their own under their name (``ctx.state["shop"]``).

    The core's own entries have typed accessors: :attr:`credential_cache`,
    :attr:`scopes_by_role`, :attr:`migration_targets`.
    """

    def plugin_settings(self, name: str) -> BaseModel | None:
        """The validated ``[plugins.<name>]`` settings of an active plugin (untyped).

        Prefer :meth:`settings_for`, which returns the plugin's own model type.
        """
        return self.plugins.get(name).settings

    def settings_for(self, name: str, model: type[SettingsT]) -> SettingsT:
        """The validated ``[plugins.<name>]`` settings, typed as ``model``.

        ``ctx.settings_for("pricing", PricingSettings)``. Raises ``LookupError`` naming the
        plugin when it is not loaded or declares no settings, and ``TypeError`` when its
        settings are not a ``model``.
        """
        record = self.plugins.records.get(name)
        if record is None:
            raise LookupError(f"plugin {name!r} is not loaded, so it has no settings")
        settings = record.settings
        if settings is None:
            raise LookupError(
                f"plugin {name!r} has no settings: its platform_settings() returned no model"
            )
        if not isinstance(settings, model):
            raise TypeError(
                f"settings of plugin {name!r} are {type(settings).__name__}, not {model.__name__}"
            )
        return settings

    @property
    def credential_cache(self) -> CredentialCache:
        """This process's cache of resolved credentials."""
        cache: CredentialCache = self.state["credential_cache"]
        return cache

    def forget_credentials(self) -> None:
        """Drop every cached credential, in every process: call it after revoking tokens,
        disabling or demoting users, rotating a client's token.

        With a shared Redis the invalidation is published to every ``platformctl serve``
        (effective within a second); without one, other processes catch up within
        ``[core.auth] cache_seconds``. See docs/scaling.md.
        """
        from platform_core.auth.invalidation import forget

        forget(self)

    @property
    def scopes_by_role(self) -> dict[str, frozenset[str]]:
        """Every built-in role's default scopes (recomputed when a plugin is isolated)."""
        scopes: dict[str, frozenset[str]] = self.state["role_scopes"]
        return scopes

    @property
    def migration_targets(self) -> list[MigrationTarget]:
        """The active plugins' databases to migrate (core first, in dependency order)."""
        targets: list[MigrationTarget] = self.state["migration_targets"]
        return targets

    def role_scopes(self, role: str) -> frozenset[str]:
        """Every scope a role holds by default (admins hold all of them)."""
        if role == "admin":
            return frozenset(self.permissions)
        return frozenset(s for s, p in self.permissions.items() if role in p.roles)

    @staticmethod
    def roles() -> tuple[str, ...]:
        """The built-in roles, most powerful first."""
        return ROLES


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "PlatformContext": "platform_core.PlatformContext",
    },
)
