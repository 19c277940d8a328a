"""The one way to call a hook (``platform_core.extension``): pluggy's semantics, isolation."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import pluggy
import pytest

from platform_core import PluginMeta, hookimpl
from platform_core.app import internal_plugins
from platform_core.config import Config, CoreSettings
from platform_core.extension import ImplResult, Veto, acall_hook, call_hook
from platform_core.manager import PlatformPlugins, PluginState

hookspec = pluggy.HookspecMarker("platform_core")

# An extension point module, as a provider plugin would ship it.
specs = types.ModuleType("platform_test_extension_specs")


@hookspec
def ext_collect(seen: list[str]) -> list[str]:  # type: ignore[empty-body]
    """Return names; every implementation answers."""


@hookspec(firstresult=True)
def ext_first(seen: list[str]) -> str | None:  # type: ignore[empty-body]
    """Return a name; the first non-None answer wins."""


@hookspec
def ext_veto(item: str) -> str | None:  # type: ignore[empty-body]
    """Return a reason to refuse ``item``."""


for _f in (ext_collect, ext_first, ext_veto):
    setattr(specs, _f.__name__, _f)
sys.modules[specs.__name__] = specs


class Provider:
    """Declares the extension points."""

    @hookimpl
    def platform_add_hookspecs(self, pm: pluggy.PluginManager) -> None:
        pm.add_hookspecs(specs)


class Impl:
    """An implementation of every hook, recording the call order in ``seen``."""

    def __init__(self, name: str, *, requires: tuple[str, ...] = ("provider",)) -> None:
        self.name = name
        self.requires = requires

    @hookimpl
    def platform_plugin_meta(self) -> PluginMeta:
        return PluginMeta(requires=self.requires)

    @hookimpl
    def ext_collect(self, seen: list[str]) -> list[str]:
        seen.append(self.name)
        return [self.name]

    @hookimpl
    def ext_first(self, seen: list[str]) -> str | None:
        seen.append(self.name)
        return self.name

    @hookimpl
    async def ext_veto(self, item: str) -> str | None:
        return f"{self.name} refuses {item}" if item == "no" else None


class First(Impl):
    """Like :class:`Impl`, but asks pluggy to be called first."""

    @hookimpl(tryfirst=True)
    def ext_collect(self, seen: list[str]) -> list[str]:
        seen.append(self.name)
        return [self.name]

    @hookimpl(tryfirst=True)
    def ext_first(self, seen: list[str]) -> str | None:
        seen.append(self.name)
        return self.name


class Raising(Impl):
    """Every extension hook raises."""

    @hookimpl
    def ext_collect(self, seen: list[str]) -> list[str]:
        raise RuntimeError(f"{self.name} collect exploded")

    @hookimpl(tryfirst=True)
    def ext_first(self, seen: list[str]) -> str | None:
        raise RuntimeError(f"{self.name} first exploded")

    @hookimpl
    async def ext_veto(self, item: str) -> str | None:
        raise RuntimeError("database gone")


class Wrapper(Impl):
    """A new-style wrapper around ``ext_collect`` that appends a value."""

    @hookimpl(wrapper=True)
    def ext_collect(self, seen: list[str]):  # type: ignore[override]
        result = yield
        return [*result, ["wrapped"]]


def _load(tmp_path: Path, extra: dict[str, object]) -> PlatformPlugins:
    core = CoreSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", secret_key="k" * 32)
    config = Config(path=tmp_path / "plugins.toml", core=core, enabled=[])
    return PlatformPlugins(config, internal=internal_plugins(), extra=extra, installed={}).load()


def test_plugin_hook_is_called_in_load_order_with_each_value_named(tmp_path):
    # b requires a: a is called first although b was registered first by name.
    plugins = _load(
        tmp_path,
        {"provider": Provider(), "b": Impl("b", requires=("provider", "a")), "a": Impl("a")},
    )
    seen: list[str] = []
    assert plugins.call_extension("ext_collect", seen=seen) == [
        ImplResult("a", ["a"]),
        ImplResult("b", ["b"]),
    ]
    assert seen == ["a", "b"]


def test_tryfirst_moves_a_plugin_hook_implementation_first(tmp_path):
    plugins = _load(
        tmp_path,
        {"provider": Provider(), "a": Impl("a"), "z": First("z", requires=("provider", "a"))},
    )
    seen: list[str] = []
    results = plugins.call_extension("ext_collect", seen=seen)
    assert [r.plugin for r in results] == ["z", "a"] and seen == ["z", "a"]


def test_firstresult_stops_at_the_first_answer(tmp_path):
    plugins = _load(tmp_path, {"provider": Provider(), "a": Impl("a"), "z": First("z")})
    seen: list[str] = []
    assert plugins.call_extension("ext_first", seen=seen) == [ImplResult("z", "z")]
    assert seen == ["z"]  # a was never called


def test_raising_implementation_is_skipped_and_logged_with_its_plugin(tmp_path, caplog):
    plugins = _load(tmp_path, {"provider": Provider(), "a": Impl("a"), "bad": Raising("bad")})
    seen: list[str] = []
    with caplog.at_level(logging.WARNING, logger="platform_core.extension"):
        results = plugins.call_extension("ext_collect", seen=seen)
        first = plugins.call_extension("ext_first", seen=seen)
    assert results == [ImplResult("a", ["a"])]
    assert first == [ImplResult("a", "a")]  # the raising tryfirst one is passed over
    messages = [r.getMessage() for r in caplog.records]
    assert any("ext_collect() raised RuntimeError: bad collect exploded" in m for m in messages)
    assert all("'bad'" in m for m in messages)
    assert {getattr(r, "plugin", None) for r in caplog.records} == {"bad"}
    assert plugins.get("bad").state is PluginState.ACTIVE  # an extension point never isolates


def test_wrappers_wrap_the_call(tmp_path):
    plugins = _load(tmp_path, {"provider": Provider(), "a": Impl("a"), "w": Wrapper("w")})
    results = plugins.call_extension("ext_collect", seen=[])
    assert results == [ImplResult("a", ["a"]), ImplResult("", ["wrapped"])]


async def test_veto_collects_reasons_and_a_raising_veto_refuses(tmp_path, caplog):
    plugins = _load(tmp_path, {"provider": Provider(), "a": Impl("a"), "bad": Raising("bad")})
    with caplog.at_level(logging.WARNING, logger="platform_core.extension"):
        vetoes = await plugins.vetoes("ext_veto", item="ok")
    assert vetoes == [Veto("bad", "its check failed (RuntimeError); refused to be safe")]
    assert "database gone" in caplog.text and "'bad'" in caplog.text
    assert [v.plugin for v in await plugins.vetoes("ext_veto", item="no")] == ["a", "bad"]


async def test_veto_allows_when_nobody_refuses_or_the_hook_is_unknown(tmp_path):
    plugins = _load(tmp_path, {"provider": Provider(), "a": Impl("a")})
    assert await plugins.vetoes("ext_veto", item="ok") == []
    assert await plugins.vetoes("no_such_hook", item="ok") == []


class Order:
    """Records the order of core hooks (health: sync; startup/shutdown: async)."""

    def __init__(self, name: str, log: list[str], requires: tuple[str, ...] = ()) -> None:
        self.name, self.log, self.requires = name, log, requires

    @hookimpl
    def platform_plugin_meta(self) -> PluginMeta:
        return PluginMeta(requires=self.requires)

    @hookimpl
    def platform_permissions(self) -> list[object]:
        self.log.append(self.name)
        return []

    @hookimpl
    async def platform_startup(self) -> None:
        self.log.append(f"start {self.name}")

    @hookimpl
    async def platform_shutdown(self) -> None:
        self.log.append(f"stop {self.name}")


class OrderFirst(Order):
    @hookimpl(tryfirst=True)
    def platform_permissions(self) -> list[object]:
        self.log.append(self.name)
        return []

    @hookimpl(tryfirst=True)
    async def platform_startup(self) -> None:
        self.log.append(f"start {self.name}")


async def test_tryfirst_works_for_a_core_hook_sync_and_async(tmp_path):
    log: list[str] = []
    plugins = _load(
        tmp_path,
        {"a": Order("a", log), "b": Order("b", log, ("a",)), "c": OrderFirst("c", log, ("b",))},
    )
    assert plugins.order == ["core", "a", "b", "c"]
    called = [rec.name for rec, _ in plugins.call("platform_permissions")]
    assert log == ["c", "a", "b"]
    assert [n for n in called if n != "core"] == ["c", "a", "b"]
    log.clear()
    await plugins.acall("platform_startup")
    await plugins.acall("platform_shutdown", reverse=True)
    assert log == ["start c", "start a", "start b", "stop c", "stop b", "stop a"]


async def test_awaitable_hook_isolates_a_plugin_failing_while_awaited(tmp_path):
    class Fails(Order):
        @hookimpl
        async def platform_startup(self) -> None:
            raise ConnectionError("upstream down")

    log: list[str] = []
    plugins = _load(tmp_path, {"a": Fails("a", log), "b": Order("b", log)})
    await plugins.acall("platform_startup")
    assert plugins.get("a").state is PluginState.ISOLATED
    assert plugins.get("a").reason == "platform_startup() raised ConnectionError: upstream down"
    assert log == ["start b"]


def test_plain_pluggy_call_is_untouched():
    """Outside call_hook a guarded implementation raises as pluggy would."""
    pm = pluggy.PluginManager("platform_core")
    pm.add_hookspecs(specs)
    pm.register(Raising("bad"), name="bad")
    assert call_hook(pm, "ext_collect", seen=[]).failures[0].plugin == "bad"
    with pytest.raises(RuntimeError, match="bad collect exploded"):
        pm.hook.ext_collect(seen=[])


async def test_acall_firstresult_stops_after_first_awaited_answer():
    class Async:
        def __init__(self, name: str, answer: str | None, calls: list[str]) -> None:
            self.name, self.answer, self.calls = name, answer, calls

        @hookimpl
        async def ext_first(self, seen: list[str]) -> str | None:
            self.calls.append(self.name)
            return self.answer

    pm = pluggy.PluginManager("platform_core")
    pm.add_hookspecs(specs)
    calls: list[str] = []
    for name, answer in (("c", "from c"), ("b", "from b"), ("a", None)):
        pm.register(Async(name, answer, calls), name=name)  # pluggy: a, b, c
    outcome = await acall_hook(pm, "ext_first", seen=[])
    assert outcome.results == [ImplResult("b", "from b")]
    assert calls == ["a", "b"]


def test_only_limits_the_call_to_the_named_plugins(tmp_path):
    plugins = _load(tmp_path, {"provider": Provider(), "a": Impl("a"), "b": Impl("b")})
    seen: list[str] = []
    outcome = call_hook(plugins.pm, "ext_collect", only={"b"}, seen=seen)
    assert outcome.results == [ImplResult("b", ["b"])] and seen == ["b"]
