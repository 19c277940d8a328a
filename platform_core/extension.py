"""The one way to call a hook: pluggy's semantics, each implementation isolated and named.

Every hook, the core's own (``platform_*``) and the extension points plugins add with
``platform_add_hookspecs`` (``inventory_device_delete_veto``, ``scheduler_power_drivers``,
``pricing_decision_engines``, ...), is called through :func:`call_hook` or
:func:`acall_hook`; plugins reach them as ``ctx.plugins.call_extension(...)``,
``ctx.plugins.acall_extension(...)`` and ``ctx.plugins.vetoes(...)``.

- **pluggy decides the order**: load order by default (a plugin after the plugins it
  requires), ``tryfirst``/``trylast`` move an implementation, wrappers (``wrapper=True`` and
  old-style ``hookwrapper=True``) wrap the call, and a ``firstresult`` spec stops at the first
  value that is not ``None``.
- **a raising implementation is isolated**: it is skipped for this call (pluggy goes on with
  the next one, as if it had returned ``None``), logged at WARNING with the plugin's name and
  the traceback, and reported as an :class:`ImplFailure`. The caller decides what a failure
  means: the core isolates a plugin whose ``platform_*`` hook raised; an extension point
  ignores it; a veto counts it as a refusal (fail-closed, :func:`vetoes_from`).
- **each value carries its plugin**: :class:`ImplResult` ``(plugin, value)``, in call order.

Calling ``pm.hook.<name>(...)`` directly still works and is plain pluggy (an exception
escapes); it is not the supported way for plugin code.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Collection, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import pluggy

log = logging.getLogger("platform_core.extension")

_GUARDED = "__platform_guarded__"


@dataclass(frozen=True)
class ImplResult:
    """One implementation's answer: the plugin that gave it and the value (never ``None``)."""

    plugin: str
    value: Any


@dataclass(frozen=True)
class ImplFailure:
    """One implementation that raised: the plugin, the hook and the exception."""

    plugin: str
    hook: str
    error: Exception

    @property
    def reason(self) -> str:
        """``<hook>() raised <Type>: <message>``, the one-line reason shown everywhere."""
        return f"{self.hook}() raised {type(self.error).__name__}: {self.error}"


@dataclass
class HookOutcome:
    """What a hook call produced: the values in call order and the implementations that raised."""

    hook: str
    results: list[ImplResult] = field(default_factory=list)
    failures: list[ImplFailure] = field(default_factory=list)
    called: list[str] = field(default_factory=list)
    """The plugins whose implementation ran and returned (``None`` included), in call order."""

    def values(self) -> list[Any]:
        """The values alone, in call order."""
        return [r.value for r in self.results]


@dataclass(frozen=True)
class Veto:
    """A refusal: the plugin that refused and its one-line reason."""

    plugin: str
    reason: str


@dataclass
class _Record:
    plugin: str
    value: Any = None
    error: Exception | None = None


_records: ContextVar[list[_Record] | None] = ContextVar("platform_hook_records", default=None)


def _guard(function: Callable[..., Any], plugin: str) -> Callable[..., Any]:
    """Wrap an implementation: transparent, except inside a :func:`call_hook` call."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        records = _records.get()
        if records is None:  # a plain pm.hook.x(...) call: pure pluggy
            return function(*args, **kwargs)
        token = _records.set(None)  # a hook called from inside is a call of its own
        try:
            value = function(*args, **kwargs)
        except Exception as exc:
            records.append(_Record(plugin, error=exc))
            return None
        finally:
            _records.reset(token)
        records.append(_Record(plugin, value))
        return value

    setattr(guarded, _GUARDED, True)
    return guarded


def _impls(caller: pluggy.HookCaller) -> list[Any]:
    """The caller's implementations, each guarded once (whatever registered it)."""
    impls = caller.get_hookimpls()
    for impl in impls:
        if not (impl.wrapper or impl.hookwrapper) and not getattr(impl.function, _GUARDED, False):
            # HookImpl has __slots__ and no setter: replace the function in place, once.
            object.__setattr__(impl, "function", _guard(impl.function, impl.plugin_name))
    return impls


def _caller(pm: pluggy.PluginManager, hook: str) -> pluggy.HookCaller | None:
    return getattr(pm.hook, hook, None)


def _log_failure(failure: ImplFailure) -> None:
    log.warning(
        "%s: the implementation of plugin %r was skipped",
        failure.reason,
        failure.plugin,
        extra={"plugin": failure.plugin, "hook": failure.hook},
        exc_info=failure.error,
    )


def _attribute(returned: Sequence[Any], records: list[_Record]) -> list[ImplResult]:
    """Pair pluggy's values with the plugins whose implementations returned them."""
    given = [r for r in records if r.error is None and r.value is not None]
    out, start = [], 0
    for value in returned:
        for i in range(start, len(given)):
            if given[i].value is value:
                out.append(ImplResult(given[i].plugin, value))
                start = i + 1
                break
        else:  # put there by a wrapper
            out.append(ImplResult("", value))
    return out


def _failures(hook: str, records: list[_Record]) -> list[ImplFailure]:
    found = [ImplFailure(r.plugin, hook, r.error) for r in records if r.error is not None]
    for failure in found:
        _log_failure(failure)
    return found


def _wrapper_failure(hook: str, impls: list[Any], exc: Exception) -> ImplFailure:
    names = ",".join(i.plugin_name for i in impls if i.wrapper or i.hookwrapper) or "?"
    failure = ImplFailure(names, hook, exc)
    _log_failure(failure)
    return failure


def call_hook(
    pm: pluggy.PluginManager, hook: str, /, *, only: Collection[str] | None = None, **kwargs: Any
) -> HookOutcome:
    """Call ``hook`` through pluggy with each implementation isolated (see the module doc).

    ``only`` limits the call to these plugins' implementations (every wrapper still runs).
    A hook nobody declared or implemented gives an empty outcome. A historic hook is called
    with ``call_historic`` (plugins registered later get the call too, unguarded by this one).
    """
    outcome = HookOutcome(hook)
    caller = _caller(pm, hook)
    if caller is None:
        return outcome
    impls = _impls(caller)
    if only is not None:
        left_out = [
            i.plugin
            for i in impls
            if i.plugin_name not in only and not (i.wrapper or i.hookwrapper)
        ]
        caller = pm.subset_hook_caller(hook, left_out) if left_out else caller
    records: list[_Record] = []
    token = _records.set(records)
    try:
        if caller.is_historic():
            caller.call_historic(kwargs=kwargs)
            returned: Any = [r.value for r in records if r.error is None and r.value is not None]
        else:
            returned = caller(**kwargs)
            if caller.spec is not None and caller.spec.opts.get("firstresult"):
                returned = [] if returned is None else [returned]
    except Exception as exc:  # only a wrapper can raise here: implementations are guarded
        outcome.failures.append(_wrapper_failure(hook, impls, exc))
        returned = []
    finally:
        _records.reset(token)
    outcome.results = _attribute(returned, records)
    outcome.failures[:0] = _failures(hook, records)
    outcome.called = [r.plugin for r in records if r.error is None]
    return outcome


async def acall_hook(
    pm: pluggy.PluginManager, hook: str, /, *, reverse: bool = False, **kwargs: Any
) -> HookOutcome:
    """Call ``hook`` one implementation at a time, awaiting each before the next starts.

    For hooks whose implementations may be ``async def`` (``platform_startup``, a veto). The
    order is pluggy's (``tryfirst``/``trylast`` honoured), mirrored with ``reverse`` (shutdown);
    ``firstresult`` stops at the first awaited value that is not ``None``; the wrappers of
    every plugin run around each implementation's call. An implementation that raises, on
    call or while awaited, is isolated like in :func:`call_hook`.
    """
    outcome = HookOutcome(hook)
    caller = _caller(pm, hook)
    if caller is None:
        return outcome
    impls = _impls(caller)
    plain = [i for i in impls if not (i.wrapper or i.hookwrapper)]
    order = plain if reverse else list(reversed(plain))  # pluggy calls from the list's end
    first = bool(caller.spec is not None and caller.spec.opts.get("firstresult"))
    wrapped = len(plain) < len(impls)
    for impl in order:
        records: list[_Record] = []
        token = _records.set(records)
        try:
            if wrapped:  # through pluggy, so that every wrapper runs around this one call
                others = [i.plugin for i in plain if i is not impl]
                single = pm.subset_hook_caller(hook, others) if others else caller
                returned = single(**kwargs)
                values = [returned] if first else list(returned)
            else:
                args = [kwargs[a] for a in impl.argnames]
                extra = {a: kwargs[a] for a in impl.kwargnames if a in kwargs}
                values = [impl.function(*args, **extra)]
        except Exception as exc:  # a wrapper raised (implementations are guarded)
            outcome.failures.append(_wrapper_failure(hook, impls, exc))
            continue
        finally:
            _records.reset(token)
        failed = _failures(hook, records)
        if failed:
            outcome.failures.extend(failed)
            continue
        called = len(outcome.failures)
        for value in values:
            if inspect.isawaitable(value):
                try:
                    value = await value
                except Exception as exc:
                    failure = ImplFailure(impl.plugin_name, hook, exc)
                    _log_failure(failure)
                    outcome.failures.append(failure)
                    continue
            if value is not None:
                outcome.results.append(ImplResult(impl.plugin_name, value))
        if len(outcome.failures) == called:
            outcome.called.append(impl.plugin_name)
        if first and outcome.results:
            break
    return outcome


def vetoes_from(outcome: HookOutcome) -> list[Veto]:
    """The refusals in a veto hook's outcome: every truthy answer, and every failure.

    A veto implementation that raises refuses (fail-closed): its reason says that the
    plugin's check failed, without the exception's message (it is in the log).
    """
    found = [Veto(r.plugin, str(r.value)) for r in outcome.results if r.value]
    found += [
        Veto(f.plugin, f"its check failed ({type(f.error).__name__}); refused to be safe")
        for f in outcome.failures
    ]
    return found
