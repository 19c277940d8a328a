"""The values hooks return: small frozen dataclasses that make up the plugin contract."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import MetaData

ROLES = ("admin", "operator", "member")


@dataclasses.dataclass(frozen=True)
class PluginMeta:
    """What ``platform_plugin_meta()`` returns.

    :param requires: other plugins with version specifiers, e.g. ``["inventory>=1.0,<2"]``.
    :param core: the platform-core versions supported, as a specifier (``">=0.1,<1"``).
    :param description: one line shown by ``platformctl plugins info``.
    """

    requires: tuple[str, ...] | list[str] = ()
    core: str = ""
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Models:
    """What ``platform_models()`` returns: the plugin's tables and its alembic versions.

    :param metadata: the plugin's own ``MetaData``; every table name starts with ``<plugin>_``.
    :param migrations: directory holding ``versions/`` (alembic revision files).
    """

    metadata: MetaData
    migrations: Path | str


@dataclasses.dataclass(frozen=True)
class Permission:
    """A scope a plugin defines, and which roles hold it by default.

    Admins hold every scope. Scopes are named ``<plugin>:<action>``.
    """

    scope: str
    description: str = ""
    roles: tuple[str, ...] = ("admin",)


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """A background job: periodic (``every`` or ``cron``) or on-demand when both are unset.

    The runners (embedded and distributed) consume these; the name is qualified by the
    plugin (``<plugin>.<name>``) when collected.
    """

    name: str
    func: Callable[..., Awaitable[Any]]
    every: timedelta | None = None
    cron: str | None = None
    timezone: str = "UTC"
    retries: int = 0
    timeout: float | None = None
    overlap: bool = False
    description: str = ""


@dataclasses.dataclass(frozen=True)
class EventHandler:
    """A subscription: ``pattern`` is an event name or a ``prefix.*`` wildcard."""

    pattern: str
    func: Callable[..., Awaitable[Any]]
    name: str = ""


@dataclasses.dataclass(frozen=True)
class HealthCheck:
    """A readiness check: an async callable returning None when healthy, raising otherwise."""

    name: str
    check: Callable[[], Awaitable[Any]]
    timeout: float = 2.0
