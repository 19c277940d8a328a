"""platform_core: the minimal core of a plugin platform for domain backends.

This package's namespace is the supported API for plugins: every name in ``__all__`` is
listed in ``docs/plugin-api.md`` (test helpers: ``platform_core.testing``). Every other module
of the core is internal and may change without notice.

``import platform_core`` stays cheap (the CLI's ``--help`` imports it): the markers, errors and
specs are loaded at once, everything that needs FastAPI or SQLAlchemy on first use
(:pep:`562`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pluggy

from platform_core._deprecation import PlatformDeprecationWarning
from platform_core.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PlatformError,
    PluginError,
    ServiceUnavailable,
    StrictModeError,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from platform_core.specs import (
    ROLES,
    EventHandler,
    HealthCheck,
    JobSpec,
    Models,
    NotificationRule,
    Permission,
    PluginMeta,
)

if TYPE_CHECKING:
    from platform_core.auth.deps import Caller, DbSession, get_context
    from platform_core.auth.models import ApiToken, User
    from platform_core.auth.ratelimit import SlidingWindowLimiter
    from platform_core.auth.service import (
        Principal,
        create_token,
        create_user,
        get_user,
        list_tokens,
        parse_duration,
        revoke_token,
        token_state,
    )
    from platform_core.context import PlatformContext
    from platform_core.db import UTCDateTime, plugin_metadata, utcnow
    from platform_core.events.outbox import DeliveredEvent, Event, publish
    from platform_core.http import MAX_ID, IdPath
    from platform_core.notifications.service import users_with_role
    from platform_core.running import run_command

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("platform_core")
"""Marker for plugin hook implementations: ``@hookimpl def platform_routes(): ...``."""

hookspec = pluggy.HookspecMarker("platform_core")
"""Marker for the hooks a plugin defines for other plugins (in its ``platform_add_hookspecs``)."""

PUBLIC: dict[str, Any] = {"x-public": True}
"""``openapi_extra`` value marking an operation public (no authentication)."""


def requires_scopes(*scopes: str) -> dict[str, Any]:
    """``openapi_extra`` value requiring these scopes instead of the default read/write."""
    return {"x-scopes": list(scopes)}


# Loaded on first use: name -> module defining it.
_LAZY: dict[str, str] = {
    "ApiToken": "platform_core.auth.models",
    "Caller": "platform_core.auth.deps",
    "DbSession": "platform_core.auth.deps",
    "DeliveredEvent": "platform_core.events.outbox",
    "Event": "platform_core.events.outbox",
    "IdPath": "platform_core.http",
    "MAX_ID": "platform_core.http",
    "PlatformContext": "platform_core.context",
    "Principal": "platform_core.auth.service",
    "SlidingWindowLimiter": "platform_core.auth.ratelimit",
    "UTCDateTime": "platform_core.db",
    "User": "platform_core.auth.models",
    "create_token": "platform_core.auth.service",
    "create_user": "platform_core.auth.service",
    "get_context": "platform_core.auth.deps",
    "get_user": "platform_core.auth.service",
    "list_tokens": "platform_core.auth.service",
    "parse_duration": "platform_core.auth.service",
    "plugin_metadata": "platform_core.db",
    "publish": "platform_core.events.outbox",
    "revoke_token": "platform_core.auth.service",
    "run_command": "platform_core.running",
    "token_state": "platform_core.auth.service",
    "users_with_role": "platform_core.notifications.service",
    "utcnow": "platform_core.db",
}


def __getattr__(name: str) -> Any:
    """Import a lazily loaded public name on first use (:pep:`562`)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'platform_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names (``dir(platform_core)``, completion in a REPL)."""
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "MAX_ID",
    "PUBLIC",
    "ROLES",
    "ApiToken",
    "BadRequest",
    "Caller",
    "ConfigError",
    "Conflict",
    "DbSession",
    "DeliveredEvent",
    "Event",
    "EventHandler",
    "Forbidden",
    "HealthCheck",
    "IdPath",
    "JobSpec",
    "Models",
    "NotFound",
    "NotificationRule",
    "PayloadTooLarge",
    "Permission",
    "PlatformContext",
    "PlatformDeprecationWarning",
    "PlatformError",
    "PluginError",
    "PluginMeta",
    "Principal",
    "ServiceUnavailable",
    "SlidingWindowLimiter",
    "StrictModeError",
    "TooManyRequests",
    "UTCDateTime",
    "Unauthorized",
    "UnsupportedMediaType",
    "User",
    "ValidationFailed",
    "__version__",
    "create_token",
    "create_user",
    "get_context",
    "get_user",
    "hookimpl",
    "hookspec",
    "list_tokens",
    "parse_duration",
    "plugin_metadata",
    "publish",
    "requires_scopes",
    "revoke_token",
    "run_command",
    "token_state",
    "users_with_role",
    "utcnow",
]
