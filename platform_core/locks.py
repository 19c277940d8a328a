"""Locks, compare-and-set and dialect-aware inserts that work on SQLite and PostgreSQL.

Every helper takes an open ``AsyncSession``; locks last until its transaction ends.

- **PostgreSQL** (``READ COMMITTED``): :func:`lock_row` is ``SELECT ... FOR UPDATE``;
  :func:`serialize` is a transaction-level advisory lock (``pg_advisory_xact_lock``) on a
  64-bit key derived from a name; :func:`compare_and_set` is ``UPDATE ... WHERE state IN
  (...) RETURNING``: a second writer waits for the first one's row lock, then re-evaluates
  its ``WHERE`` on the committed row and loses.
- **SQLite**: there is one writer at a time. Every lock helper starts with a no-op write (an
  ``UPDATE`` matching no row), which makes the driver open the transaction and take the
  database's write lock at once (like ``BEGIN IMMEDIATE``): a second writer waits for it
  (``busy_timeout``), and everything this transaction reads afterwards is current until
  its commit. So on SQLite a row lock or a named lock serializes *all* writers.

Lock order: take locks in one global order (rows by primary key, named keys sorted, rows
before named locks) so that two transactions never wait on each other; :func:`lock_rows`
and :func:`serialize` sort for you. What still deadlocks is retried by the core
(:mod:`platform_core.retry`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core.errors import Conflict, NotFound

__all__ = [
    "compare_and_set",
    "dialect_of",
    "insert_ignoring",
    "lock_key",
    "lock_row",
    "lock_rows",
    "serialize",
    "upsert",
]

CHUNK = 500
"""Rows per statement in :func:`upsert` (well under SQLite's bound-parameter limit)."""


def dialect_of(session: AsyncSession) -> str:
    """``postgresql`` or ``sqlite``: the dialect of the session's bind."""
    return session.get_bind().dialect.name


def _table(target: Any) -> Table:
    table = target if isinstance(target, Table) else getattr(target, "__table__", None)
    if not isinstance(table, Table):
        raise TypeError(f"{target!r} is neither a Table nor a mapped class")
    return table


def _pk(table: Table) -> Any:
    columns = list(table.primary_key.columns)
    if len(columns) != 1:
        raise TypeError(f"table {table.name!r} needs a single-column primary key")
    return columns[0]


async def _sqlite_write_lock(session: AsyncSession, table: Table) -> None:
    """Take SQLite's write lock with an ``UPDATE`` that matches no row (no triggers, no
    ``onupdate`` columns: a plain text statement)."""
    quote = session.get_bind().dialect.identifier_preparer.quote
    pk = quote(_pk(table).name)
    await session.execute(text(f"UPDATE {quote(table.name)} SET {pk} = {pk} WHERE 0 = 1"))


async def lock_row(session: AsyncSession, model: Any, row_id: Any) -> Any:
    """The current row of ``model`` (a mapped class: the ORM object; a ``Table``: the row)
    with primary key ``row_id`` (``None`` when missing), locked until the transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE``. SQLite: the database's write lock, then the row.
    The ORM object is refreshed from the database (``populate_existing``), so what the
    caller checks is the committed state.
    """
    table = _table(model)
    stmt = select(model).where(_pk(table) == row_id).execution_options(populate_existing=True)
    if dialect_of(session) == "postgresql":
        stmt = stmt.with_for_update()
    else:
        await _sqlite_write_lock(session, table)
    if isinstance(model, Table):
        return (await session.execute(stmt)).first()
    return await session.scalar(stmt)


async def lock_rows(session: AsyncSession, model: Any, row_ids: Iterable[Any]) -> list[Any]:
    """Lock the rows of ``model`` with these primary keys in ascending key order (the global
    order that keeps two transactions from deadlocking); the rows found, by key."""
    table = _table(model)
    pk = _pk(table)
    ids = sorted(set(row_ids))
    if not ids:
        return []
    stmt = select(model).where(pk.in_(ids)).order_by(pk).execution_options(populate_existing=True)
    if dialect_of(session) == "postgresql":
        stmt = stmt.with_for_update()
    else:
        await _sqlite_write_lock(session, table)
    if isinstance(model, Table):
        return list((await session.execute(stmt)).all())
    return list((await session.scalars(stmt)).all())


def lock_key(name: str, key: object = None) -> int:
    """The signed 64-bit advisory-lock key of ``(name, key)`` (stable across processes)."""
    raw = name if key is None else f"{name}:{key}"
    return int.from_bytes(hashlib.blake2b(raw.encode(), digest_size=8).digest(), "big", signed=True)


_ADVISORY = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM "
    "(SELECT k FROM unnest(:keys) AS u(k) ORDER BY k) AS sorted_keys"
).bindparams(bindparam("keys", type_=ARRAY(BIGINT)))


async def serialize(
    session: AsyncSession, name: str, keys: Iterable[object] = (None,), *, table: Any = None
) -> None:
    """A named lock on each of ``keys`` (e.g. ``serialize(s, "scheduler.owner", [7])``) held
    until the transaction ends; works on both databases.

    PostgreSQL: ``pg_advisory_xact_lock`` on :func:`lock_key` of each ``(name, key)``, taken
    in ascending key order in one statement. SQLite: the database's write lock (a no-op
    ``UPDATE`` of ``table``, default ``core_users``, which every installation has).
    """
    if dialect_of(session) == "postgresql":
        ordered = sorted({lock_key(name, k) for k in keys})
        if ordered:
            await session.execute(_ADVISORY, {"keys": ordered})
        return
    if table is None:
        from platform_core.auth.models import User

        table = User
    await _sqlite_write_lock(session, _table(table))


async def compare_and_set(
    session: AsyncSession,
    model: Any,
    row_id: Any,
    *,
    expected: str | Sequence[str],
    values: dict[str, Any],
    column: str = "status",
    label: str | None = None,
    conflict: bool = True,
) -> bool:
    """``UPDATE model SET values WHERE pk = row_id AND column IN expected``: the transition
    happens only from an expected state, atomically on both databases.

    True when this call made the change. Otherwise ``NotFound`` when the row is missing
    and ``Conflict`` naming the current state (``current_state`` in the problem), or just
    False with ``conflict=False`` (a job skipping rows that moved on). ``label`` names the
    row in messages (default: the table name and the id). An ORM object of the row held by
    the session is refreshed.
    """
    table = _table(model)
    pk = _pk(table)
    col = table.c[column]
    states = [expected] if isinstance(expected, str) else list(expected)
    stmt = update(table).where(pk == row_id, col.in_(states)).values(**values).returning(pk)
    changed = (await session.execute(stmt)).first() is not None
    if changed:
        await _refresh(session, model, row_id)
        return True
    if not conflict:
        return False
    what = label or f"{table.name} {row_id}"
    current = await session.scalar(select(col).where(pk == row_id))
    if current is None:
        raise NotFound(f"{what} not found")
    wanted = " or ".join(states)
    raise Conflict(f"{what} is {current}, not {wanted}", current_state=current)


async def _refresh(session: AsyncSession, model: Any, row_id: Any) -> None:
    """Reload the session's ORM object of the row, if it holds one."""
    if isinstance(model, Table):
        return
    key = session.sync_session.identity_key(model, row_id)
    obj = session.sync_session.identity_map.get(key)
    if obj is not None:
        await session.refresh(obj)


def _insert(session: AsyncSession) -> Any:
    return pg_insert if dialect_of(session) == "postgresql" else sqlite_insert


def insert_ignoring(
    session: AsyncSession, model: Any, *, index_elements: Sequence[Any] | None = None
) -> Any:
    """``INSERT ... ON CONFLICT [(index_elements)] DO NOTHING`` for the session's dialect.

    Add ``.values(...)`` and ``.returning(...)`` as usual: a row that conflicts with a
    committed one (or, on PostgreSQL, with one being inserted by another transaction, after
    waiting for it) is skipped, so ``RETURNING`` yields only the rows inserted.
    """
    stmt = _insert(session)(model)
    if index_elements is None:
        return stmt.on_conflict_do_nothing()
    return stmt.on_conflict_do_nothing(index_elements=list(index_elements))


async def upsert(
    session: AsyncSession,
    model: Any,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    update_columns: Sequence[str] | None = None,
    chunk: int = CHUNK,
) -> int:
    """Insert ``rows``; rows whose ``keys`` (a unique index) exist get ``update_columns``
    (default: every other column given) from the new row. ``chunk`` rows per statement;
    returns how many rows were given."""
    if not rows:
        return 0
    columns = list(update_columns or [c for c in rows[0] if c not in keys])
    insert = _insert(session)
    for i in range(0, len(rows), chunk):
        stmt = insert(model).values(list(rows[i : i + chunk]))
        if columns:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns}
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        await session.execute(stmt)
    return len(rows)
