"""platform_core: the minimal core of a plugin platform for domain backends.

Plugins implement hooks marked with :data:`hookimpl`; see ``docs/plugin-guide.md``.
"""

from __future__ import annotations

from typing import Any

import pluggy

from platform_core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PlatformError,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from platform_core.specs import (
    EventHandler,
    HealthCheck,
    JobSpec,
    Models,
    NotificationRule,
    Permission,
    PluginMeta,
)

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("platform_core")
"""Marker for plugin hook implementations: ``@hookimpl def platform_routes(): ...``."""

PUBLIC: dict[str, Any] = {"x-public": True}
"""``openapi_extra`` value marking an operation public (no authentication)."""


def requires_scopes(*scopes: str) -> dict[str, Any]:
    """``openapi_extra`` value requiring these scopes instead of the default read/write."""
    return {"x-scopes": list(scopes)}


__all__ = [
    "PUBLIC",
    "BadRequest",
    "Conflict",
    "EventHandler",
    "Forbidden",
    "HealthCheck",
    "JobSpec",
    "Models",
    "NotFound",
    "NotificationRule",
    "Permission",
    "PlatformError",
    "PluginMeta",
    "ServiceUnavailable",
    "Unauthorized",
    "ValidationFailed",
    "__version__",
    "hookimpl",
    "requires_scopes",
]
