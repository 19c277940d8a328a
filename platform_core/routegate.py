"""Cheaper route matching: skip a whole router when the path cannot be under it.

FastAPI (0.16x) keeps included routers lazy: to route ``GET /api/inventory/devices/1`` it
asks every router in turn, and a router asks each of its routes (each one a regular
expression wrapped in a few scope updates), twice (once to find the route, once more to
run it). With the core's routers and a plugin's dozen sub-routers that is about 90 route
checks per request, a tenth of the platform's cost of a one-row read.

:func:`gate_routers` gives each of a plugin's routers (the plugin's own and the ones it
includes) a path prefix that every path it can match starts with: the common part of its
routes' paths before their first parameter, under the prefix it is mounted at. A request
whose path does not start with it is answered "no match" at once, without asking the
routes. That is exact, not a heuristic: a route's path pattern only matches paths that
begin with its literal part. A router mounted at several places gets the common prefix of
all of them; a router whose paths cannot be worked out (a FastAPI without the lazy
includes this relies on, a route without a path) gets no gate and is matched as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from starlette.routing import Match

GATE_ATTRIBUTE = "_platform_path_gate"
_gated_classes: dict[type, type] = {}


def route_path(scope: Mapping[str, Any]) -> str:
    """The path the routes match against: ``path`` without ``root_path`` (as Starlette)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    if path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path


def _common_prefix(texts: list[str]) -> str:
    """The longest string every one of ``texts`` starts with (character by character: a
    route path's literal part may end inside a segment, ``/items-{id}``)."""
    if not texts:
        return ""
    first, last = min(texts), max(texts)
    size = 0
    while size < len(first) and first[size] == last[size]:
        size += 1
    return first[:size]


def _gated_class(cls: type) -> type:
    """``cls`` with a ``matches`` that first checks the instance's path gate."""
    gated = _gated_classes.get(cls)
    if gated is not None:
        return gated

    def matches(self: Any, scope: dict[str, Any]) -> tuple[Match, dict[str, Any]]:
        gate: str = getattr(self, GATE_ATTRIBUTE, "")
        if gate and not route_path(scope).startswith(gate):
            return Match.NONE, {}
        result: tuple[Match, dict[str, Any]] = cls.matches(self, scope)  # type: ignore[attr-defined]
        return result

    gated = type(cls.__name__, (cls,), {"matches": matches, "__module__": cls.__module__})
    _gated_classes[cls] = gated
    return gated


def _collect(router: APIRouter, prefix: str, found: dict[int, tuple[APIRouter, list[str]]]) -> str:
    """Record the static prefix of ``router`` mounted at ``prefix`` (and of the routers it
    includes) in ``found``; return it."""
    statics: list[str] = []
    for route in router.routes:
        nested = getattr(route, "original_router", None)
        if isinstance(nested, APIRouter):
            sub = getattr(getattr(route, "include_context", None), "prefix", None)
            statics.append(
                _collect(nested, prefix + sub, found) if isinstance(sub, str) else prefix
            )
            continue
        path = getattr(route, "path", None)
        # No path (a Host route): it may match anything, so the router gets no gate.
        statics.append(prefix + path.split("{", 1)[0] if isinstance(path, str) else "")
    common = _common_prefix(statics) if statics else prefix
    found.setdefault(id(router), (router, []))[1].append(common)
    return common


def gate_routers(routers: list[tuple[APIRouter, str]]) -> None:
    """Gate each ``(router, prefix it is mounted at)`` and the routers it includes.

    Call after mounting them; a router gated before (another app of the same process)
    keeps a gate valid for both mounts.
    """
    found: dict[int, tuple[APIRouter, list[str]]] = {}
    for router, prefix in routers:
        _collect(router, prefix, found)
    for router, prefixes in found.values():
        gate = _common_prefix(prefixes)
        gated_before = type(router) in _gated_classes.values()
        if gated_before:
            gate = _common_prefix([gate, getattr(router, GATE_ATTRIBUTE, "")])
        if not gate.startswith("/"):
            gate = ""
        if not gated_before:
            if not gate:
                continue
            # Once: wrapping a gated class again would add a layer per boot (a process
            # that builds many apps, a test session, would end in a RecursionError).
            router.__class__ = _gated_class(type(router))
        setattr(router, GATE_ATTRIBUTE, gate)
