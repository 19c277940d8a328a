"""Database outages answer 503 with ``Retry-After``, never 500 and never a long wait.

An outage is anything that says "the database cannot serve this now" rather than "this
request is wrong": no connection could be opened (refused, timed out, host unknown, the
database does not exist), a connection broke, no pooled connection came free within
``pool_timeout``, a statement ran into ``statement_timeout`` (SQLite: the busy timeout),
the server is shutting down, out of connections or read-only, or the schema is gone (an
undefined table: the database was reset or never migrated). :func:`is_database_outage`
recognises them on both databases, whether SQLAlchemy wrapped the driver's error or the
driver raised it while connecting.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc

from platform_core.errors import exception_chain
from platform_core.problems import problem

log = logging.getLogger("platform_core.errors")

RETRY_AFTER_SECONDS = 5
"""The ``Retry-After`` sent with a 503 for a database outage."""
DETAIL = "the database is unavailable; try again shortly"

# SQLSTATE classes and codes that mean "unavailable", not "bad request".
_OUTAGE_CLASSES = ("08", "53", "57P")  # connection exception, resources, shutdown
_OUTAGE_CODES = frozenset(
    {
        "3D000",  # invalid_catalog_name: the database does not exist
        "3F000",  # invalid_schema_name
        "42P01",  # undefined_table: dropped tables, a reset or unmigrated database
        "57014",  # query_canceled: statement_timeout
        "25006",  # read_only_sql_transaction: connected to a standby after a failover
        "55P03",  # lock_not_available: lock_timeout
    }
)
_SQLITE_OUTAGES = (
    "SQLITE_BUSY",  # the busy timeout ran out ("database is locked")
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_READONLY",
)


_DATABASE_ERRORS = (sa_exc.SQLAlchemyError, asyncpg.PostgresError, sqlite3.Error)
_DATABASE_PACKAGES = ("sqlalchemy.", "asyncpg.", "aiosqlite.")


def _raised_by_database(exc: BaseException) -> bool:
    """True when ``exc`` is a database error or was raised inside the database's code."""
    for err in exception_chain(exc):
        if isinstance(err, _DATABASE_ERRORS):
            return True
        tb = err.__traceback__
        while tb is not None:
            module = str(tb.tb_frame.f_globals.get("__name__", ""))
            if module.startswith(_DATABASE_PACKAGES) or module == "platform_core.db":
                return True
            tb = tb.tb_next
    return False


def outage_reason(exc: BaseException) -> str | None:
    """Why ``exc`` means the database is unavailable (for the log), or None when it does not.

    A bare ``OSError`` (refused, timed out, unknown host) counts only when it was raised by
    the database's code, so an unrelated plugin's file or socket error stays a 500.
    """
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "connection lost"
    if not _raised_by_database(exc):
        return None
    for err in exception_chain(exc):
        if isinstance(err, sa_exc.TimeoutError):
            return "no pooled connection came free within pool_timeout"
        if isinstance(err, TimeoutError):
            return "timed out"
        if isinstance(err, asyncpg.exceptions.ConnectionDoesNotExistError):
            return "connection lost"
        sqlstate = str(getattr(err, "sqlstate", "") or getattr(err, "pgcode", "") or "")
        if sqlstate in _OUTAGE_CODES or sqlstate.startswith(_OUTAGE_CLASSES):
            return f"SQLSTATE {sqlstate}: {type(err).__name__}"
        if isinstance(err, sqlite3.OperationalError):
            name = getattr(err, "sqlite_errorname", "") or ""
            if name.startswith(_SQLITE_OUTAGES) or str(err).startswith("no such table"):
                return f"{name or 'sqlite'}: {str(err)[:200]}"
        if isinstance(err, OSError):  # refused, unreachable, unknown host
            return f"{type(err).__name__}: {err}"
    return None


def is_database_outage(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot serve now (answer 503, retry later)."""
    return outage_reason(exc) is not None


def outage_response(request: Request, reason: str) -> JSONResponse:
    """The 503 problem for a database outage; the reason goes to the log, not the client."""
    log.error("database unavailable", extra={"path": request.url.path, "reason": reason})
    return problem(request, 503, DETAIL, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


Handler = Callable[[Request, Exception], Awaitable[Response]]


def install(app: FastAPI) -> None:
    """Answer database outages with 503 + ``Retry-After``; other errors keep their handlers.

    Call after :func:`platform_core.problems.install`: for the classes both handle, the
    earlier handler still answers whatever is not an outage.
    """

    def handler_for(exc_type: type[BaseException]) -> Handler:
        previous = app.exception_handlers.get(exc_type)

        async def handle(request: Request, exc: Exception) -> Response:
            reason = outage_reason(exc)
            if reason is not None:
                return outage_response(request, reason)
            if previous is None:
                raise exc
            result = previous(request, exc)
            return await result if isinstance(result, Awaitable) else result

        return handle

    for exc_type in (
        sa_exc.DBAPIError,
        sa_exc.TimeoutError,
        asyncpg.PostgresError,
        asyncpg.exceptions.ConnectionDoesNotExistError,
        sqlite3.OperationalError,
        OSError,
        ConnectionError,
        TimeoutError,
        socket.gaierror,
    ):
        app.add_exception_handler(exc_type, handler_for(exc_type))
