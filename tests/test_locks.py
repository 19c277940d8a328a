"""``platform_core.locks`` on the test database (SQLite, or PostgreSQL with
``PLATFORM_TEST_DATABASE_URL``): row locks, named locks, compare-and-set, inserts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, UniqueConstraint, select

from platform_core.errors import Conflict, NotFound
from platform_core.locks import (
    compare_and_set,
    insert_ignoring,
    lock_key,
    lock_row,
    lock_rows,
    serialize,
    upsert,
)

metadata = MetaData()
ITEMS = Table(
    "locks_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("size", Integer, nullable=False, default=0),
    UniqueConstraint("name", name="uq_locks_items_name"),
)


@pytest.fixture
async def db(platform):
    """The platform's database with ``locks_items`` rows 1 (a, pending) and 2 (b, pending)."""
    async with platform.ctx.db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            ITEMS.insert(),
            [{"name": "a", "status": "pending"}, {"name": "b", "status": "pending"}],
        )
    return platform.ctx.db


async def _waits(task: asyncio.Task[Any], seconds: float = 0.4) -> bool:
    await asyncio.sleep(seconds)
    return not task.done()


async def test_lock_row_makes_a_second_writer_wait_and_see_the_commit(db):
    first = db.sessionmaker()
    await first.begin()
    row = (await first.execute(select(ITEMS).where(ITEMS.c.id == 1))).first()
    assert row is not None
    await lock_row(first, ITEMS, 1)

    async def second() -> str:
        async with db.session() as session:
            await lock_row(session, ITEMS, 1)
            return str(await session.scalar(select(ITEMS.c.status).where(ITEMS.c.id == 1)))

    task = asyncio.create_task(second())
    assert await _waits(task)
    await first.execute(ITEMS.update().where(ITEMS.c.id == 1).values(status="approved"))
    await first.commit()
    await first.close()
    assert await task == "approved"


async def test_lock_row_returns_none_for_a_missing_row_and_lock_rows_sorts(db):
    async with db.session() as session:
        assert await lock_row(session, ITEMS, 99) is None
        row = await lock_row(session, ITEMS, 2)
        assert (row.id, row.name, row.status) == (2, "b", "pending")
        rows = await lock_rows(session, ITEMS, [2, 99, 1, 2])
        assert [r.id for r in rows] == [1, 2]


async def test_serialize_waits_for_the_same_key(db):
    first = db.sessionmaker()
    await first.begin()
    await serialize(first, "test.owner", [7], table=ITEMS)

    async def same() -> None:
        async with db.session() as session:
            await serialize(session, "test.owner", [3, 7], table=ITEMS)

    task = asyncio.create_task(same())
    assert await _waits(task)
    await first.commit()
    await first.close()
    await task


async def test_serialize_other_keys_are_independent_on_postgresql(db):
    """PostgreSQL: another key does not wait. SQLite: the named lock is the database's write
    lock, so every writer waits (documented)."""
    first = db.sessionmaker()
    await first.begin()
    await serialize(first, "test.owner", [7], table=ITEMS)

    async def other() -> None:
        async with db.session() as session:
            await serialize(session, "test.owner", [8], table=ITEMS)

    task = asyncio.create_task(other())
    waited = await _waits(task, 0.3)
    await first.commit()
    await first.close()
    await task
    assert waited is (db.dialect == "sqlite")


def test_lock_key_is_stable_and_distinct():
    assert lock_key("scheduler.device", 1) == lock_key("scheduler.device", 1)
    assert lock_key("scheduler.device", 1) != lock_key("scheduler.device", 2)
    assert lock_key("scheduler.device", 1) != lock_key("scheduler.owner", 1)
    assert -(2**63) <= lock_key("x") < 2**63


async def test_compare_and_set_one_winner_loser_names_the_state(db):
    first = db.sessionmaker()
    await first.begin()
    assert await compare_and_set(
        first, ITEMS, 1, expected="pending", values={"status": "approved"}, label="item 1"
    )

    async def loser() -> None:
        async with db.session() as session:
            await compare_and_set(
                session,
                ITEMS,
                1,
                expected="pending",
                values={"status": "rejected"},
                label="item 1",
            )

    task = asyncio.create_task(loser())
    if db.dialect == "postgresql":
        assert await _waits(task)  # the row lock of the uncommitted change
    await first.commit()
    await first.close()
    with pytest.raises(Conflict) as caught:
        await task
    assert caught.value.detail == "item 1 is approved, not pending"
    assert caught.value.extra["current_state"] == "approved"
    async with db.session() as session:
        assert await session.scalar(select(ITEMS.c.status).where(ITEMS.c.id == 1)) == "approved"


async def test_compare_and_set_missing_row_and_quiet_mode(db):
    async with db.session() as session:
        with pytest.raises(NotFound):
            await compare_and_set(session, ITEMS, 99, expected="pending", values={"size": 1})
        assert not await compare_and_set(
            session,
            ITEMS,
            2,
            expected=("approved", "active"),
            values={"size": 1},
            conflict=False,
        )
        assert await compare_and_set(
            session, ITEMS, 2, expected=("pending", "approved"), values={"status": "active"}
        )


async def test_insert_ignoring_returns_only_new_rows(db):
    async with db.session() as session:
        stmt = insert_ignoring(session, ITEMS, index_elements=["name"]).returning(ITEMS.c.name)
        rows = [
            {"name": "a", "status": "x"},
            {"name": "c", "status": "new"},
        ]
        inserted = [r[0] for r in (await session.execute(stmt, rows)).all()]
        assert inserted == ["c"]
        got = dict((await session.execute(select(ITEMS.c.name, ITEMS.c.status))).all())
        assert got == {"a": "pending", "b": "pending", "c": "new"}


async def test_upsert_updates_existing_rows_and_inserts_new_ones(db):
    async with db.session() as session:
        n = await upsert(
            session,
            ITEMS,
            [
                {"name": "a", "status": "approved", "size": 5},
                {"name": "d", "status": "new", "size": 1},
            ],
            keys=["name"],
            update_columns=["size"],
        )
        assert n == 2
        rows = await session.execute(select(ITEMS.c.name, ITEMS.c.status, ITEMS.c.size))
        got = {name: (status, size) for name, status, size in rows}
        assert got == {"a": ("pending", 5), "b": ("pending", 0), "d": ("new", 1)}
        assert await upsert(session, ITEMS, [], keys=["name"]) == 0
