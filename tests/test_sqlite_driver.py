"""A query cancelled twice on SQLite (SQLAlchemy then force-stops its connection) leaves
no task that hangs the event loop's shutdown (:mod:`platform_core.sqlite_driver`).

Before the fix, the graceful close SQLAlchemy starts in the background waited forever for
a second stop of the aiosqlite worker thread, and a loop shutting down (which cancels each
task once) hung on it: a CI run stalled for 15 minutes in a test's loop teardown.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text

from platform_core.db import Database
from platform_core.sqlite_driver import StopOnceConnection, install

QUERY_SECONDS = 0.5


async def _cancel_twice_mid_query(db: Database) -> None:
    """Run a query that holds the connection's thread for QUERY_SECONDS and cancel its task
    twice in the middle (anyio delivers a cancel until the task leaves its scope): the
    second cancel makes SQLAlchemy force-stop the connection it was closing."""

    async def query() -> None:
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert isinstance(driver, StopOnceConnection)
            await driver.create_function("pause", 1, time.sleep)
            await conn.execute(text("SELECT pause(:s)"), {"s": QUERY_SECONDS})

    task = asyncio.create_task(query())
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


def _others() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


@pytest.fixture
async def db(tmp_path: Path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    yield database
    await database.dispose()


async def test_the_close_left_behind_ends_when_the_query_ends(db):
    await _cancel_twice_mid_query(db)
    await db.dispose()
    closing = _others()
    _, pending = await asyncio.wait(closing, timeout=QUERY_SECONDS + 5) if closing else ((), ())
    assert not pending, f"still pending: {pending}"


async def test_one_cancel_ends_it_as_a_loop_shutting_down_does(db):
    await _cancel_twice_mid_query(db)
    await db.dispose()
    closing = _others()
    assert closing, "the scenario changed: SQLAlchemy left no close behind to cancel"
    for task in closing:
        task.cancel()  # what asyncio.run and pytest-asyncio do once at the end
    _, pending = await asyncio.wait(closing, timeout=QUERY_SECONDS + 5)
    assert not pending, f"one cancel did not end: {pending}"


async def test_the_connection_still_answers_and_closes_normally(db):
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
    await db.dispose()
    assert isinstance(driver, StopOnceConnection)
    assert driver._connection is None  # closed by dispose, its thread told to stop once
    assert driver._stopping is not None


async def test_a_close_after_a_cancelled_close_neither_raises_nor_waits_forever(tmp_path):
    conn = await aiosqlite.connect(tmp_path / "bare.db")
    install(conn)
    await conn.create_function("pause", 1, time.sleep)
    busy = asyncio.ensure_future(conn.execute("SELECT pause(?)", (QUERY_SECONDS,)))
    await asyncio.sleep(0.05)
    first = asyncio.ensure_future(conn.close())
    await asyncio.sleep(0.01)
    first.cancel()  # cancelled waiting for its close...
    await asyncio.sleep(0.01)
    first.cancel()  # ...and again, waiting for its stop (that stop's future is cancelled)
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(conn.close(), QUERY_SECONDS + 5)  # no CancelledError, no hang
    await asyncio.gather(busy, return_exceptions=True)
    await asyncio.to_thread(conn._thread.join, 5)
    assert not conn._thread.is_alive()
