"""The database: one async SQLAlchemy engine shared by the core and every plugin.

SQLite (the embedded default) gets WAL, foreign keys, a busy timeout and connections
that stop once (:mod:`platform_core.sqlite_driver`); PostgreSQL is used as is. ``schema``
confines every table to one PostgreSQL schema (tests use a fresh schema per test).

Nothing waits for the database for long (``[core.database]``): opening a connection is
bounded by ``connect_timeout`` (asyncpg's ``timeout``), one statement by
``statement_timeout`` (PostgreSQL's ``statement_timeout``, and asyncpg's client-side
``command_timeout`` a second later for a server that stopped answering; SQLite's busy
timeout), and waiting for a pooled connection by ``pool_timeout``. A request that runs
into one of them answers 503 (see :mod:`platform_core.db_outage`).

A pooled PostgreSQL connection is checked before use, cheaply (see
:func:`_check_on_checkout`): one the driver already knows is closed (a restarted server
closes its sockets) is replaced at no cost, and one that sat idle for
:data:`PING_AFTER_IDLE` seconds or more is pinged first. SQLAlchemy's ``pool_pre_ping``
would ping on every checkout: with asyncpg that is three round trips (``BEGIN``, ``;``,
``ROLLBACK``) per request, more than the request's own ``SELECT``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from platform_core._deprecation import moved_names

CONNECT_TIMEOUT = 5.0
"""Default seconds to open a connection (``[core.database] connect_timeout_seconds``)."""
STATEMENT_TIMEOUT = 10.0
"""Default seconds one statement may run or wait (``statement_timeout_seconds``)."""
POOL_TIMEOUT = 10.0
"""Default seconds to wait for a free pooled connection (``pool_timeout_seconds``)."""
POOL_SIZE = 10
"""Default connections a process keeps open (``pool_size``)."""
MAX_OVERFLOW = 5
"""Default connections opened beyond ``pool_size`` under load, closed when returned."""
CLIENT_GRACE = 1.0
"""Seconds the driver waits beyond the server's ``statement_timeout`` before giving up."""
PING_AFTER_IDLE = 10.0
"""Seconds a pooled PostgreSQL connection may sit idle before it is pinged at checkout."""


class Database:
    """Owns the engine and the session factory; create once per process."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        echo: bool = False,
        connect_timeout: float = CONNECT_TIMEOUT,
        statement_timeout: float = STATEMENT_TIMEOUT,
        pool_timeout: float = POOL_TIMEOUT,
        pool_size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
    ) -> None:
        self.url = make_url(url)
        self.schema = schema
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                private_directory(Path(database).parent)
            kwargs["connect_args"] = {"timeout": statement_timeout}
            if database in (None, "", ":memory:"):
                kwargs["poolclass"] = NullPool
            else:
                kwargs.update(
                    pool_timeout=pool_timeout, pool_size=pool_size, max_overflow=max_overflow
                )
        else:
            server_settings = {"statement_timeout": str(max(1, round(statement_timeout * 1000)))}
            if schema:
                server_settings["search_path"] = schema
            kwargs["connect_args"] = {
                "timeout": connect_timeout,
                "command_timeout": statement_timeout + CLIENT_GRACE,
                "server_settings": server_settings,
            }
            kwargs.update(pool_timeout=pool_timeout, pool_size=pool_size, max_overflow=max_overflow)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            busy_ms = max(1, round(statement_timeout * 1000))
            event.listen(self.engine.sync_engine, "connect", partial(_prepare_sqlite, busy_ms))
            database = self.url.database
            if database and database != ":memory:":
                path = Path(database)
                event.listen(
                    self.engine.sync_engine, "do_connect", lambda *_: private_sqlite_file(path)
                )
        else:
            _check_on_checkout(self.engine, PING_AFTER_IDLE)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite backend."""
        return self.url.get_backend_name() == "sqlite"

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.url.get_backend_name()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise when the database cannot run ``SELECT 1``."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def table_names(self) -> set[str]:
        """The tables that exist in this database (its schema, on PostgreSQL)."""
        if self.is_sqlite:
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            query = (
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        async with self.engine.connect() as conn:
            return set((await conn.scalars(text(query))).all())

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def private_directory(path: Path) -> None:
    """Create ``path`` (and its parents) with mode 0700 unless it exists (left as it is)."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite file with mode 0600 before SQLite opens it (at the first connection).

    The database holds password hashes and token digests: other local users must not read
    it. SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions. An
    existing file is left as it is (the operator chose its mode).
    """
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process created it first
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _check_on_checkout(engine: AsyncEngine, ping_after_idle: float) -> None:
    """Replace dead pooled connections at checkout, pinging only those that sat idle.

    A connection whose driver saw its socket close (``is_closed()``: the server restarted,
    or terminated the backend) costs nothing to detect. One idle for ``ping_after_idle``
    seconds or more may have been dropped silently (a firewall, a failover), so it is
    pinged. Either way, raising ``DisconnectionError`` makes the pool discard it and hand
    out a fresh connection (up to three tries) instead of failing the request.
    """
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["platform_idle_since"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise DisconnectionError("the pooled connection was closed")
        idle_since = record.info.get("platform_idle_since")
        if idle_since is None or time.monotonic() - idle_since < ping_after_idle:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):  # type: ignore[arg-type]
                raise DisconnectionError("the pooled connection did not answer a ping") from exc
            raise

    event.listen(sync_engine.pool, "checkin", checked_in)
    event.listen(sync_engine.pool, "checkout", checkout)


def _prepare_sqlite(busy_ms: int, dbapi_conn: Any, _record: Any) -> None:
    """A new SQLite connection: one that stops once (a cancelled query cannot hang the
    loop's shutdown, see :mod:`platform_core.sqlite_driver`), with the platform's PRAGMAs."""
    from platform_core import sqlite_driver

    sqlite_driver.install(dbapi_conn.driver_connection)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cur.close()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite drops zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def plugin_metadata() -> MetaData:
    """A fresh ``MetaData`` with the platform's constraint naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "utcnow": "platform_core.utcnow",
        "UTCDateTime": "platform_core.UTCDateTime",
        "plugin_metadata": "platform_core.plugin_metadata",
    },
)
