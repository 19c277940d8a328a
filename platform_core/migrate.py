"""Per-plugin alembic migrations, run programmatically (no ``env.py`` needed).

Each plugin (the core included) has its own revisions directory and its own version
table ``alembic_version_<plugin>``, so removing one plugin never breaks another's
history. Upgrades run in dependency order, downgrades of one plugin at a time.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from alembic.config import Config as AlembicConfig
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, text

from platform_core.db import Database

log = logging.getLogger("platform_core.migrate")

LOCK_POLL = 0.2
"""Seconds between two tries to take the migration lock another process holds."""


@dataclass(frozen=True)
class MigrationTarget:
    """One plugin's migrations: its name, metadata and revisions directory."""

    plugin: str
    metadata: MetaData
    directory: Path

    @property
    def version_table(self) -> str:
        """The plugin's own alembic version table."""
        return f"alembic_version_{self.plugin}"

    def script(self) -> tuple[ScriptDirectory, AlembicConfig]:
        """The alembic script directory for this plugin."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(self.directory))
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option("version_locations", str(self.directory / "versions"))
        return ScriptDirectory.from_config(cfg), cfg

    def heads(self) -> tuple[str, ...]:
        """The head revisions in the plugin's migration scripts."""
        script, _ = self.script()
        return tuple(script.get_heads())


@dataclass(frozen=True)
class MigrationStatus:
    """Where one plugin's schema stands."""

    plugin: str
    current: tuple[str, ...]
    heads: tuple[str, ...]

    @property
    def pending(self) -> bool:
        """True when the database is not at the head revision(s)."""
        return set(self.current) != set(self.heads)


def _current(conn: Connection, target: MigrationTarget) -> tuple[str, ...]:
    ctx = MigrationContext.configure(conn, opts={"version_table": target.version_table})
    return tuple(ctx.get_current_heads())


def _run(conn: Connection, target: MigrationTarget, destination: str, downgrade: bool) -> None:
    script, cfg = target.script()

    def step(rev: Any, _context: Any) -> Any:
        if downgrade:
            return script._downgrade_revs(destination, rev)
        return script._upgrade_revs(destination, rev)

    with EnvironmentContext(cfg, script, fn=step, destination_rev=destination) as env:
        env.configure(
            connection=conn,
            target_metadata=target.metadata,
            version_table=target.version_table,
            render_as_batch=conn.dialect.name == "sqlite",
        )
        with env.begin_transaction():
            env.run_migrations()


async def _with_connection(db: Database, fn: Callable[[Connection], Any]) -> Any:
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            # SQLite's batch mode recreates tables; with foreign keys on, dropping the old
            # table would cascade-delete referencing rows. Switch them off (only possible
            # outside a transaction), then check integrity before switching back on.
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        result = await conn.run_sync(fn)
        await conn.commit()
        if db.is_sqlite:
            broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).fetchall()
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            if broken:
                raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
        return result


async def status(db: Database, targets: Sequence[MigrationTarget]) -> list[MigrationStatus]:
    """Current and head revisions of every target."""

    def read(conn: Connection) -> list[MigrationStatus]:
        return [MigrationStatus(t.plugin, _current(conn, t), t.heads()) for t in targets]

    result: list[MigrationStatus] = await _with_connection(db, read)
    return result


def lock_key(db: Database) -> int:
    """The PostgreSQL advisory lock key that serialises migrations of one schema."""
    name = f"platform_core.migrate:{db.url.database}:{db.schema or ''}"
    return zlib.crc32(name.encode()) - 2**31  # a signed 64-bit key, stable across processes


@asynccontextmanager
async def migration_lock(db: Database) -> AsyncIterator[None]:
    """Hold the database's migration lock (PostgreSQL: a session advisory lock; SQLite: none,
    its writers are serialised by the file lock).

    A second process waits here until the first one is done, then finds nothing to do.
    """
    if db.is_sqlite:
        yield
        return
    key = {"key": lock_key(db)}
    async with db.engine.connect() as conn:
        # Polled rather than waited for in one statement: a long upgrade elsewhere must not
        # run into the statement timeouts every pooled connection has.
        if not await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), key):
            log.info("waiting for the migration lock: another process is migrating")
            while not await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), key):
                await asyncio.sleep(LOCK_POLL)
        await conn.commit()
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            await conn.commit()


async def upgrade(
    db: Database, targets: Sequence[MigrationTarget], revision: str = "heads"
) -> list[str]:
    """Upgrade every target in the given (dependency) order; return the plugins upgraded.

    Runs under :func:`migration_lock`: processes started together never race, and those
    that waited return ``[]``.
    """
    done: list[str] = []
    async with migration_lock(db):
        pending = {s.plugin for s in await status(db, targets) if s.pending}
        for target in targets:
            if revision == "heads" and target.plugin not in pending:
                continue
            await _with_connection(
                db, partial(_run, target=target, destination=revision, downgrade=False)
            )
            done.append(target.plugin)
    return done


async def downgrade(db: Database, target: MigrationTarget, revision: str = "-1") -> None:
    """Downgrade one plugin's schema to ``revision`` (``-1``, a revision id or ``base``)."""
    async with migration_lock(db):
        await _with_connection(
            db, partial(_run, target=target, destination=revision, downgrade=True)
        )


def history(target: MigrationTarget) -> list[tuple[str, str | None, str]]:
    """``(revision, down_revision, message)`` from newest to oldest."""
    script, _ = target.script()
    rows = []
    for rev in script.walk_revisions():
        down = rev.down_revision
        rows.append(
            (
                rev.revision,
                down if isinstance(down, str) or down is None else ",".join(down),
                rev.doc or "",
            )
        )
    return rows


async def drop_version_table(db: Database, target: MigrationTarget) -> bool:
    """Drop the plugin's alembic version table (after a downgrade to base); True if it existed."""
    from sqlalchemy import inspect as sa_inspect

    def drop(conn: Connection) -> bool:
        if not sa_inspect(conn).has_table(target.version_table):
            return False
        conn.exec_driver_sql(f'DROP TABLE "{target.version_table}"')
        return True

    result: bool = await _with_connection(db, drop)
    return result


async def table_names(db: Database) -> list[str]:
    """Every table of the platform's database (its schema, when it has one), sorted."""
    from sqlalchemy import inspect as sa_inspect

    def read(conn: Connection) -> list[str]:
        return sorted(sa_inspect(conn).get_table_names())

    result: list[str] = await _with_connection(db, read)
    return result


def leftover_tables(tables: list[str], installed: set[str]) -> dict[str, list[str]]:
    """Tables no installed plugin owns, by the plugin that presumably left them.

    A plugin owns its version table ``alembic_version_<name>`` and the tables prefixed
    ``<name>_``; the core (``core``) counts as installed. A version table of a plugin that is
    not installed names that plugin; any other unowned table is put under the part of its
    name before the first ``_``.
    """
    owners = installed | {"core"}

    def owned(table: str) -> bool:
        if table.startswith("alembic_version_"):
            return table.removeprefix("alembic_version_") in owners
        return any(table.startswith(f"{name}_") for name in owners)

    gone = sorted(
        {t.removeprefix("alembic_version_") for t in tables if t.startswith("alembic_version_")}
        - owners,
        key=len,
        reverse=True,  # the longest name first: "shop_extra" before "shop"
    )
    found: dict[str, list[str]] = {}
    for table in tables:
        if owned(table):
            continue
        bare = table.removeprefix("alembic_version_")
        plugin = next((g for g in gone if bare == g or table.startswith(f"{g}_")), None)
        found.setdefault(plugin or table.split("_", 1)[0], []).append(table)
    return found


async def warn_leftover_tables(db: Database, owners: set[str]) -> dict[str, list[str]]:
    """Log (WARNING) the tables no installed plugin owns; return them (see ``leftover_tables``)."""
    import logging

    try:
        found = leftover_tables(await table_names(db), owners)
    except Exception:  # an unreachable database is reported elsewhere
        return {}
    for plugin, tables in found.items():
        logging.getLogger("platform_core.plugins").warning(
            "tables left behind by plugin %s, which is not installed: %s "
            "(reinstall it and run `platformctl plugins remove %s --drop-data`, or drop them)",
            plugin,
            ", ".join(tables),
            plugin,
            extra={"plugin": plugin},
        )
    return found
