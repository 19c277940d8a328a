"""The values hooks return: small frozen dataclasses that make up the plugin contract."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platform_core._deprecation import moved_names

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

    ``func`` is a coroutine function called with the arguments it names among ``ctx``
    (the :class:`PlatformContext`) and ``run`` (the run record: id, attempt,
    scheduled_for); ``async def job()`` is fine too. A raise, or running past ``timeout``
    seconds, fails the attempt; it is retried up to ``retries`` times, waiting
    ``backoff * 2**(attempt - 1)`` seconds. Runs of one job never overlap unless
    ``overlap`` is true. The name is qualified by the plugin (``<plugin>.<name>``).
    """

    name: str
    func: Callable[..., Awaitable[Any]]
    every: timedelta | None = None
    cron: str | None = None
    timezone: str = "UTC"
    retries: int = 0
    backoff: float = 5.0
    timeout: float | None = None
    overlap: bool = False
    description: str = ""


@dataclasses.dataclass(frozen=True)
class EventHandler:
    """A subscription: ``pattern`` is an event name, ``prefix.*`` or ``*``.

    ``func`` is a coroutine function called after the publishing transaction commits,
    with the arguments it names among ``event`` (a
    :class:`platform_core.events.DeliveredEvent`: ``id``, ``name``, ``plugin``, ``actor``,
    ``occurred_at``, ``payload``) and ``ctx``. Delivery is at least once: de-duplicate on
    ``event.id``. A raise is recorded and retried with backoff. ``name`` identifies the
    subscription (default: the function's name) and must stay stable across releases.
    """

    pattern: str
    func: Callable[..., Awaitable[Any]]
    name: str = ""
    timeout: float = 30.0


@dataclasses.dataclass(frozen=True)
class NotificationRule:
    """Which events put a notification in which users' inboxes.

    ``recipients`` is a coroutine function called with the arguments it names among
    ``event``, ``session`` (an ``AsyncSession`` in the dispatching transaction) and
    ``ctx``; it returns user ids. ``title`` and ``body`` are format strings over the
    event's payload (``"Booking {booking_id} approved"``) or callables taking the event.

    Every notification reaches its user's live stream (``GET
    /api/core/notifications/stream``) as it is created: the recipients are who may follow
    the event live. ``unread=False`` declares a live status update (a booking changing
    state, a rollout's progress): stored already read, so it is in the inbox and the
    stream's replay but not in the unread count.
    """

    pattern: str
    recipients: Callable[..., Awaitable[Any]]
    title: str | Callable[[Any], str]
    body: str | Callable[[Any], str] = ""
    unread: bool = True


@dataclasses.dataclass(frozen=True)
class HealthCheck:
    """A health check: an async callable returning None when healthy, raising otherwise.

    ``readiness=False`` makes it a diagnostic run by ``platformctl doctor`` only, never by
    ``/readyz``: for a slow audit, or a finding that needs a person but should not take
    every instance out of a load balancer (a ledger discrepancy, say).
    """

    name: str
    check: Callable[[], Awaitable[Any]]
    timeout: float = 2.0
    readiness: bool = True


@dataclasses.dataclass(frozen=True)
class MetricsSource:
    """Prometheus metrics a plugin adds to ``/metrics``.

    ``collect`` is an async callable returning the text exposition format (what
    ``prometheus_client.generate_latest(registry)`` gives), so gauges may be computed from the
    database at scrape time. Name the metrics ``<plugin>_...``. A source that raises or takes
    longer than ``timeout`` is left out of that scrape (and logged); the rest still answer.
    """

    name: str
    collect: Callable[[], Awaitable[bytes | str]]
    timeout: float = 2.0


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "ROLES": "platform_core.ROLES",
        "PluginMeta": "platform_core.PluginMeta",
        "Models": "platform_core.Models",
        "Permission": "platform_core.Permission",
        "JobSpec": "platform_core.JobSpec",
        "EventHandler": "platform_core.EventHandler",
        "NotificationRule": "platform_core.NotificationRule",
        "HealthCheck": "platform_core.HealthCheck",
    },
)
