"""Plugin discovery, dependency resolution and isolation around a pluggy manager.

Plugins are found in the ``platform_core.plugins`` entry-point group and loaded only when
``plugins.toml`` enables them. Load order is the topological order of ``requires``. A
plugin that fails (import error, bad metadata, missing or incompatible dependency, cycle,
invalid settings, a raising hook) is *isolated* with a one-line reason, and so are the
plugins that depend on it; the rest go on. ``[core] strict = true`` raises instead.
"""

from __future__ import annotations

import enum
import graphlib
import inspect
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ValidationError

from platform_core import hookspecs
from platform_core.config import Config
from platform_core.errors import PluginError, StrictModeError
from platform_core.extension import (
    HookOutcome,
    ImplResult,
    Veto,
    acall_hook,
    call_hook,
    vetoes_from,
)
from platform_core.specs import PluginMeta

log = logging.getLogger("platform_core.plugins")

ENTRY_POINT_GROUP = "platform_core.plugins"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_NAMES = frozenset({"core", "enabled", "api", "auth", "docs", "healthz", "readyz"})


class PluginState(enum.StrEnum):
    """Where a plugin stands after loading."""

    ACTIVE = "active"
    DISABLED = "disabled"
    ISOLATED = "isolated"
    MISSING = "missing"


@dataclass
class PluginRecord:
    """Everything the platform knows about one plugin, loaded or not."""

    name: str
    version: str
    enabled: bool
    state: PluginState
    reason: str = ""
    distribution: str = ""
    internal: bool = False
    module: Any = None
    meta: PluginMeta = field(default_factory=PluginMeta)
    requires: list[Requirement] = field(default_factory=list)
    settings: BaseModel | None = None

    @property
    def active(self) -> bool:
        """True when the plugin contributes to the running platform."""
        return self.state is PluginState.ACTIVE


def core_version() -> str:
    """The installed platform-core version."""
    from platform_core import __version__

    return __version__


def _ep_distribution(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "", "0"
    return dist.metadata["Name"] or "", dist.version or "0"


def discover() -> dict[str, EntryPoint]:
    """Installed plugins by name, from the entry-point group (no plugin is imported).

    When two distributions claim one name, the first found wins; see :func:`duplicates`.
    """
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def duplicates() -> list[str]:
    """One message per plugin name claimed by more than one installed distribution."""
    claims: dict[str, list[str]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        claims.setdefault(ep.name, []).append(_ep_distribution(ep)[0] or ep.value)
    return [
        f"plugin name {name!r} is claimed by {', '.join(dists)}; only the first is used"
        for name, dists in sorted(claims.items())
        if len(dists) > 1
    ]


class PlatformPlugins:
    """The plugin manager: loads enabled plugins and calls their hooks with isolation."""

    def __init__(
        self,
        config: Config,
        *,
        internal: Iterable[tuple[str, Any]] = (),
        extra: dict[str, Any] | None = None,
        installed: dict[str, EntryPoint] | None = None,
    ) -> None:
        self.config = config
        self.pm = pluggy.PluginManager("platform_core")
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self._internal = list(internal)
        self._extra = dict(extra or {})
        self.order: list[str] = []
        self.problems: list[str] = []
        if installed is None:
            installed = discover()
            for message in duplicates():
                self._problem(message)
        self._installed = installed

    # -- loading -------------------------------------------------------------------------

    def load(self) -> PlatformPlugins:
        """Discover, import, resolve and validate; isolate failures (or raise when strict)."""
        for name, obj in self._internal:
            self.pm.register(obj, name=name)
            self.records[name] = PluginRecord(
                name=name,
                version=core_version(),
                enabled=True,
                state=PluginState.ACTIVE,
                distribution="platform-core",
                internal=True,
                module=obj,
            )
        self._import_enabled()
        self._read_meta()
        self._resolve()
        self._register_in_load_order()
        self._run_add_hookspecs()
        self._validate_settings()
        self.check_strict()
        for rec in self.records.values():
            if rec.state is PluginState.ISOLATED:
                log.warning(
                    "plugin %s isolated: %s",
                    rec.name,
                    rec.reason,
                    extra={"plugin": rec.name, "reason": rec.reason},
                )
            elif rec.state is PluginState.MISSING:
                log.warning(
                    "plugin %s is enabled but not installed: %s",
                    rec.name,
                    rec.reason,
                    extra={"plugin": rec.name, "reason": rec.reason},
                )
        return self

    def failures(self) -> dict[str, str]:
        """``{name: reason}`` of every enabled plugin that is isolated or missing."""
        return {
            r.name: r.reason
            for r in self.records.values()
            if r.enabled and r.state in (PluginState.ISOLATED, PluginState.MISSING)
        }

    def owners(self) -> set[str]:
        """Names of every plugin present in this process (installed or in-process), any state."""
        return {n for n, r in self.records.items() if r.state is not PluginState.MISSING}

    def check_strict(self) -> None:
        """With ``[core] strict = true``, raise ``StrictModeError`` when a plugin failed.

        Run at the end of every phase that can isolate a plugin: loading, collecting the
        contributions (``boot``), mounting the routes (``create_app``) and startup.
        """
        if self.config.core.strict:
            failures = self.failures()
            if failures:
                raise StrictModeError(failures)

    def _register_in_load_order(self) -> None:
        """Re-register the active plugins so that pluggy calls them in load order.

        pluggy calls the last registered implementation first; registering in reverse load
        order makes its default order the load order (the core first, a plugin after those
        it requires), which ``tryfirst``/``trylast`` then adjust.
        """
        plugins = [(n, self.pm.get_plugin(n)) for n in self.order]
        for name, _ in plugins:
            self.pm.unregister(name=name)
        for name, obj in reversed(plugins):
            self.pm.register(obj, name=name)

    def _import_enabled(self) -> None:
        enabled = set(self.config.enabled) | set(self._extra)
        for name, ep in sorted(self._installed.items()):
            dist, version = _ep_distribution(ep)
            if name in self.records:  # an installed plugin may never replace an internal one
                self._problem(f"plugin {name!r} from {dist or ep.value} ignored: reserved name")
                continue
            rec = PluginRecord(
                name=name,
                version=version,
                enabled=name in enabled,
                state=PluginState.DISABLED,
                distribution=dist,
            )
            self.records[name] = rec
            if name in self._extra or not rec.enabled:
                continue
            if name in RESERVED_NAMES or not NAME_RE.fullmatch(name):
                self._fail(
                    rec,
                    f"invalid plugin name {name!r} (lowercase letters, digits, _; "
                    "not a reserved name)",
                )
                continue
            try:
                module = ep.load()
            except Exception as exc:  # any import-time failure isolates the plugin
                self._fail(rec, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self._register(rec, module)
        for name, obj in self._extra.items():
            if name in self.records and self.records[name].internal:
                self._problem(f"in-process plugin {name!r} ignored: reserved name")
                continue
            version = str(getattr(obj, "__version__", "0.0.0"))
            rec = PluginRecord(
                name=name,
                version=version,
                enabled=True,
                state=PluginState.DISABLED,
                distribution=f"(in-process) {name}",
            )
            self.records[name] = rec
            self._register(rec, obj)
        for name in self.config.enabled:
            if name not in self.records:
                self.records[name] = PluginRecord(
                    name=name,
                    version="",
                    enabled=True,
                    state=PluginState.MISSING,
                    reason=f"enabled in {self.config.path} but not installed",
                )

    def _problem(self, message: str) -> None:
        """A platform-level problem not tied to a loadable plugin (shown by doctor)."""
        log.warning(message)
        self.problems.append(message)

    def _register(self, rec: PluginRecord, module: Any) -> None:
        try:
            self.pm.register(module, name=rec.name)
        except Exception as exc:  # pluggy validation: unknown hook args, bad hookimpl
            self._fail(rec, f"invalid hooks: {exc}")
            return
        rec.module = module
        rec.state = PluginState.ACTIVE

    def _read_meta(self) -> None:
        for rec, meta in self.call("platform_plugin_meta"):
            if meta is None:
                continue
            if not isinstance(meta, PluginMeta):
                self._fail(rec, "platform_plugin_meta() must return platform_core.PluginMeta")
                continue
            rec.meta = meta
            try:
                rec.requires = [Requirement(r) for r in meta.requires]
                core_spec = SpecifierSet(meta.core) if meta.core else None
            except (InvalidRequirement, InvalidSpecifier) as exc:
                self._fail(rec, f"invalid version constraint: {exc}")
                continue
            if core_spec is not None and not core_spec.contains(core_version(), prereleases=True):
                self._fail(
                    rec, f"supports platform-core {meta.core}, installed is {core_version()}"
                )

    def _resolve(self) -> None:
        """Check ``requires`` against the loaded plugins and compute the load order."""
        candidates = {n: r for n, r in self.records.items() if r.active and not r.internal}
        graph = {n: {q.name for q in r.requires} for n, r in candidates.items()}
        sorter = graphlib.TopologicalSorter(graph)
        try:
            order = list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            reason = "dependency cycle: " + " -> ".join(cycle)
            members = [n for n in dict.fromkeys(cycle) if n in candidates]
            for name in members:  # mark all first: each keeps the cycle as its reason
                self._mark(name, reason)
            for name in members:
                self._cascade(name)
            return self._resolve()
        for name in order:
            rec = self.records.get(name)
            if rec is None or rec.internal or not rec.active:
                continue
            for req in rec.requires:
                dep = self.records.get(req.name)
                if dep is None or dep.state is PluginState.MISSING:
                    self._fail(rec, f"requires {req}, which is not installed")
                elif not dep.enabled:
                    self._fail(rec, f"requires {req}, which is not enabled")
                elif dep.state is PluginState.ISOLATED:
                    self._fail(rec, f"depends on {req.name}, which is isolated")
                elif not dep.active:
                    self._fail(rec, f"requires {req.name}, which is {dep.state.value}")
                elif not _version_ok(req, dep.version):
                    self._fail(rec, f"requires {req}, installed is {dep.version}")
                else:
                    continue
                break
        internal = [n for n, r in self.records.items() if r.internal]
        self.order = internal + [n for n in order if n in self.records and self.records[n].active]

    def _run_add_hookspecs(self) -> None:
        for rec, _ in self.call("platform_add_hookspecs", pm=self.pm):
            log.debug("hookspecs added", extra={"plugin": rec.name})

    def _validate_settings(self) -> None:
        """Validate each plugin's ``[plugins.<name>]`` table; one reason lists every bad key."""
        models = {rec.name: model for rec, model in self.call("platform_settings")}
        for rec in self.active_records():
            table = self.config.plugin_table(rec.name)
            model = models.get(rec.name)
            where = f"{self.config.path} [plugins.{rec.name}]"
            if model is None:
                if table:
                    errors = [f"key '{k}': the plugin takes no settings" for k in sorted(table)]
                    self._fail(rec, f"invalid settings: {where} " + "; ".join(errors))
                continue
            if not (inspect.isclass(model) and issubclass(model, BaseModel)):
                self._fail(rec, "platform_settings() must return a pydantic model class")
                continue
            known = set(model.model_fields) | {
                f.alias for f in model.model_fields.values() if f.alias
            }
            errors = [f"key '{k}': unknown setting" for k in sorted(set(table) - known)]
            try:
                rec.settings = model.model_validate({k: v for k, v in table.items() if k in known})
            except ValidationError as exc:
                for err in exc.errors():
                    key = ".".join(str(p) for p in err["loc"]) or "(table)"
                    errors.append(f"key '{key}': {err['msg']}")
            if errors:
                rec.settings = None
                self._fail(rec, f"invalid settings: {where} " + "; ".join(errors))

    # -- isolation -------------------------------------------------------------------------

    def _fail(self, rec: PluginRecord, reason: str) -> None:
        if rec.internal:
            raise PluginError(rec.name, reason)
        self.isolate(rec.name, reason)

    def isolate(self, name: str, reason: str) -> None:
        """Isolate ``name`` and every active plugin that requires it, each with a reason."""
        if self.records[name].state is PluginState.ISOLATED:
            return
        self._mark(name, reason)
        self._cascade(name)

    def _mark(self, name: str, reason: str) -> None:
        rec = self.records[name]
        rec.state, rec.reason = PluginState.ISOLATED, reason
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        if name in self.order:
            self.order.remove(name)

    def _cascade(self, name: str) -> None:
        for other in list(self.records.values()):
            if other.active and any(req.name == name for req in other.requires):
                self.isolate(other.name, f"depends on {name}, which is isolated")

    # -- calling hooks -----------------------------------------------------------------------

    def active_records(self) -> list[PluginRecord]:
        """Active plugins in load order (internal plugins first)."""
        names = self.order or [n for n, r in self.records.items() if r.active]
        return [self.records[n] for n in names if self.records[n].active]

    def _pairs(self, outcome: HookOutcome) -> list[tuple[PluginRecord, Any]]:
        """Isolate the plugins that raised; ``(record, value)`` for those called, in order."""
        for failure in outcome.failures:
            for name in failure.plugin.split(","):
                rec = self.records.get(name)
                if rec is not None and rec.active:
                    self._fail(rec, failure.reason)
        values: dict[str, Any] = {}
        for result in outcome.results:
            values.setdefault(result.plugin, result.value)
        pairs = []
        for name in outcome.called:
            rec = self.records.get(name)
            if rec is not None and rec.active:
                pairs.append((rec, values.get(name)))
        return pairs

    def call(self, hook: str, **kwargs: Any) -> list[tuple[PluginRecord, Any]]:
        """Call the core hook ``hook`` (see :mod:`platform_core.extension`); isolate raisers.

        Returns ``(record, result)`` pairs, in pluggy's call order (load order adjusted by
        ``tryfirst``/``trylast``), for the active plugins whose implementation ran; a
        ``firstresult`` hook stops at the first value. A plugin whose implementation raised
        is isolated (with its dependents) with the reason ``<hook>() raised <Type>: <msg>``.
        """
        return self._pairs(call_hook(self.pm, hook, **kwargs))

    async def acall(
        self, hook: str, *, reverse: bool = False, isolate: bool = True, **kwargs: Any
    ) -> list[tuple[PluginRecord, Any]]:
        """Like :meth:`call`, one implementation at a time, each awaited (startup, shutdown).

        ``reverse`` mirrors the order (shutdown); with ``isolate=False`` a failure is only
        logged (the process is stopping anyway).
        """
        outcome = await acall_hook(self.pm, hook, reverse=reverse, **kwargs)
        if not isolate:
            outcome.failures = []
        return self._pairs(outcome)

    # -- extension points (hooks plugins add with platform_add_hookspecs) ---------------------

    def call_extension(self, hook: str, **kwargs: Any) -> list[ImplResult]:
        """Call an extension point: ``ImplResult(plugin, value)`` per value, in call order.

        pluggy's order, ``tryfirst``/``trylast``, wrappers and ``firstresult`` apply. An
        implementation that raises is skipped and logged (WARNING, with the plugin's name);
        its plugin keeps running. A hook nobody declared gives ``[]``.
        """
        return call_hook(self.pm, hook, **kwargs).results

    async def acall_extension(self, hook: str, **kwargs: Any) -> list[ImplResult]:
        """:meth:`call_extension` for implementations that may be ``async def``.

        One implementation at a time, each awaited before the next starts.
        """
        return (await acall_hook(self.pm, hook, **kwargs)).results

    async def vetoes(self, hook: str, **kwargs: Any) -> list[Veto]:
        """Ask a veto hook: one ``Veto(plugin, reason)`` per refusal (empty: allowed).

        Every implementation is asked (sync or ``async def``). A truthy answer refuses with
        that reason; an implementation that raises refuses too (fail-closed), and is logged.
        """
        return vetoes_from(await acall_hook(self.pm, hook, **kwargs))

    def get(self, name: str) -> PluginRecord:
        """The record of ``name``; ``KeyError`` when the platform never heard of it."""
        return self.records[name]


def _version_ok(req: Requirement, version: str) -> bool:
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False
