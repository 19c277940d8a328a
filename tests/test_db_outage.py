"""Database outages answer 503 problem+json with ``Retry-After``, within the timeouts.

- a database that never answers (a loopback listener that accepts nothing): 503 within
  ``connect_timeout_seconds`` (asyncpg's own default waits 60 s);
- a real ``platformctl serve`` whose PostgreSQL stops answering mid-flight (a loopback
  proxy turned black hole) or whose SQLite file another process keeps locked: 503 within
  the statement timeout, readiness false, and recovery once the database is back;
- dropped tables (both databases), a dropped database (PostgreSQL), an exhausted pool, a
  statement waiting on a lock past the statement timeout;
- errors that are not outages (a syntax error, a plugin's own ``OSError``) stay 500.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from platform_core import hookimpl
from platform_core.auth.deps import DbSession
from platform_core.config import ConfigError, load_config
from platform_core.testing import fresh_database, served

FAST = {"connect_timeout_seconds": 1, "statement_timeout_seconds": 1, "pool_timeout_seconds": 1}


def assert_outage(r: httpx.Response) -> dict[str, Any]:
    """A 503 problem with Retry-After, naming no internals."""
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) > 0
    body = r.json()
    assert body["type"] == "/problems/service-unavailable"
    assert body["detail"] == "the database is unavailable; try again shortly"
    assert "SELECT" not in r.text and "Traceback" not in r.text
    return body


def database_check(r: httpx.Response) -> dict[str, Any]:
    """The ``core.database`` entry of a ``/readyz`` answer."""
    (check,) = [c for c in r.json()["checks"] if c["name"] == "core.database"]
    return check


async def timed(request: Any) -> tuple[httpx.Response, float]:
    """The response and the seconds it took (at most 30: a hang fails the test cleanly)."""
    started = time.monotonic()
    response = await asyncio.wait_for(request, 30)
    return response, time.monotonic() - started


@pytest.fixture
def silent_listener() -> Any:
    """A loopback TCP port that accepts connections at the kernel and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


async def test_database_that_never_answers_gives_503_within_the_connect_timeout(
    platform_factory, silent_listener
):
    platform = await platform_factory(
        database_url=f"postgresql+asyncpg://nobody@127.0.0.1:{silent_listener}/none",
        core={"database": FAST},
        migrate=False,
        start=False,
    )
    client = platform.client()
    form = {"username": "alice", "password": "whatever-it-is"}
    r, seconds = await timed(client.post("/api/core/auth/token", data=form))
    assert_outage(r)
    assert seconds < 4, f"503 took {seconds:.1f}s (connect timeout 1 s)"
    ready, seconds = await timed(client.get("/readyz"))
    assert ready.status_code == 503 and not database_check(ready)["ok"]
    assert seconds < 4


async def test_dropped_tables_answer_503_and_readiness_names_them(platform):
    from platform_core.base import CoreBase

    client = await platform.client_for("admin")
    assert (await client.get("/api/core/me")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    async with platform.ctx.db.engine.begin() as conn:
        await conn.run_sync(CoreBase.metadata.drop_all)
        await conn.execute(text("DROP TABLE alembic_version_core"))
    platform.ctx.state["credential_cache"].clear()
    assert_outage(await client.get("/api/core/me"))
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    check = database_check(ready)
    assert not check["ok"]
    assert "missing tables: alembic_version_core, core_api_tokens" in check["error"]
    assert "platformctl db upgrade" in check["error"]


async def test_dropped_postgresql_database_answers_503(platform_factory, tmp_path):
    async with fresh_database("postgresql", tmp_path) as url:
        platform = await platform_factory(database_url=url, core={"database": FAST})
        client = await platform.client_for("admin")
        assert (await client.get("/api/core/me")).status_code == 200
        server = create_async_engine(
            str(make_url(url).set(database="postgres").render_as_string(hide_password=False)),
            isolation_level="AUTOCOMMIT",
        )
        try:
            async with server.connect() as conn:
                name = make_url(url).database
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        finally:
            await server.dispose()
        r, seconds = await timed(client.get("/api/core/me"))
        assert_outage(r)
        assert seconds < 5
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "does not exist" in database_check(ready)["error"]


def _admin_engine(url: str) -> Any:
    """An AUTOCOMMIT engine on the server's ``postgres`` database."""
    server = make_url(url).set(database="postgres")
    return create_async_engine(
        server.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )


async def test_pooled_connections_of_terminated_backends_are_replaced(platform_factory, tmp_path):
    """The server ends every backend (a restart, ``pg_terminate_backend``): the requests that
    follow answer 200 on fresh connections instead of failing on the dead pooled ones."""
    async with fresh_database("postgresql", tmp_path) as url:
        platform = await platform_factory(database_url=url)
        client = await platform.client_for("admin")
        pooled = platform.ctx.db.engine.sync_engine.pool
        held = [await platform.ctx.db.engine.connect() for _ in range(3)]
        for conn in held:  # three live connections back in the pool
            await conn.exec_driver_sql("SELECT 1")
            await conn.close()
        assert pooled.checkedin() >= 3
        server = _admin_engine(url)
        try:
            async with server.connect() as conn:
                ended = await conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": make_url(url).database},
                )
        finally:
            await server.dispose()
        assert ended >= 3
        await asyncio.sleep(0.2)  # the event loop reads each socket's end
        statuses = [(await client.get("/api/core/me")).status_code for _ in range(6)]
        assert statuses == [200] * 6


async def test_pooled_connection_is_pinged_only_after_sitting_idle(tmp_path, monkeypatch):
    """No ping on a busy connection (it would cost three round trips per request with
    asyncpg); one idle past ``PING_AFTER_IDLE`` is pinged, and replaced when the ping
    finds it dead."""
    from platform_core import db as db_module

    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.3)
    async with fresh_database("postgresql", tmp_path) as url:
        database = db_module.Database(url)
        dialect = database.engine.sync_engine.dialect
        pings: list[str] = []
        real_ping = dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            pings.append("ping")
            if len(pings) == 2:  # the second ping finds the connection dead
                dbapi_connection.driver_connection.terminate()
            return bool(real_ping(dbapi_connection))

        monkeypatch.setattr(dialect, "do_ping", counted_ping)
        try:
            for _ in range(3):
                async with database.engine.connect() as conn:
                    first_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            assert pings == []  # checked out again at once: not pinged
            await asyncio.sleep(0.4)
            async with database.engine.connect() as conn:
                assert await conn.scalar(text("SELECT pg_backend_pid()")) == first_pid
            assert pings == ["ping"]  # idle past the threshold: pinged, alive, kept
            await asyncio.sleep(0.4)
            async with database.engine.connect() as conn:
                replaced_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            assert pings == ["ping", "ping"]
            assert replaced_pid != first_pid  # the ping failed: a fresh connection
        finally:
            await database.dispose()


async def test_exhausted_pool_answers_503_after_the_pool_timeout(platform_factory):
    platform = await platform_factory(core={"database": {"pool_timeout_seconds": 0.5}})
    client = await platform.client_for("admin")
    assert (await client.get("/api/core/me")).status_code == 200  # credential now cached
    held = []
    try:
        with pytest.raises(sa_exc.TimeoutError):
            for _ in range(100):
                held.append(await platform.ctx.db.engine.connect())
        r, seconds = await timed(client.get("/api/core/me"))
        assert_outage(r)
        assert seconds < 3
    finally:
        for conn in held:
            await conn.close()
    assert (await client.get("/api/core/me")).status_code == 200


async def test_pool_keeps_pool_size_connections_and_opens_max_overflow_more(platform_factory):
    platform = await platform_factory(
        core={"database": {"pool_size": 2, "max_overflow": 1, "pool_timeout_seconds": 0.5}}
    )
    engine = platform.ctx.db.engine
    held = [await engine.connect() for _ in range(3)]
    try:
        with pytest.raises(sa_exc.TimeoutError):  # 2 + 1 in use: a fourth waits, then fails
            await engine.connect()
    finally:
        for conn in held:
            await conn.close()
    assert engine.pool.checkedin() == 2  # the overflow connection was closed when returned


async def test_statement_waiting_past_the_statement_timeout_answers_503(platform_factory):
    platform = await platform_factory(core={"database": {"statement_timeout_seconds": 1}})
    client = await platform.client_for("admin")
    assert (await client.post("/api/core/tokens", json={"name": "a"})).status_code == 201
    async with platform.ctx.db.engine.connect() as locker:
        if platform.ctx.db.is_sqlite:  # an open write transaction holds SQLite's write lock
            await locker.execute(text("UPDATE core_api_tokens SET name = name"))
        else:
            await locker.execute(text("LOCK TABLE core_api_tokens IN EXCLUSIVE MODE"))
        r, seconds = await timed(client.post("/api/core/tokens", json={"name": "b"}))
        assert_outage(r)
        assert 0.9 < seconds < 5
        await locker.rollback()
    assert (await client.post("/api/core/tokens", json={"name": "c"})).status_code == 201


class Failing:
    """Routes failing in ways that are bugs, not outages."""

    @hookimpl
    def platform_routes(self) -> list[APIRouter]:
        router = APIRouter()

        @router.get("/syntax")
        async def syntax(session: DbSession) -> dict[str, Any]:
            await session.execute(text("SELEC 1"))
            return {}

        @router.get("/file")
        async def file() -> dict[str, Any]:
            Path("/nonexistent/platform/file").read_text()
            return {}

        return [router]


async def test_errors_that_are_not_outages_stay_500(platform_factory):
    platform = await platform_factory(extra_plugins={"failing": Failing()})
    client = await platform.client_for("admin")
    for path in ("/api/failing/syntax", "/api/failing/file"):
        r = await client.get(path)
        assert r.status_code == 500, r.text
        assert "retry-after" not in r.headers


def test_database_timeouts_are_validated_naming_the_key(tmp_path):
    config = tmp_path / "plugins.toml"
    config.write_text("[core.database]\nconnect_timeout_seconds = 0\n")
    with pytest.raises(ConfigError, match=r"\[core\] key 'database.connect_timeout_seconds'"):
        load_config(config)
    config.write_text("[core.database]\nstatement_timeout_seconds = 2.5\n")
    assert load_config(config).core.database.statement_timeout_seconds == 2.5
    config.write_text("[core.database]\npool_size = 0\n")
    with pytest.raises(ConfigError, match=r"\[core\] key 'database.pool_size'"):
        load_config(config)
    config.write_text("[core.database]\nmax_overflow = -1\n")
    with pytest.raises(ConfigError, match=r"\[core\] key 'database.max_overflow'"):
        load_config(config)


# --- a real `platformctl serve` ------------------------------------------------------------


class BlackHoleProxy:
    """A loopback TCP proxy that can stop answering without closing anything.

    After :meth:`black_hole` the open connections swallow what they receive and new ones
    are accepted and never connected upstream: a database behind a dead route.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.silent = False
        self.generation = 0
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> BlackHoleProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def black_hole(self) -> None:
        """Stop answering: open connections go silent for good, new ones get nothing."""
        self.silent = True
        self.generation += 1

    def restore(self) -> None:
        """Forward new connections again (the silenced ones stay silent)."""
        self.silent = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        try:
            if self.silent:
                await self._pump(reader, None, self.generation)
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            self._writers.append(up_writer)
            generation = self.generation
            await asyncio.gather(
                self._pump(reader, up_writer, generation), self._pump(up_reader, writer, generation)
            )
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, generation: int
    ) -> None:
        while data := await reader.read(65536):
            if writer is not None and generation == self.generation:
                writer.write(data)
                await writer.drain()


async def _prepare(config: Path) -> str:
    """Migrate the configured database and return an admin's API token."""
    from platform_core.app import boot
    from platform_core.auth import service
    from platform_core.migrate import upgrade

    ctx = boot(load_config(config))
    await upgrade(ctx.db, ctx.state["migration_targets"])
    async with ctx.db.session() as session:
        user = await service.create_user(session, "ops", "admin", None)
        _, secret = await service.create_token(
            session,
            user,
            scopes=None,
            known_scopes=frozenset(ctx.permissions),
            role_scopes=ctx.state["role_scopes"]["admin"],
            expires_in=None,
        )
    await ctx.db.dispose()
    return secret


def _write_config(path: Path, url: str) -> Path:
    path.write_text(
        f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "ERROR"\n'
        "[core.database]\n"
        + "".join(f"{key} = {value}\n" for key, value in FAST.items())
        + "[plugins]\nenabled = []\n"
    )
    return path


@asynccontextmanager
async def _client(base: str, token: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        yield client


async def _recovers(client: httpx.AsyncClient, request: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (await request(client)).status_code >= 500:
        assert time.monotonic() < deadline, "the server did not recover"
        await asyncio.sleep(0.2)


async def test_served_postgresql_that_stops_answering_gives_503_then_recovers(tmp_path):
    async with fresh_database("postgresql", tmp_path) as url:
        token = await _prepare(_write_config(tmp_path / "direct.toml", url))
        db_url = make_url(url)
        async with BlackHoleProxy(db_url.host or "127.0.0.1", db_url.port or 5432) as proxy:
            proxied = db_url.set(host="127.0.0.1", port=proxy.port)
            config = _write_config(
                tmp_path / "plugins.toml", proxied.render_as_string(hide_password=False)
            )
            async with served(config) as base, _client(base, token) as client:
                assert (await client.get("/api/core/me")).status_code == 200
                assert (await client.get("/readyz")).status_code == 200
                proxy.black_hole()
                r, seconds = await timed(client.get("/api/core/me"))
                assert_outage(r)
                # a pooled connection: statement timeout 1 s + 1 s driver grace, then a
                # reconnect bounded by the 1 s connect timeout (before: no bound at all)
                assert seconds < 8, f"503 took {seconds:.1f}s"
                r, seconds = await timed(client.get("/api/core/me"))
                assert_outage(r)
                assert seconds < 4, f"503 took {seconds:.1f}s (connect timeout 1 s)"
                ready = await client.get("/readyz")
                assert ready.status_code == 503 and not database_check(ready)["ok"]
                proxy.restore()
                await _recovers(client, lambda c: c.get("/api/core/me"))
                assert (await client.get("/readyz")).status_code == 200


async def test_served_sqlite_locked_past_the_busy_timeout_gives_503_then_recovers(tmp_path):
    database = tmp_path / "platform.db"
    config = _write_config(tmp_path / "plugins.toml", f"sqlite+aiosqlite:///{database}")
    token = await _prepare(config)
    async with served(config) as base, _client(base, token) as client:
        assert (await client.post("/api/core/tokens", json={"name": "a"})).status_code == 201
        locker = sqlite3.connect(database, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            r, seconds = await timed(client.post("/api/core/tokens", json={"name": "b"}))
            assert_outage(r)
            assert seconds < 4, f"503 took {seconds:.1f}s (busy timeout 1 s)"
        finally:
            locker.rollback()
            locker.close()
        await _recovers(client, lambda c: c.post("/api/core/tokens", json={"name": "c"}))
