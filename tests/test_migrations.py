"""Per-plugin migrations: pending detection, upgrade, downgrade and upgrade again."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import inspect, text

from platform_core.app import boot
from platform_core.config import load_config
from platform_core.db import Database
from platform_core.migrate import downgrade, history, migration_lock, status, upgrade
from platform_core.testing import fresh_database


async def _tables(db) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _columns(db, table) -> set[str]:
    async with db.engine.connect() as conn:
        cols = await conn.run_sync(lambda c: inspect(c).get_columns(table))
    return {c["name"] for c in cols}


def _target(platform, name):
    return next(t for t in platform.ctx.state["migration_targets"] if t.plugin == name)


async def test_fresh_database_has_pending_migrations_per_plugin(platform_factory):
    platform = await platform_factory(enabled=["example"], migrate=False, start=False)
    targets = platform.ctx.state["migration_targets"]
    assert [t.plugin for t in targets] == ["core", "example"]
    assert all(s.pending and s.current == () for s in await status(platform.ctx.db, targets))
    assert await upgrade(platform.ctx.db, targets) == ["core", "example"]
    assert not any(s.pending for s in await status(platform.ctx.db, targets))
    assert await upgrade(platform.ctx.db, targets) == []  # idempotent


async def test_each_plugin_has_its_own_version_table(platform_factory):
    platform = await platform_factory(enabled=["example"])
    tables = await _tables(platform.ctx.db)
    assert {"alembic_version_core", "alembic_version_example"} <= tables
    assert "alembic_version" not in tables


async def test_core_round_trip_keeps_rows(platform_factory):
    platform = await platform_factory()
    db = platform.ctx.db
    user = await platform.user("member", "survivor")
    token = await platform.token(user=user)
    core = _target(platform, "core")
    await downgrade(db, core, "core_0001")
    assert "last_login_at" not in await _columns(db, "core_users")
    assert (await status(db, [core]))[0].current == ("core_0001",)
    await upgrade(db, [core])
    assert "last_login_at" in await _columns(db, "core_users")
    async with db.engine.connect() as conn:
        names = (await conn.execute(text("SELECT username FROM core_users"))).scalars().all()
        tokens = (await conn.execute(text("SELECT count(*) FROM core_api_tokens"))).scalar_one()
    assert "survivor" in names
    assert tokens == 1
    client = platform.client(token)
    assert (await client.get("/api/core/me")).status_code == 200


async def test_downgrading_one_plugin_leaves_the_others_alone(platform_factory):
    platform = await platform_factory(enabled=["example"])
    db = platform.ctx.db
    await platform.user("member", "stays")
    await downgrade(db, _target(platform, "example"), "base")
    tables = await _tables(db)
    assert not any(t.startswith("example_") for t in tables)
    assert "core_users" in tables
    statuses = {s.plugin: s for s in await status(db, platform.ctx.state["migration_targets"])}
    assert not statuses["core"].pending and statuses["example"].pending
    await upgrade(db, platform.ctx.state["migration_targets"])
    assert "example_notes" in await _tables(db)


async def test_history_lists_revisions_newest_first(platform_factory):
    platform = await platform_factory(migrate=False, start=False)
    revs = [r[0] for r in history(_target(platform, "core"))]
    assert revs[-2:] == ["core_0002", "core_0001"]


async def test_disabled_plugin_tables_and_rows_are_untouched(platform_factory, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first = await platform_factory(enabled=["example"], database_url=url)
    note = await (await first.client_for("member")).post(
        "/api/example/notes", json={"title": "keep me"}
    )
    assert note.status_code == 201, note.text
    await first.aclose()
    second = await platform_factory(enabled=[], database_url=url)
    assert [t.plugin for t in second.ctx.state["migration_targets"]] == ["core"]
    assert "/api/example/notes" not in second.app.openapi()["paths"]
    async with second.ctx.db.engine.connect() as conn:
        titles = (await conn.execute(text("SELECT title FROM example_notes"))).scalars().all()
        version = (
            await conn.execute(text("SELECT version_num FROM alembic_version_example"))
        ).scalar_one()
    assert titles == ["keep me"]
    assert version.startswith("example_")


async def test_example_plugin_round_trip_keeps_rows(platform_factory):
    platform = await platform_factory(enabled=["example"])
    db = platform.ctx.db
    client = await platform.client_for("member")
    note = (await client.post("/api/example/notes", json={"title": "survives"})).json()
    await client.patch(f"/api/example/notes/{note['id']}", json={"pinned": True})
    example = _target(platform, "example")
    await downgrade(db, example, "-1")
    assert "pinned" not in await _columns(db, "example_notes")
    await upgrade(db, [example])
    assert (await status(db, [example]))[0].current == ("example_0002",)
    again = await client.get(f"/api/example/notes/{note['id']}")
    assert again.status_code == 200
    assert again.json()["title"] == "survives"
    assert again.json()["pinned"] is False  # the column came back with its default


async def test_two_serve_migrate_processes_at_once_never_race(tmp_path):
    """PostgreSQL: both processes find migrations pending and wait on the migration lock
    (held here until both say they wait); one applies them, the other finds nothing to do;
    both serve."""
    async with fresh_database("postgresql", tmp_path) as url:
        config = tmp_path / "plugins.toml"
        config.write_text(
            f'[core]\ndatabase_url = "{url}"\nsecret_key = "{"k" * 40}"\nlog_level = "INFO"\n'
            'log_format = "text"\n[plugins]\nenabled = ["inventory"]\n'
        )
        db = Database(url)
        procs = []
        try:
            async with migration_lock(db):
                for i in range(2):
                    procs.append(_serve_migrate(config, tmp_path / f"serve{i}.log"))
                await _until_logged(procs, "waiting for the migration lock")
            await _until_healthy(procs)
            current = await status(db, _targets_for(config))
            assert not [s.plugin for s in current if s.pending]
        finally:
            for proc, _, _ in procs:
                _stop(proc)
            await db.dispose()
    logs = [log.read_text() for _, _, log in procs]
    assert sum("migrated: core, inventory" in log for log in logs) == 1, logs
    assert sum("nothing to migrate" in log for log in logs) == 1, logs


def _serve_migrate(config, log):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    platformctl = str(Path(sys.executable).parent / "platformctl")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [platformctl, "serve", "--migrate", "--port", str(port)],
            env={**os.environ, "PLATFORM_CONFIG": str(config)},
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    return proc, f"http://127.0.0.1:{port}", log


async def _until_logged(procs, text, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not all(log.exists() and text in log.read_text() for _, _, log in procs):
        assert all(p.poll() is None for p, _, _ in procs), "a migrating process exited"
        assert time.monotonic() < deadline, f"the processes never logged {text!r}"
        await asyncio.sleep(0.1)


async def _until_healthy(procs, timeout=30.0):
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        for _, base, _ in procs:
            while True:
                try:
                    if (await client.get(base + "/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert all(p.poll() is None for p, _, _ in procs), "a migrating process exited"
                assert time.monotonic() < deadline, "a server never answered"
                await asyncio.sleep(0.1)


def _targets_for(config):
    return boot(load_config(config)).migration_targets


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
