"""One test per hook of ``platform_core.hookspecs`` (``test_hook_<name>``), through the real
platform: the installed example plugin and in-test plugin objects.

Also the failure contract shared by every hook: a raising hook isolates its plugin (and the
plugins requiring it) with a one-line reason shown by ``/api/core/plugins``, and an
installed but disabled plugin contributes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from platform_example.models import Note
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, Table, inspect, select, text
from typer import Typer
from typer.testing import CliRunner

from platform_core import (
    PUBLIC,
    EventHandler,
    HealthCheck,
    JobSpec,
    MetricsSource,
    Models,
    NotificationRule,
    Permission,
    PluginMeta,
    __version__,
    hookimpl,
)
from platform_core import hookspecs as core_hookspecs
from platform_core.manager import PluginState

PROBLEM = "application/problem+json"
HOOKS = sorted(n for n, o in vars(core_hookspecs).items() if hasattr(o, "platform_core_spec"))


class Dependent:
    """An in-test plugin requiring another one, to watch isolation cascade."""

    def __init__(self, requires: str) -> None:
        self.requires = requires

    @hookimpl
    def platform_plugin_meta(self) -> PluginMeta:
        return PluginMeta(requires=(self.requires,))


def raising(hook: str) -> Any:
    """An in-test plugin whose ``hook`` raises ``RuntimeError('boom in <hook>')``."""

    def impl(self: Any) -> Any:
        raise RuntimeError(f"boom in {hook}")

    return type(f"Raising_{hook}", (), {hook: hookimpl(impl)})()


async def _plugins_api(platform) -> dict[str, dict[str, Any]]:
    admin = await platform.client_for("admin")
    r = await admin.get("/api/core/plugins")
    assert r.status_code == 200, r.text
    return {p["name"]: p for p in r.json()}


def _example_paths(app) -> list[str]:
    return [p for p in app.openapi()["paths"] if p.startswith("/api/example")]


# -- the shared failure contract --------------------------------------------------------------


@pytest.mark.parametrize("hook", [h for h in HOOKS if h != "platform_shutdown"])
async def test_raising_hook_isolates_plugin_and_dependents_with_reason(platform_factory, hook):
    platform = await platform_factory(
        extra_plugins={"boom": raising(hook), "child": Dependent("boom")}
    )
    if hook == "platform_cli":  # called lazily, when the user runs the plugin's command
        platform.ctx.plugins.call("platform_cli", cli=Typer())
    reason = f"{hook}() raised RuntimeError: boom in {hook}"
    rec = platform.ctx.plugins.get("boom")
    assert (rec.state, rec.reason) == (PluginState.ISOLATED, reason)
    child = platform.ctx.plugins.get("child")
    assert child.state is PluginState.ISOLATED
    assert child.reason.endswith("boom, which is isolated")  # "requires"/"depends on" boom
    listed = await _plugins_api(platform)
    assert (listed["boom"]["state"], listed["boom"]["reason"]) == ("isolated", reason)
    assert listed["child"]["state"] == "isolated"
    assert "\n" not in reason


async def test_raising_hook_leaves_other_plugins_serving(platform_factory):
    platform = await platform_factory(
        enabled=["example"], extra_plugins={"boom": raising("platform_routes")}
    )
    assert platform.ctx.plugins.get("example").active
    r = await platform.client().get("/api/example/ping")
    assert r.status_code == 200


async def test_disabled_plugin_contributes_nothing(platform_factory):
    platform = await platform_factory(enabled=[])
    ctx = platform.ctx
    rec = ctx.plugins.get("example")
    assert (rec.state, rec.enabled) == (PluginState.DISABLED, False)
    assert rec.version == "1.0.0"
    assert _example_paths(platform.app) == []
    assert not [j for j in ctx.jobs if j.startswith("example.")]
    assert not [p for p, _ in ctx.event_handlers if p == "example"]
    assert not [p for p, _ in ctx.health_checks if p == "example"]
    assert not [s for s in ctx.permissions if s.startswith("example:")]
    assert not [t for t in ctx.state["migration_targets"] if t.plugin == "example"]
    assert not [r for r, _ in ctx.plugins.call("platform_cli", cli=Typer()) if r.name == "example"]
    assert (await platform.client().get("/api/example/ping")).status_code == 404
    async with ctx.db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert "example_notes" not in tables


async def test_disabling_plugin_leaves_its_table_and_data_untouched(platform_factory):
    first = await platform_factory(enabled=["example"])
    client = await first.client_for("member")
    r = await client.post("/api/example/notes", json={"title": "keep me"})
    assert r.status_code == 201
    url = first.ctx.db.url.render_as_string(hide_password=False)
    second = await platform_factory(enabled=[], database_url=url, schema=first.ctx.db.schema)
    assert _example_paths(second.app) == []
    async with second.ctx.db.session() as session:
        titles = (await session.execute(select(Note.title))).scalars().all()
        version = (
            await session.execute(text("SELECT version_num FROM alembic_version_example"))
        ).scalar_one()
    assert titles == ["keep me"]
    assert version == "example_0002"


# -- one test per hook --------------------------------------------------------------------------


class NeedsFutureCore:
    """Supports only a platform-core that does not exist yet."""

    @hookimpl
    def platform_plugin_meta(self) -> PluginMeta:
        return PluginMeta(core=">=99")


async def test_hook_platform_plugin_meta(platform_factory):
    platform = await platform_factory(
        enabled=["example"],
        extra_plugins={
            "future": NeedsFutureCore(),
            "child": Dependent("future"),
            "fan": Dependent("example>=1,<2"),
        },
    )
    plugins = platform.ctx.plugins
    assert plugins.get("example").meta.core == ">=0.1,<1"
    assert plugins.get("fan").active
    assert plugins.order.index("example") < plugins.order.index("fan")
    assert (
        plugins.get("future").reason == f"supports platform-core >=99, installed is {__version__}"
    )
    assert plugins.get("child").state is PluginState.ISOLATED
    assert plugins.get("child").reason.endswith("future, which is isolated")


class NeedsNewerExample:
    """Requires a version of the example plugin that is not installed."""

    @hookimpl
    def platform_plugin_meta(self) -> PluginMeta:
        return PluginMeta(requires=("example>=2",))


async def test_hook_platform_plugin_meta_incompatible_requirement_isolates(platform_factory):
    platform = await platform_factory(
        enabled=["example"], extra_plugins={"fan": NeedsNewerExample()}
    )
    assert platform.ctx.plugins.get("fan").reason == "requires example>=2, installed is 1.0.0"
    assert platform.ctx.plugins.get("example").active


class Tunable:
    """An in-test plugin with settings."""

    class Settings(BaseModel):
        level: int = 1

    @hookimpl
    def platform_settings(self) -> type[BaseModel]:
        return self.Settings


async def test_hook_platform_settings(platform_factory):
    platform = await platform_factory(
        enabled=["example"],
        extra_plugins={"tunable": Tunable(), "typo": Tunable()},
        settings={"example": {"greeting": "hello"}, "tunable": {"level": 3}, "typo": {"levle": 3}},
    )
    assert platform.ctx.plugin_settings("example").greeting == "hello"
    assert platform.ctx.plugin_settings("tunable").level == 3
    reason = platform.ctx.plugins.get("typo").reason
    assert reason.endswith("[plugins.typo] key 'levle': unknown setting")


class BadlyPrefixed:
    """Declares a table without its plugin's prefix."""

    @hookimpl
    def platform_models(self) -> Models:
        metadata = MetaData()
        Table("notes", metadata, Column("id", Integer, primary_key=True))
        return Models(metadata, Path(__file__).parent)


async def test_hook_platform_models(platform_factory):
    platform = await platform_factory(enabled=["example"], extra_plugins={"bad": BadlyPrefixed()})
    targets = {t.plugin: t for t in platform.ctx.state["migration_targets"]}
    assert targets["example"].version_table == "alembic_version_example"
    assert targets["example"].heads() == ("example_0002",)
    assert platform.ctx.plugins.get("bad").reason == "table 'notes' must be prefixed 'bad_'"
    assert "bad" not in targets
    async with platform.ctx.db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert {"example_notes", "alembic_version_example"} <= set(tables)


class NotARouter:
    """Returns something that is not a router."""

    @hookimpl
    def platform_routes(self) -> list[Any]:
        return ["/nope"]


async def test_hook_platform_routes(platform_factory):
    platform = await platform_factory(enabled=["example"], extra_plugins={"odd": NotARouter()})
    paths = platform.app.openapi()["paths"]
    assert {
        "/api/example/ping",
        "/api/example/notes",
        "/api/example/notes/{note_id}",
        "/api/example/stats",
    } <= set(paths)
    assert paths["/api/example/ping"]["get"]["security"] == []
    assert paths["/api/example/notes"]["post"]["x-scopes"] == ["example:write"]
    assert paths["/api/example/stats"]["get"]["x-scopes"] == ["example:admin"]
    assert platform.ctx.plugins.get("odd").reason == (
        "platform_routes() must return a list of APIRouter"
    )
    assert not [p for p in paths if p.startswith("/api/odd")]


class BadScope:
    """Declares a scope outside its own namespace."""

    @hookimpl
    def platform_permissions(self) -> list[Permission]:
        return [Permission("core:admin", "steal the core's scope", ("member",))]


async def test_hook_platform_permissions(platform_factory):
    platform = await platform_factory(enabled=["example"], extra_plugins={"thief": BadScope()})
    perms = platform.ctx.permissions
    assert {"example:read", "example:write", "example:admin"} <= set(perms)
    member = platform.ctx.role_scopes("member")
    assert {"example:read", "example:write"} <= member
    assert "example:admin" not in member
    assert "example:admin" in platform.ctx.role_scopes("admin")
    assert perms["core:admin"].roles == ("admin",)
    assert platform.ctx.plugins.get("thief").reason.startswith("invalid permission")


class BothSchedules:
    """A job with both ``every`` and ``cron``, which is invalid."""

    @hookimpl
    def platform_jobs(self) -> list[JobSpec]:
        async def tick() -> None:
            return None

        return [JobSpec("tick", tick, every=timedelta(minutes=1), cron="* * * * *")]


async def test_hook_platform_jobs(platform_factory):
    platform = await platform_factory(enabled=["example"], extra_plugins={"clock": BothSchedules()})
    job = platform.ctx.jobs["example.purge_expired"]
    assert (job.every, job.retries, job.timeout) == (timedelta(hours=1), 2, 300)
    assert await job.func() == 0
    assert platform.ctx.plugins.get("clock").reason.startswith("invalid job")
    assert not [j for j in platform.ctx.jobs if j.startswith("clock.")]


class Listener:
    """Subscribes to the example plugin's events with a wildcard."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def platform_event_handlers(self) -> list[EventHandler]:
        async def record(event: Any) -> None:
            self.seen.append(event.name)

        return [EventHandler("example.*", record, name="record")]


class WrongHandler:
    """Returns a bare function instead of an EventHandler."""

    @hookimpl
    def platform_event_handlers(self) -> list[Any]:
        return [print]


async def test_hook_platform_event_handlers(platform_factory):
    listener = Listener()
    platform = await platform_factory(
        enabled=["example"], extra_plugins={"ears": listener, "wrong": WrongHandler()}
    )
    handlers = {(p, h.pattern) for p, h in platform.ctx.event_handlers}
    assert {("example", "core.user.deleted"), ("ears", "example.*")} <= handlers
    client = await platform.client_for("member")
    assert (await client.post("/api/example/notes", json={"title": "heard"})).status_code == 201
    await platform.deliver_events()
    assert listener.seen == ["example.note.created"]
    assert platform.ctx.plugins.get("wrong").reason.startswith(
        "platform_event_handlers() must return EventHandler items"
    )
    assert "wrong" not in {p for p, _ in platform.ctx.event_handlers}


async def test_hook_platform_cli(platform_factory):
    platform = await platform_factory(enabled=["example"], migrate=False, start=False)
    root, group = Typer(), Typer()
    contributed = [r.name for r, _ in platform.ctx.plugins.call("platform_cli", cli=group)]
    assert "example" in contributed
    root.add_typer(group, name="example")
    result = CliRunner().invoke(root, ["example", "--help"])
    assert result.exit_code == 0
    assert "count" in result.output
    assert "Print how many notes are stored." in result.output


class Counting:
    """A plugin adding a gauge to ``/metrics``; ``BadMetrics`` returns something else."""

    @hookimpl
    def platform_metrics(self) -> list[MetricsSource]:
        async def collect() -> str:
            return "# TYPE counting_items gauge\ncounting_items 7.0\n"

        return [MetricsSource("items", collect)]


class BadMetrics:
    @hookimpl
    def platform_metrics(self) -> list[Any]:
        return ["counting_items 1.0"]


async def test_hook_platform_metrics(platform_factory):
    platform = await platform_factory(extra_plugins={"counting": Counting()})
    r = await platform.client().get("/metrics")
    assert r.status_code == 200
    assert "counting_items 7.0" in r.text and "platform_plugins" in r.text
    bad = await platform_factory(extra_plugins={"bad": BadMetrics()})
    assert bad.ctx.plugins.records["bad"].state.value == "isolated"
    assert "MetricsSource" in (bad.ctx.plugins.records["bad"].reason or "")


class Unhealthy:
    """A plugin whose readiness check always fails."""

    @hookimpl
    def platform_health(self) -> list[HealthCheck]:
        async def broken() -> None:
            raise ConnectionError("upstream unreachable")

        return [HealthCheck("upstream", broken)]


async def test_hook_platform_health(platform_factory):
    healthy = await platform_factory(enabled=["example"])
    r = await healthy.client().get("/readyz")
    assert r.status_code == 200
    assert {"name": "example.notes_table", "ok": True} in r.json()["checks"]
    sick = await platform_factory(enabled=["example"], extra_plugins={"sick": Unhealthy()})
    r = await sick.client().get("/readyz")
    assert r.status_code == 503
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert checks["sick.upstream"] == {
        "name": "sick.upstream",
        "ok": False,
        "error": "ConnectionError: upstream unreachable",
    }
    assert checks["example.notes_table"]["ok"] is True


class FailsToStart:
    """Has routes, but its startup raises."""

    @hookimpl
    def platform_routes(self) -> list[APIRouter]:
        router = APIRouter()

        @router.get("/hello", openapi_extra=PUBLIC)
        async def hello() -> dict[str, str]:
            return {"hello": "world"}

        return [router]

    @hookimpl
    async def platform_startup(self) -> None:
        raise ConnectionError("license server unreachable")


async def test_hook_platform_startup(platform_factory):
    platform = await platform_factory(
        enabled=["example"],
        extra_plugins={"fragile": FailsToStart(), "child": Dependent("fragile")},
    )
    assert platform.ctx.state["example"]["started_at"] is not None
    reason = "platform_startup() raised ConnectionError: license server unreachable"
    assert platform.ctx.plugins.get("fragile").reason == reason
    assert platform.ctx.plugins.get("child").state is PluginState.ISOLATED
    r = await platform.client().get("/api/fragile/hello")
    assert r.status_code == 503
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["detail"] == f"plugin 'fragile' is unavailable: {reason}"
    assert (await platform.client().get("/api/example/ping")).status_code == 200


async def test_hook_platform_startup_not_run_before_start(platform_factory):
    platform = await platform_factory(enabled=["example"], start=False)
    assert "example" not in platform.ctx.state


class Recorder:
    """Records its shutdown in a shared list."""

    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail

    @hookimpl
    def platform_shutdown(self) -> None:
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError("shutdown failed")


async def test_hook_platform_shutdown(platform_factory):
    log: list[str] = []
    platform = await platform_factory(
        enabled=["example"],
        extra_plugins={
            "first": Recorder(log, "first"),
            "second": Recorder(log, "second", fail=True),
        },
    )
    await platform.aclose()
    assert (
        platform.ctx.state["example"]["stopped_at"] >= platform.ctx.state["example"]["started_at"]
    )
    assert log == ["second", "first"]  # reverse order; a failure does not stop the others
    assert platform.ctx.plugins.get("second").active  # shutdown errors are logged, not isolating


class Moderator:
    """Requires the example plugin and implements its extension point."""

    @hookimpl
    def platform_plugin_meta(self) -> PluginMeta:
        return PluginMeta(requires=("example>=1",))

    @hookimpl
    def example_validate_note(self, body: str) -> str | None:
        return "no spam" if "spam" in body else None


async def test_hook_platform_add_hookspecs(platform_factory):
    platform = await platform_factory(enabled=["example"], extra_plugins={"mod": Moderator()})
    hook = platform.ctx.plugins.pm.hook.example_validate_note
    assert hook.spec is not None
    assert hook(title="t", body="spam", owner_id=1) == ["no spam"]
    client = await platform.client_for("member")
    r = await client.post("/api/example/notes", json={"title": "t", "body": "spam"})
    assert r.status_code == 422
    assert r.json()["detail"] == "note refused: no spam"


async def test_hook_platform_add_hookspecs_missing_provider_isolates_implementer(platform_factory):
    platform = await platform_factory(enabled=[], extra_plugins={"mod": Moderator()})
    assert platform.ctx.plugins.get("mod").reason == "requires example>=1, which is not enabled"


class Notifier:
    """Tells the author of every example note, and names a bad pattern on demand."""

    def __init__(self, pattern: str = "example.note.created") -> None:
        self.pattern = pattern

    @hookimpl
    def platform_notification_rules(self) -> list[NotificationRule]:
        async def author(event: Any) -> list[int]:
            return [event.payload["owner_id"]]

        return [NotificationRule(self.pattern, author, title="You wrote {title}")]


async def test_hook_platform_notification_rules(platform_factory):
    platform = await platform_factory(
        enabled=["example"], extra_plugins={"tell": Notifier(), "bad": Notifier("not a pattern")}
    )
    assert platform.ctx.plugins.get("bad").reason.startswith(
        "platform_notification_rules() must return NotificationRule items"
    )
    client = await platform.client_for("member")
    assert (await client.post("/api/example/notes", json={"title": "diary"})).status_code == 201
    await platform.deliver_events()
    inbox = (await client.get("/api/core/notifications")).json()
    assert [n["title"] for n in inbox["items"]] == ["You wrote diary"]
    assert inbox["items"][0]["kind"] == "example.note.created"
