"""Domain errors raised by services and turned into RFC 9457 problem+json by one handler.

Services raise these; routes never build error bodies by hand. Each error carries the HTTP
status it maps to, a short title and a detail meant for the client (never internals).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from platform_core._deprecation import moved_names


class PlatformError(Exception):
    """Base of every error the platform reports to a client as problem+json."""

    status: int = 400
    title: str = "Bad request"
    type_suffix: str = "bad-request"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    @property
    def type(self) -> str:
        """The problem type URI (relative, documented in docs/operations.md)."""
        return f"/problems/{self.type_suffix}"


class BadRequest(PlatformError):
    """The request is malformed in a way validation did not catch."""


class Unauthorized(PlatformError):
    """No valid credentials were presented."""

    status, title, type_suffix = 401, "Unauthorized", "unauthorized"


class Forbidden(PlatformError):
    """Credentials are valid but lack the scope or role the operation needs."""

    status, title, type_suffix = 403, "Forbidden", "forbidden"


class NotFound(PlatformError):
    """The object does not exist (or the caller may not know that it does)."""

    status, title, type_suffix = 404, "Not found", "not-found"


class Conflict(PlatformError):
    """The change conflicts with the current state (duplicate, constraint, veto)."""

    status, title, type_suffix = 409, "Conflict", "conflict"


class PayloadTooLarge(PlatformError):
    """The request body exceeds the configured limit."""

    status, title, type_suffix = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(PlatformError):
    """The request body's content type is not one the operation accepts."""

    status, title, type_suffix = 415, "Unsupported media type", "unsupported-media-type"


class ValidationFailed(PlatformError):
    """Input failed validation; ``errors`` lists each failing field."""

    status, title, type_suffix = 422, "Validation failed", "validation-failed"

    def __init__(self, detail: str | None = None, errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.extra = {"errors": errors or []}


def invalid(field: str, message: str, *, location: str | None = None) -> ValidationFailed:
    """A 422 naming one field: ``raise invalid("name", "is taken")``.

    ``location`` is where the field was sent (``body``, ``query``, ``path``, ``form``), added
    to the error as ``in`` when given, as request validation errors carry it.
    """
    error: dict[str, Any] = {"field": field, "message": message}
    if location is not None:
        error["in"] = location
    return ValidationFailed(f"{field}: {message}", errors=[error])


class TooManyRequests(PlatformError):
    """The caller exceeded a rate limit; ``retry_after`` is in seconds."""

    status, title, type_suffix = 429, "Too many requests", "too-many-requests"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceUnavailable(PlatformError):
    """A dependency (database, plugin) the operation needs is not available."""

    status, title, type_suffix = 503, "Service unavailable", "service-unavailable"


class PluginError(Exception):
    """A plugin could not be loaded; ``reason`` is the one-line explanation."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(f"{plugin}: {reason}")
        self.plugin = plugin
        self.reason = reason


class ConfigError(Exception):
    """The configuration file or environment is invalid; the message names file, section, key."""


class StrictModeError(Exception):
    """``[core] strict = true`` and at least one plugin failed to load."""

    def __init__(self, failures: dict[str, str]) -> None:
        lines = "; ".join(f"{name}: {reason}" for name, reason in failures.items())
        super().__init__(f"strict mode: refusing to start, plugins failed: {lines}")
        self.failures = failures


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, the driver error it wraps (``.orig``) and their causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__, getattr(current, "orig", None)]


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "PlatformError": "platform_core.PlatformError",
        "BadRequest": "platform_core.BadRequest",
        "Unauthorized": "platform_core.Unauthorized",
        "Forbidden": "platform_core.Forbidden",
        "NotFound": "platform_core.NotFound",
        "Conflict": "platform_core.Conflict",
        "PayloadTooLarge": "platform_core.PayloadTooLarge",
        "UnsupportedMediaType": "platform_core.UnsupportedMediaType",
        "ValidationFailed": "platform_core.ValidationFailed",
        "TooManyRequests": "platform_core.TooManyRequests",
        "ServiceUnavailable": "platform_core.ServiceUnavailable",
        "PluginError": "platform_core.PluginError",
        "ConfigError": "platform_core.ConfigError",
        "StrictModeError": "platform_core.StrictModeError",
    },
)
