"""The core replays a request whose transaction hit a real deadlock or serialization failure.

PostgreSQL (a fresh database on the test server, or the local one): a route of an in-test
plugin provokes the failure deterministically with a rival transaction run outside the
request; the client sees the replay's answer, or a 503 problem once the budget is spent,
never a 500. SQLite's stale-snapshot error is recognised as retryable too.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from platform_core import hookimpl
from platform_core.auth.deps import DbSession, get_context
from platform_core.db import Database
from platform_core.retry import ATTEMPTS, _Attempt, _current, is_retryable, replay_safe, watch
from platform_core.testing import fresh_database


class Note(BaseModel):
    """Body of the test routes (a replay must see it again)."""

    note: str


async def _outside(work: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    """Run ``work`` as a task that is not part of the request (a fresh context)."""
    return asyncio.get_running_loop().create_task(work(), context=contextvars.Context())


class Racer:
    """Routes whose transaction loses to a rival transaction on purpose."""

    def __init__(self) -> None:
        self.runs: dict[str, list[str]] = {"deadlock": [], "stale": [], "committed": []}

    @hookimpl
    def platform_routes(self) -> list[APIRouter]:
        router = APIRouter()

        @router.post("/deadlock")
        async def deadlock(data: Note, request: Request, session: DbSession) -> dict[str, Any]:
            """Lock row 1, then row 2; on the first run a rival holds 2 and waits for 1."""
            self.runs["deadlock"].append(data.note)
            engine = get_context(request).db.engine
            await session.execute(text("SET LOCAL deadlock_timeout = '20ms'"))
            await session.execute(text("UPDATE retry_rows SET n = n + 1 WHERE id = 1"))
            if len(self.runs["deadlock"]) == 1:
                holds_two = asyncio.Event()

                async def rival() -> None:
                    async with engine.begin() as conn:
                        await conn.execute(text("SET LOCAL deadlock_timeout = '10s'"))
                        await conn.execute(text("UPDATE retry_rows SET n = n + 1 WHERE id = 2"))
                        holds_two.set()
                        await conn.execute(text("UPDATE retry_rows SET n = n + 1 WHERE id = 1"))

                self.rival = await _outside(rival)
                await holds_two.wait()
                await asyncio.sleep(0.3)  # the rival now waits for row 1 (for 10 s)
            await session.execute(text("UPDATE retry_rows SET n = n + 1 WHERE id = 2"))
            await session.execute(
                text("INSERT INTO retry_log (note) VALUES (:n)"), {"n": data.note}
            )
            return {"runs": len(self.runs["deadlock"])}

        @router.post("/stale")
        async def stale(data: Note, request: Request, session: DbSession) -> dict[str, Any]:
            """Read row 1 in a snapshot, let a rival change it, then write it: 40001 on every
            run while ``note`` is ``always``, on the first run otherwise."""
            self.runs["stale"].append(data.note)
            engine = get_context(request).db.engine
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            n = await session.scalar(text("SELECT n FROM retry_rows WHERE id = 1"))
            if data.note == "always" or len(self.runs["stale"]) == 1:

                async def rival() -> None:
                    async with engine.begin() as conn:
                        await conn.execute(text("UPDATE retry_rows SET n = n + 100 WHERE id = 1"))

                await (await _outside(rival))
            await session.execute(text("UPDATE retry_rows SET n = :n WHERE id = 1"), {"n": n + 1})
            return {"runs": len(self.runs["stale"])}

        @router.post("/committed")
        async def committed(data: Note, request: Request) -> dict[str, Any]:
            """Commit a write, then fail like /stale: replaying would write twice."""
            self.runs["committed"].append(data.note)
            db = get_context(request).db
            async with db.session() as first:
                await first.execute(text("INSERT INTO retry_log (note) VALUES (:n)"), {"n": "x"})
            async with db.session() as session:
                await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                n = await session.scalar(text("SELECT n FROM retry_rows WHERE id = 1"))

                async def rival() -> None:
                    async with db.engine.begin() as conn:
                        await conn.execute(text("UPDATE retry_rows SET n = n + 100 WHERE id = 1"))

                await (await _outside(rival))
                await session.execute(
                    text("UPDATE retry_rows SET n = :n WHERE id = 1"), {"n": n + 1}
                )
            return {"runs": len(self.runs["committed"])}

        return [router]


@pytest.fixture
async def racer(platform_factory, tmp_path: Path) -> Any:
    """A platform on a fresh PostgreSQL database with the racing routes and two rows."""
    async with fresh_database("postgresql", tmp_path) as url:
        plugin = Racer()
        platform = await platform_factory(extra_plugins={"racer": plugin}, database_url=url)
        async with platform.ctx.db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE retry_rows (id int PRIMARY KEY, n int)"))
            await conn.execute(text("INSERT INTO retry_rows VALUES (1, 0), (2, 0)"))
            await conn.execute(text("CREATE TABLE retry_log (id serial PRIMARY KEY, note text)"))
        client = await platform.client_for("admin")
        yield platform, plugin, client
        await platform.aclose()


async def _rows(platform: Any) -> tuple[dict[int, int], list[str]]:
    async with platform.ctx.db.engine.connect() as conn:
        rows = dict((await conn.execute(text("SELECT id, n FROM retry_rows"))).all())
        log = list((await conn.scalars(text("SELECT note FROM retry_log ORDER BY id"))).all())
    return rows, log


async def test_deadlock_is_replayed_with_the_same_body(racer):
    platform, plugin, client = racer
    r = await client.post("/api/racer/deadlock", json={"note": "hello"})
    assert r.status_code == 200, r.text
    assert r.json() == {"runs": 2}
    assert plugin.runs["deadlock"] == ["hello", "hello"]
    await plugin.rival  # it got row 1 once the first run was aborted as the deadlock victim
    rows, log = await _rows(platform)
    assert rows == {1: 2, 2: 2}  # the rival's +1 and the replay's +1 on each row
    assert log == ["hello"]  # the aborted run left nothing


async def test_serialization_failure_is_replayed(racer):
    platform, _plugin, client = racer
    r = await client.post("/api/racer/stale", json={"note": "once"})
    assert r.status_code == 200, r.text
    assert r.json() == {"runs": 2}
    rows, _ = await _rows(platform)
    assert rows[1] == 101  # the rival's +100, then the replay's +1 on the current value


async def test_exhausted_retries_answer_503_problem(racer):
    platform, plugin, client = racer
    r = await client.post("/api/racer/stale", json={"note": "always"})
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "1"
    body = r.json()
    assert body["type"] == "/problems/transaction-conflict"
    assert body["status"] == 503 and body["instance"] == "/api/racer/stale"
    assert len(plugin.runs["stale"]) == ATTEMPTS
    rows, _ = await _rows(platform)
    assert rows[1] == 100 * ATTEMPTS  # only the rivals' writes


async def test_no_replay_after_a_committed_write(racer):
    platform, plugin, client = racer
    r = await client.post("/api/racer/committed", json={"note": "n"})
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert plugin.runs["committed"] == ["n"]  # not run again: its first write is committed
    _, log = await _rows(platform)
    assert log == ["x"]


def test_sqlite_stale_snapshot_is_retryable(tmp_path: Path):
    """A real SQLITE_BUSY_SNAPSHOT: a read transaction's snapshot went stale before its
    first write (WAL)."""
    path = tmp_path / "stale.db"
    a = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    b = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    a.execute("PRAGMA journal_mode=WAL")
    a.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
    a.execute("INSERT INTO t VALUES (1, 0)")
    a.execute("BEGIN")
    a.execute("SELECT n FROM t").fetchall()
    b.execute("UPDATE t SET n = 1")
    with pytest.raises(sqlite3.OperationalError) as caught:
        a.execute("UPDATE t SET n = 2")
    assert is_retryable(caught.value)
    a.execute("ROLLBACK")
    with pytest.raises(sqlite3.IntegrityError) as other:
        b.execute("INSERT INTO t VALUES (1, 0)")
    assert not is_retryable(other.value)
    a.close()
    b.close()


async def test_watched_engine_reports_only_committed_writes_of_the_request(platform_factory):
    """Both databases: the engine's dialect reports a commit that wrote, and nothing else."""
    platform = await platform_factory()
    # a pool of one connection of its own: every step below runs on the same connection
    db = Database(
        platform.ctx.db.url.render_as_string(hide_password=False),
        schema=platform.ctx.db.schema,
        pool_size=1,
        max_overflow=0,
    )
    watch(db.engine)
    watch(db.engine)  # idempotent: the class is swapped once
    dialect = db.engine.sync_engine.dialect
    assert type(dialect).__mro__[1].__name__ == "_WatchingDialect"
    assert dialect._supports_statement_cache  # SQLAlchemy still caches compiled statements
    write = text("UPDATE core_users SET is_active = is_active WHERE id = -1")

    async def attempt_of(*statements: Any, commit: bool = True, safe: bool = False) -> _Attempt:
        attempt = _Attempt()
        token = _current.set(attempt)
        try:
            async with db.sessionmaker() as session:
                with replay_safe() if safe else contextlib.nullcontext():
                    for statement in statements:
                        await session.execute(statement)
                await (session.commit() if commit else session.rollback())
        finally:
            _current.reset(token)
        return attempt

    assert not (await attempt_of(text("SELECT 1"))).committed_writes
    assert (await attempt_of(write)).committed_writes
    assert not (await attempt_of(write, commit=False)).committed_writes
    # the rollback cleared the mark: the same (only) connection commits a read as a read
    assert not (await attempt_of(text("SELECT 1"))).committed_writes
    assert not (await attempt_of(write, safe=True)).committed_writes
    async with db.sessionmaker() as session:  # outside any request: not watched
        await session.execute(write)
        await session.commit()
    assert not (await attempt_of(text("SELECT 1"))).committed_writes
    await db.dispose()
