"""Plugin discovery, dependency resolution, isolation and strict mode."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from platform_core import PluginMeta, hookimpl
from platform_core.app import internal_plugins
from platform_core.config import Config, CoreSettings
from platform_core.errors import StrictModeError
from platform_core.manager import PlatformPlugins, PluginState


class Plugin:
    """An in-test plugin: version, requirements and optional failing hooks."""

    def __init__(
        self, version: str = "1.0", requires: tuple[str, ...] = (), core: str = "", fail: str = ""
    ) -> None:
        self.__version__ = version
        self.requires = requires
        self.core = core
        self.fail = fail

    @hookimpl
    def platform_plugin_meta(self) -> PluginMeta:
        if self.fail == "meta":
            raise RuntimeError("meta exploded")
        return PluginMeta(requires=self.requires, core=self.core)

    @hookimpl
    def platform_permissions(self):
        if self.fail == "permissions":
            raise ValueError("bad permissions")
        return []


def _config(tmp_path: Path, enabled=(), tables=None, strict=False) -> Config:
    core = CoreSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", strict=strict, secret_key="k" * 32
    )
    return Config(
        path=tmp_path / "plugins.toml", core=core, enabled=list(enabled), plugin_tables=tables or {}
    )


def _load(tmp_path, extra, installed=None, **cfg) -> PlatformPlugins:
    return PlatformPlugins(
        _config(tmp_path, **cfg),
        internal=internal_plugins(),
        extra=extra,
        installed=installed or {},
    ).load()


def test_load_order_follows_requires(tmp_path):
    plugins = _load(
        tmp_path, {"c": Plugin(requires=("b>=1",)), "a": Plugin(), "b": Plugin(requires=("a",))}
    )
    assert plugins.order == ["core", "a", "b", "c"]
    assert all(plugins.get(n).active for n in "abc")


def test_missing_dependency_isolates_plugin_and_dependents(tmp_path):
    plugins = _load(tmp_path, {"b": Plugin(requires=("ghost",)), "c": Plugin(requires=("b",))})
    assert plugins.get("b").state is PluginState.ISOLATED
    assert plugins.get("b").reason == "requires ghost, which is not installed"
    assert plugins.get("c").state is PluginState.ISOLATED
    assert plugins.get("c").reason == "depends on b, which is isolated"


def test_incompatible_dependency_version_names_both_versions(tmp_path):
    plugins = _load(tmp_path, {"a": Plugin(version="1.5"), "b": Plugin(requires=("a>=2",))})
    assert plugins.get("a").active
    assert plugins.get("b").reason == "requires a>=2, installed is 1.5"


def test_dependency_cycle_isolates_every_member(tmp_path):
    plugins = _load(
        tmp_path, {"a": Plugin(requires=("b",)), "b": Plugin(requires=("a",)), "c": Plugin()}
    )
    for name in "ab":
        assert plugins.get(name).state is PluginState.ISOLATED
        assert plugins.get(name).reason.startswith("dependency cycle: ")
    assert plugins.get("c").active


def test_unsupported_core_version_isolates(tmp_path):
    plugins = _load(tmp_path, {"a": Plugin(core=">=99")})
    assert plugins.get("a").reason.startswith("supports platform-core >=99, installed is ")


def test_invalid_requirement_string_isolates(tmp_path):
    plugins = _load(tmp_path, {"a": Plugin(requires=("not a == requirement!",))})
    assert plugins.get("a").reason.startswith("invalid version constraint")


def test_exception_in_hook_isolates_plugin_with_one_line_reason(tmp_path):
    plugins = _load(tmp_path, {"a": Plugin(fail="meta"), "b": Plugin()})
    assert plugins.get("a").reason == "platform_plugin_meta() raised RuntimeError: meta exploded"
    assert "\n" not in plugins.get("a").reason
    assert plugins.get("b").active
    assert plugins.pm.get_plugin("a") is None  # its hooks are no longer called


def test_import_error_isolates_installed_plugin(tmp_path):
    ep = EntryPoint("broken", "platform_no_such_module_xyz.plugin", "platform_core.plugins")
    plugins = _load(tmp_path, {}, installed={"broken": ep}, enabled=["broken"])
    rec = plugins.get("broken")
    assert rec.state is PluginState.ISOLATED
    assert rec.reason.startswith("import failed: ModuleNotFoundError")


def test_installed_but_disabled_plugin_is_not_imported(tmp_path):
    ep = EntryPoint("broken", "platform_no_such_module_xyz.plugin", "platform_core.plugins")
    plugins = _load(tmp_path, {}, installed={"broken": ep})
    assert plugins.get("broken").state is PluginState.DISABLED
    assert plugins.get("broken").reason == ""


def test_enabled_but_not_installed_is_missing(tmp_path):
    plugins = _load(tmp_path, {}, enabled=["nowhere"])
    assert plugins.get("nowhere").state is PluginState.MISSING
    assert "not installed" in plugins.get("nowhere").reason


def test_strict_mode_refuses_to_start(tmp_path):
    with pytest.raises(StrictModeError) as exc:
        _load(tmp_path, {"b": Plugin(requires=("ghost",))}, strict=True)
    assert "b: requires ghost, which is not installed" in str(exc.value)


def test_reserved_plugin_name_is_refused(tmp_path):
    ep = EntryPoint("core", "platform_core.builtins.core_plugin", "platform_core.plugins")
    plugins = _load(tmp_path, {}, installed={"core": ep}, enabled=["core"])
    assert plugins.get("core").internal  # the real core stays; the impostor was refused
    assert plugins.get("core").active
    assert plugins.problems == [
        "plugin 'core' from platform_core.builtins.core_plugin ignored: reserved name"
    ]


class SettingsModel(BaseModel):
    """Settings of the settings-taking plugin."""

    limit: int = 10


class WithSettings(Plugin):
    @hookimpl
    def platform_settings(self):
        return SettingsModel


def test_settings_validated_into_model(tmp_path):
    plugins = _load(tmp_path, {"s": WithSettings()}, tables={"s": {"limit": 3}})
    assert plugins.get("s").settings == SettingsModel(limit=3)


def test_invalid_setting_names_file_section_and_key(tmp_path):
    plugins = _load(tmp_path, {"s": WithSettings()}, tables={"s": {"limit": "many"}})
    reason = plugins.get("s").reason
    assert reason.startswith(
        f"invalid settings: {tmp_path / 'plugins.toml'} [plugins.s] key 'limit'"
    )


def test_unknown_setting_key_is_refused(tmp_path):
    plugins = _load(tmp_path, {"s": WithSettings()}, tables={"s": {"limmit": 3}})
    assert "key 'limmit': unknown setting" in plugins.get("s").reason


def test_settings_for_plugin_without_model_are_refused(tmp_path):
    plugins = _load(tmp_path, {"a": Plugin()}, tables={"a": {"x": 1}})
    assert "the plugin takes no settings" in plugins.get("a").reason


class Routed(Plugin):
    def __init__(self, path: str = "/things", **kw):
        super().__init__(**kw)
        self.path = path

    @hookimpl
    def platform_routes(self):
        router = APIRouter()

        @router.get(self.path)
        async def things() -> list[str]:
            return ["a"]

        return [router]


async def test_routes_mount_under_plugin_prefix_with_tag(platform_factory):
    platform = await platform_factory(extra_plugins={"things": Routed()})
    schema = platform.app.openapi()
    assert "/api/things/things" in schema["paths"]
    assert schema["paths"]["/api/things/things"]["get"]["tags"] == ["things"]
    client = await platform.client_for("member")
    assert (await client.get("/api/things/things")).json() == ["a"]


async def test_plugin_cannot_take_core_prefix(platform_factory):
    platform = await platform_factory(extra_plugins={"sneaky": Routed(path="/../../core/me")})
    paths = platform.app.openapi()["paths"]
    assert all(
        p == "/healthz" or p.startswith(("/api/core/", "/api/sneaky/", "/readyz", "/metrics"))
        for p in paths
    )


async def test_failing_routes_hook_isolates_only_that_plugin(platform_factory):
    class Bad(Plugin):
        @hookimpl
        def platform_routes(self):
            raise RuntimeError("no routes today")

    platform = await platform_factory(extra_plugins={"bad": Bad(), "good": Routed()})
    assert (
        platform.ctx.plugins.get("bad").reason
        == "platform_routes() raised RuntimeError: no routes today"
    )
    admin = await platform.client_for("admin")
    listing = {p["name"]: p for p in (await admin.get("/api/core/plugins")).json()}
    assert listing["bad"]["state"] == "isolated"
    assert listing["bad"]["reason"].startswith("platform_routes() raised")
    assert listing["good"]["state"] == "active"
    assert (await admin.get("/api/good/things")).status_code == 200


async def test_strict_mode_refuses_to_start_when_a_startup_hook_fails(platform_factory):
    class FailsAtStartup(Plugin):
        @hookimpl
        def platform_startup(self):
            raise RuntimeError("cannot reach upstream")

    with pytest.raises(StrictModeError, match="platform_startup\\(\\) raised RuntimeError"):
        await platform_factory(extra_plugins={"f": FailsAtStartup()}, core={"strict": True})


async def test_strict_mode_refuses_to_build_app_when_routes_hook_fails(platform_factory):
    class Bad(Plugin):
        @hookimpl
        def platform_routes(self):
            raise RuntimeError("no routes")

    with pytest.raises(StrictModeError, match="bad: platform_routes"):
        await platform_factory(extra_plugins={"bad": Bad()}, core={"strict": True})
