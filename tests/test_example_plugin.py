"""The example third-party plugin (tests/example_plugin), installed as a real wheel."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import platform_example
import pytest
from platform_example.models import Note
from sqlalchemy import inspect, select, text, update
from typer import Typer
from typer.testing import CliRunner

from platform_core import hookimpl, utcnow
from platform_core.app import boot
from platform_core.manager import PluginState
from platform_core.migrate import downgrade, status

PROBLEM = "application/problem+json"


@pytest.fixture
def platform_plugins() -> list[str]:
    """The ``platform`` fixture enables the example plugin."""
    return ["example"]


async def _create(client, title="groceries", body="milk"):
    return await client.post("/api/example/notes", json={"title": title, "body": body})


def test_package_is_installed_from_a_wheel_with_its_migrations():
    package = Path(platform_example.__file__).resolve().parent
    assert "site-packages" in package.parts
    assert (package / "migrations" / "versions" / "0001_example_notes.py").is_file()


async def test_plugin_is_active_with_distribution_metadata(platform):
    rec = platform.ctx.plugins.get("example")
    assert rec.state is PluginState.ACTIVE
    assert rec.distribution == "platform-example-notes"
    assert rec.version == "1.0.0"
    assert rec.meta.description == "Personal notes: the example plugin"


async def test_ping_answers_anonymous_caller(anon_client):
    r = await anon_client.get("/api/example/ping")
    assert r.status_code == 200
    assert r.json() == {"message": "pong"}


async def test_ping_answers_configured_greeting(platform_factory):
    platform = await platform_factory(enabled=["example"], settings={"example": {"greeting": "hi"}})
    r = await platform.client().get("/api/example/ping")
    assert r.json() == {"message": "hi"}


async def test_notes_answer_401_problem_when_anonymous(anon_client):
    r = await anon_client.get("/api/example/notes")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith(PROBLEM)


async def test_note_crud_round_trip_for_member(member_client):
    created = await _create(member_client)
    assert created.status_code == 201, created.text
    note = created.json()
    assert (note["title"], note["body"]) == ("groceries", "milk")
    r = await member_client.get(f"/api/example/notes/{note['id']}")
    assert r.json() == note
    r = await member_client.patch(f"/api/example/notes/{note['id']}", json={"body": "oat milk"})
    assert r.status_code == 200
    assert (r.json()["title"], r.json()["body"]) == ("groceries", "oat milk")
    assert [n["id"] for n in (await member_client.get("/api/example/notes")).json()] == [note["id"]]
    r = await member_client.delete(f"/api/example/notes/{note['id']}")
    assert r.status_code == 204
    r = await member_client.get(f"/api/example/notes/{note['id']}")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)


async def test_note_of_another_user_is_not_found(platform, member_client):
    note = (await _create(member_client)).json()
    other = await platform.client_for("member")
    assert (await other.get(f"/api/example/notes/{note['id']}")).status_code == 404
    assert (await other.delete(f"/api/example/notes/{note['id']}")).status_code == 404
    assert (await other.get("/api/example/notes")).json() == []


async def test_duplicate_title_answers_409_problem(member_client):
    assert (await _create(member_client)).status_code == 201
    r = await _create(member_client)
    assert r.status_code == 409
    assert r.json()["detail"] == "you already have a note titled 'groceries'"


async def test_same_title_is_allowed_for_different_users(platform, member_client):
    other = await platform.client_for("member")
    assert (await _create(member_client)).status_code == 201
    assert (await _create(other)).status_code == 201


async def test_note_limit_answers_409_past_max_notes_per_user(platform_factory):
    platform = await platform_factory(
        enabled=["example"], settings={"example": {"max_notes_per_user": 1}}
    )
    client = await platform.client_for("member")
    assert (await _create(client, "one")).status_code == 201
    r = await _create(client, "two")
    assert r.status_code == 409
    assert "at most 1 notes" in r.json()["detail"]


async def test_invalid_note_answers_422_with_field_errors(member_client):
    r = await member_client.post("/api/example/notes", json={"title": ""})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "title"


async def test_stats_is_forbidden_to_member_and_allowed_to_admin(member_client, admin_client):
    await _create(member_client)
    r = await member_client.get("/api/example/stats")
    assert r.status_code == 403
    assert "example:admin" in r.json()["detail"]
    r = await admin_client.get("/api/example/stats")
    assert r.json() == {"notes": 1, "owners": 1}


async def test_write_scope_is_needed_to_create_notes(platform):
    client = await platform.client_for("member", scopes=["example:read"])
    assert (await client.get("/api/example/notes")).status_code == 200
    r = await _create(client)
    assert r.status_code == 403
    assert "example:write" in r.json()["detail"]


async def test_invalid_settings_isolate_plugin_naming_file_section_key(platform_factory):
    platform = await platform_factory(
        enabled=["example"], settings={"example": {"max_notes_per_user": 0}}
    )
    rec = platform.ctx.plugins.get("example")
    assert rec.state is PluginState.ISOLATED
    assert "[plugins.example] key 'max_notes_per_user'" in rec.reason
    assert "plugins.toml" in rec.reason


class RefuseShouting:
    """An in-test plugin implementing the example plugin's extension point."""

    @hookimpl
    def example_validate_note(self, title: str) -> str | None:
        return "titles may not be all capitals" if title.isupper() else None


async def test_validator_plugin_refuses_note_with_422(platform_factory):
    platform = await platform_factory(enabled=["example"], extra_plugins={"calm": RefuseShouting()})
    client = await platform.client_for("member")
    r = await _create(client, "SHOUT")
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "note", "message": "titles may not be all capitals"}]
    assert (await _create(client, "quiet")).status_code == 201


async def test_validator_plugin_also_checks_updates(platform_factory):
    platform = await platform_factory(enabled=["example"], extra_plugins={"calm": RefuseShouting()})
    client = await platform.client_for("member")
    note = (await _create(client, "quiet")).json()
    r = await client.patch(f"/api/example/notes/{note['id']}", json={"title": "LOUD"})
    assert r.status_code == 422


async def test_purge_job_deletes_notes_past_retention(platform_factory):
    platform = await platform_factory(
        enabled=["example"], settings={"example": {"retention_days": 7}}
    )
    client = await platform.client_for("member")
    old = (await _create(client, "old")).json()
    new = (await _create(client, "new")).json()
    async with platform.ctx.db.session() as session:
        await session.execute(
            update(Note).where(Note.id == old["id"]).values(updated_at=utcnow() - timedelta(days=8))
        )
    job = platform.ctx.jobs["example.purge_expired"]
    assert job.every == timedelta(hours=1)
    assert await job.func() == 1
    assert [n["id"] for n in (await client.get("/api/example/notes")).json()] == [new["id"]]


async def test_purge_job_keeps_everything_without_retention(platform, member_client):
    (await _create(member_client)).json()
    assert await platform.ctx.jobs["example.purge_expired"].func() == 0
    assert len((await member_client.get("/api/example/notes")).json()) == 1


async def test_user_deleted_handler_removes_the_users_notes_idempotently(platform):
    user = await platform.user("member")
    other = await platform.user("member")
    for owner in (user, other):
        async with platform.ctx.db.session() as session:
            session.add(Note(owner_id=owner.id, title="t", body=""))
    [(_, handler)] = [(p, h) for p, h in platform.ctx.event_handlers if p == "example"]
    assert handler.pattern == "core.user.deleted"
    event = SimpleNamespace(name="core.user.deleted", id="evt-1", payload={"user_id": user.id})
    assert await handler.func(event) == 1
    assert await handler.func(event) == 0
    async with platform.ctx.db.session() as session:
        owners = (await session.execute(select(Note.owner_id))).scalars().all()
    assert owners == [other.id]


async def test_cli_count_prints_number_of_notes(platform_factory, tmp_path):
    # A SQLite file of its own: the command boots its own platform, without the test schema.
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    platform = await platform_factory(enabled=["example"], database_url=url)
    member_client = await platform.client_for("member")
    await _create(member_client, "a")
    await _create(member_client, "b")
    root, group = Typer(), Typer()
    platform.ctx.plugins.call("platform_cli", cli=group)
    root.add_typer(group, name="example")  # as platformctl mounts it
    booted = boot(platform.ctx.config, database_url=url)  # what platformctl hands commands
    result = await asyncio.to_thread(CliRunner().invoke, root, ["example", "count"], obj=booted)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2"


async def test_migration_records_revision_in_own_version_table(platform):
    [target] = [t for t in platform.ctx.state["migration_targets"] if t.plugin == "example"]
    [st] = await status(platform.ctx.db, [target])
    assert st.current == ("example_0002",) and not st.pending
    async with platform.ctx.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT version_num FROM alembic_version_example"))).all()
    assert rows == [("example_0002",)]


async def test_migration_downgrade_drops_only_the_plugins_table(platform):
    [target] = [t for t in platform.ctx.state["migration_targets"] if t.plugin == "example"]
    await downgrade(platform.ctx.db, target, "base")
    async with platform.ctx.db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert "example_notes" not in tables
    assert "core_users" in tables


async def test_readyz_fails_until_migrations_have_run(platform_factory):
    platform = await platform_factory(enabled=["example"], migrate=False)
    r = await platform.client().get("/readyz")
    assert r.status_code == 503
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert checks["example.notes_table"]["ok"] is False


async def test_readyz_passes_after_migrations(anon_client):
    r = await anon_client.get("/readyz")
    assert r.status_code == 200
    assert {"name": "example.notes_table", "ok": True} in r.json()["checks"]
