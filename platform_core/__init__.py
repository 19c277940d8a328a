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
    invalid,
)
from platform_core.specs import (
    ROLES,
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
    from platform_core.csvio import (
        CSV_FORMULA_PREFIXES,
        CsvFormatError,
        CsvReader,
        CsvWriter,
        csv_escape,
        csv_row,
        csv_unescape,
        read_csv,
    )
    from platform_core.db import UTCDateTime, plugin_metadata, utcnow
    from platform_core.events.outbox import DeliveredEvent, Event, publish
    from platform_core.http import (
        MAX_ID,
        NO_CONTENT,
        Cursor,
        IdCursor,
        IdPath,
        Limit,
        OptionalId,
        OptionalLimit,
    )
    from platform_core.idempotency import (
        IDEMPOTENT,
        IDEMPOTENT_REQUIRED,
        claimed_key,
        idempotent,
    )
    from platform_core.locks import (
        compare_and_set,
        dialect_of,
        insert_ignoring,
        lock_key,
        lock_row,
        lock_rows,
        serialize,
        upsert,
    )
    from platform_core.notifications.service import users_with_role
    from platform_core.pagination import (
        DEFAULT_LIMIT,
        MAX_CURSOR_CHARS,
        MAX_LIMIT,
        MAX_PAGE_SIZE,
        IdPage,
        Page,
        clamp_limit,
        decode_cursor,
        encode_cursor,
        fetch_page,
        invalid_cursor,
        page_by_id,
    )
    from platform_core.retry import (
        is_retryable,
        replay_safe,
    )
    from platform_core.running import run_command
    from platform_core.types import (
        MAX_JSON_DEPTH,
        JsonText,
        Line,
        Text,
        TextValues,
        check_text,
        json_text_error,
        json_too_deep,
        text_error,
    )

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
    "CSV_FORMULA_PREFIXES": "platform_core.csvio",
    "Caller": "platform_core.auth.deps",
    "CsvFormatError": "platform_core.csvio",
    "CsvReader": "platform_core.csvio",
    "CsvWriter": "platform_core.csvio",
    "Cursor": "platform_core.http",
    "DEFAULT_LIMIT": "platform_core.pagination",
    "DbSession": "platform_core.auth.deps",
    "DeliveredEvent": "platform_core.events.outbox",
    "Event": "platform_core.events.outbox",
    "IDEMPOTENT": "platform_core.idempotency",
    "IDEMPOTENT_REQUIRED": "platform_core.idempotency",
    "IdCursor": "platform_core.http",
    "IdPage": "platform_core.pagination",
    "IdPath": "platform_core.http",
    "JsonText": "platform_core.types",
    "Limit": "platform_core.http",
    "Line": "platform_core.types",
    "MAX_CURSOR_CHARS": "platform_core.pagination",
    "MAX_ID": "platform_core.http",
    "MAX_JSON_DEPTH": "platform_core.types",
    "MAX_LIMIT": "platform_core.pagination",
    "MAX_PAGE_SIZE": "platform_core.pagination",
    "NO_CONTENT": "platform_core.http",
    "OptionalId": "platform_core.http",
    "OptionalLimit": "platform_core.http",
    "Page": "platform_core.pagination",
    "PlatformContext": "platform_core.context",
    "Principal": "platform_core.auth.service",
    "SlidingWindowLimiter": "platform_core.auth.ratelimit",
    "Text": "platform_core.types",
    "TextValues": "platform_core.types",
    "UTCDateTime": "platform_core.db",
    "User": "platform_core.auth.models",
    "check_text": "platform_core.types",
    "claimed_key": "platform_core.idempotency",
    "clamp_limit": "platform_core.pagination",
    "compare_and_set": "platform_core.locks",
    "create_token": "platform_core.auth.service",
    "create_user": "platform_core.auth.service",
    "csv_escape": "platform_core.csvio",
    "csv_row": "platform_core.csvio",
    "csv_unescape": "platform_core.csvio",
    "decode_cursor": "platform_core.pagination",
    "dialect_of": "platform_core.locks",
    "encode_cursor": "platform_core.pagination",
    "fetch_page": "platform_core.pagination",
    "get_context": "platform_core.auth.deps",
    "get_user": "platform_core.auth.service",
    "idempotent": "platform_core.idempotency",
    "insert_ignoring": "platform_core.locks",
    "invalid_cursor": "platform_core.pagination",
    "is_retryable": "platform_core.retry",
    "json_text_error": "platform_core.types",
    "json_too_deep": "platform_core.types",
    "list_tokens": "platform_core.auth.service",
    "lock_key": "platform_core.locks",
    "lock_row": "platform_core.locks",
    "lock_rows": "platform_core.locks",
    "page_by_id": "platform_core.pagination",
    "parse_duration": "platform_core.auth.service",
    "plugin_metadata": "platform_core.db",
    "publish": "platform_core.events.outbox",
    "read_csv": "platform_core.csvio",
    "replay_safe": "platform_core.retry",
    "revoke_token": "platform_core.auth.service",
    "run_command": "platform_core.running",
    "serialize": "platform_core.locks",
    "text_error": "platform_core.types",
    "token_state": "platform_core.auth.service",
    "upsert": "platform_core.locks",
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
    "CSV_FORMULA_PREFIXES",
    "DEFAULT_LIMIT",
    "IDEMPOTENT",
    "IDEMPOTENT_REQUIRED",
    "MAX_CURSOR_CHARS",
    "MAX_ID",
    "MAX_JSON_DEPTH",
    "MAX_LIMIT",
    "MAX_PAGE_SIZE",
    "NO_CONTENT",
    "PUBLIC",
    "ROLES",
    "ApiToken",
    "BadRequest",
    "Caller",
    "ConfigError",
    "Conflict",
    "CsvFormatError",
    "CsvReader",
    "CsvWriter",
    "Cursor",
    "DbSession",
    "DeliveredEvent",
    "Event",
    "EventHandler",
    "Forbidden",
    "HealthCheck",
    "IdCursor",
    "IdPage",
    "IdPath",
    "JobSpec",
    "JsonText",
    "Limit",
    "Line",
    "MetricsSource",
    "Models",
    "NotFound",
    "NotificationRule",
    "OptionalId",
    "OptionalLimit",
    "Page",
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
    "Text",
    "TextValues",
    "TooManyRequests",
    "UTCDateTime",
    "Unauthorized",
    "UnsupportedMediaType",
    "User",
    "ValidationFailed",
    "__version__",
    "check_text",
    "claimed_key",
    "clamp_limit",
    "compare_and_set",
    "create_token",
    "create_user",
    "csv_escape",
    "csv_row",
    "csv_unescape",
    "decode_cursor",
    "dialect_of",
    "encode_cursor",
    "fetch_page",
    "get_context",
    "get_user",
    "hookimpl",
    "hookspec",
    "idempotent",
    "insert_ignoring",
    "invalid",
    "invalid_cursor",
    "is_retryable",
    "json_text_error",
    "json_too_deep",
    "list_tokens",
    "lock_key",
    "lock_row",
    "lock_rows",
    "page_by_id",
    "parse_duration",
    "plugin_metadata",
    "publish",
    "read_csv",
    "replay_safe",
    "requires_scopes",
    "revoke_token",
    "run_command",
    "serialize",
    "text_error",
    "token_state",
    "upsert",
    "users_with_role",
    "utcnow",
]
