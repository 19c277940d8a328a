"""Per-plugin alembic migrations, run programmatically (no ``env.py`` needed).

Each plugin (the core included) has its own revisions directory and its own version
table ``alembic_version_<plugin>``, so removing one plugin never breaks another's
history. Upgrades run in dependency order, downgrades of one plugin at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from alembic.config import Config as AlembicConfig
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData

from platform_core.db import Database


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


async def upgrade(
    db: Database, targets: Sequence[MigrationTarget], revision: str = "heads"
) -> list[str]:
    """Upgrade every target in the given (dependency) order; return the plugins upgraded."""
    done: list[str] = []
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
    await _with_connection(db, partial(_run, target=target, destination=revision, downgrade=True))


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
