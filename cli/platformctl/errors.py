"""Turning any failure into one line for the terminal: ``error: <what went wrong>``."""

from __future__ import annotations

import socket
import sys

DEBUG_HINT = "rerun with --debug for the traceback"
_SCHEMA_HINT = "run `platformctl db upgrade` first"


class CliError(Exception):
    """A failure the user can act on; its message is printed as is, exit status 1."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text: str) -> str:
    """``text`` with its lines joined, so an error never spans several lines."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _database_error(exc: BaseException) -> str | None:
    """A message for SQLAlchemy errors; None when ``exc`` is not one."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if not isinstance(exc, SQLAlchemyError):
        return None
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    detail = one_line(str(orig)) or type(orig).__name__
    lowered = detail.lower()
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return f"database schema missing ({detail}): {_SCHEMA_HINT}"
    if isinstance(orig, OSError):
        return f"database unreachable: {detail}"
    return f"database error: {detail}"


def describe(exc: BaseException) -> str:
    """One line explaining ``exc`` to an operator, without a traceback."""
    from platform_core.errors import ConfigError, PlatformError, PluginError, StrictModeError

    if isinstance(exc, CliError | ConfigError | StrictModeError | PluginError):
        return one_line(str(exc))
    if isinstance(exc, PlatformError):
        return one_line(exc.detail)
    db_message = _database_error(exc)
    if db_message is not None:
        return db_message
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return f"database unreachable: {one_line(str(exc)) or type(exc).__name__}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    return f"{type(exc).__name__}: {one_line(str(exc))} ({DEBUG_HINT})"
