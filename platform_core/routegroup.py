"""A plugin's routes as one flat group: one prefix check, then each route matched once.

FastAPI (0.16x) keeps an included router lazy: a request under ``/api/<plugin>`` is matched
through every level of the plugin's routers (the plugin's own router, the routers it
includes) to find its route, then matched through every level again to run it, and each
level recomputes its routes' version by walking the routers below it. For a one-row read
that was about a tenth of the platform's CPU per request.

:func:`flatten_included` turns the router FastAPI just included into a :class:`RouteGroup`:
the plain ``APIRoute`` of each route, built with ``add_api_route`` from FastAPI's own
merged view of it (its full path, the inclusions' dependencies, tags, responses and
operation-id function together with the route's own settings), which is what FastAPI
itself built before lazy includes. The group answers "no match" at once for paths outside
its prefix and, inside it, tries only the routes that can match the path's first segment
after the prefix (an index built at boot, in declaration order) and, of those, only the
ones whose literal path part the request path starts with and whose pattern matches.
Matching and running happen once, on the route itself. A route is built the first time
it matches, not at boot: as with FastAPI's lazy includes, booting an app (a test session
boots hundreds) stays cheap.

Once every plugin is mounted, :func:`index_groups` puts the app's groups behind one
:class:`GroupIndex`, first among its routes: a request under ``/api/<plugin>`` goes to that
plugin's groups by a dictionary lookup, instead of past the platform's own routes
(``/healthz``, ``/metrics``, ``/docs`` ...) and every other plugin's group (about 5 % of a
one-row read).

A router that holds anything but ``APIRoute`` (a WebSocket route, a mount) is left as
FastAPI included it (and gated, see :mod:`platform_core.routegate`). The OpenAPI document
lists a group's routes (:func:`expand_groups`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import BaseRoute, Match, Mount, NoMatchFound, Route, compile_path
from starlette.types import Scope

from platform_core.routegate import route_path


class _Entry:
    """One route of a group: how to match it cheaply, and its flat ``APIRoute`` once built."""

    __slots__ = ("branch", "literal", "original", "path", "regex", "route")

    def __init__(self, branch: Any, original: APIRoute) -> None:
        self.branch = branch  # FastAPI's included router (with its merged include context)
        self.original = original
        self.path = branch.include_context.path_for(original)
        self.literal = self.path.split("{", 1)[0]
        self.regex = compile_path(self.path)[0]
        self.route: APIRoute | None = None

    def first_segment(self, prefix: str) -> str | None:
        """The path segment right after ``prefix`` every path this route matches has, or
        None when its pattern leaves that segment open."""
        rest = self.literal[len(prefix) :]
        if not self.literal.startswith(prefix) or not rest.startswith("/"):
            return None
        segment, slash, _ = rest[1:].partition("/")
        if slash or self.literal == self.path:  # the segment ends before any parameter
            return segment
        return None


class _Dispatch(BaseRoute):
    """What :class:`RouteGroup` and :class:`GroupIndex` share: they hand a request to the
    ``APIRoute`` their ``matches`` put in ``scope["route"]``, and look names up in their
    :attr:`routes`."""

    @property
    def routes(self) -> list[APIRoute]:  # pragma: no cover - both subclasses override it
        """Every route behind this one, built."""
        raise NotImplementedError

    def handle(self, scope: Scope, receive: Any, send: Any) -> Awaitable[None]:  # type: ignore[override]
        """Run the route :meth:`matches` chose (it put itself in ``scope["route"]``); the
        route's own coroutine, so that no frame of this one stays on the request's stack."""
        route: APIRoute = scope["route"]
        return route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """The URL of the named route."""
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)


def _first_match(candidates: Iterable[BaseRoute], scope: Scope) -> tuple[Match, Scope]:
    """The first full match among ``candidates``, else the first partial one (a path that
    matched with another method: 405), else none."""
    partial: Scope | None = None
    for candidate in candidates:
        match, child_scope = candidate.matches(scope)
        if match is Match.FULL:
            return match, child_scope
        if match is Match.PARTIAL and partial is None:
            partial = child_scope
    if partial is not None:
        return Match.PARTIAL, partial
    return Match.NONE, {}


class RouteGroup(_Dispatch):
    """Routes under one path prefix, matched in order; the matched route handles.

    Each flat ``APIRoute`` is built the first time a request's path matches its pattern
    (or when the OpenAPI document or ``url_path_for`` needs it): building one costs about
    what FastAPI's lazy include spends on it at its first request, and a platform that
    boots many apps (a test session) must not build every route of every plugin up front.
    """

    def __init__(self, prefix: str, entries: list[_Entry], overrides_provider: Any) -> None:
        self.prefix = prefix
        self.path = prefix  # what code walking ``app.routes`` reads of a route (as a Mount's)
        self._entries = entries
        self._router = APIRouter(dependency_overrides_provider=overrides_provider)
        # the routes a path can match, by its first segment after the prefix, in order
        segments = [entry.first_segment(prefix) for entry in entries]
        self._open = [e for e, seg in zip(entries, segments, strict=True) if seg is None]
        self._by_segment = {
            key: [e for e, seg in zip(entries, segments, strict=True) if seg in (key, None)]
            for key in set(segments) - {None}
        }

    @property
    def routes(self) -> list[APIRoute]:
        """Every route of the group, built."""
        return [self._built(entry) for entry in self._entries]

    def _built(self, entry: _Entry) -> APIRoute:
        if entry.route is None:
            entry.route = _flat_route(self._router, entry.branch, entry.original)
        return entry.route

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """The first full match of a route under the prefix, else the first partial one
        (a path that matched with another method: 405), else none."""
        path = route_path(scope)
        prefix = self.prefix
        if not path.startswith(prefix):
            return Match.NONE, {}
        rest = path[len(prefix) :]
        candidates = self._open
        if rest.startswith("/"):
            candidates = self._by_segment.get(rest[1:].partition("/")[0], self._open)
        return _first_match(
            (
                self._built(entry)
                for entry in candidates
                if path.startswith(entry.literal) and entry.regex.match(path) is not None
            ),
            scope,
        )


def _leaves(branch: Any, out: list[_Entry]) -> bool:
    """Collect the routes under FastAPI's included router ``branch`` in matching order;
    False when one is not an ``APIRoute``."""
    for route in branch.original_router.routes:
        nested = getattr(route, "include_context", None)
        if nested is not None and hasattr(route, "original_router"):
            child = type(branch)(
                original_router=route.original_router,
                include_context=branch.include_context.combine(nested),
            )
            if not _leaves(child, out):
                return False
        elif isinstance(route, APIRoute):
            out.append(_Entry(branch, route))
        else:
            return False
    return not getattr(branch.original_router, "_low_priority_routes", None)


def _flat_route(router: APIRouter, branch: Any, route: APIRoute) -> APIRoute:
    """The plain ``APIRoute`` FastAPI's include makes of ``route`` (its merged view of the
    route and the inclusions above it), built by ``add_api_route`` on ``router``."""
    c = branch._build_effective_context(route)
    router.add_api_route(
        c.path,
        c.endpoint,
        response_model=route.response_model,
        status_code=c.status_code,
        tags=c.tags,
        dependencies=c.dependencies,
        summary=c.summary,
        description=c.description,
        response_description=c.response_description,
        responses=c.responses,
        deprecated=c.deprecated,
        methods=c.methods,
        operation_id=c.operation_id,
        response_model_include=c.response_model_include,
        response_model_exclude=c.response_model_exclude,
        response_model_by_alias=c.response_model_by_alias,
        response_model_exclude_unset=c.response_model_exclude_unset,
        response_model_exclude_defaults=c.response_model_exclude_defaults,
        response_model_exclude_none=c.response_model_exclude_none,
        include_in_schema=c.include_in_schema,
        response_class=c.response_class,
        name=c.name,
        route_class_override=type(route),
        callbacks=c.callbacks,
        openapi_extra=c.openapi_extra,
        generate_unique_id_function=c.generate_unique_id_function,
        strict_content_type=c.strict_content_type,
        max_body_size=c.max_body_size,
    )
    built = router.routes.pop()
    assert isinstance(built, APIRoute)
    return built


def flatten_included(app: FastAPI, prefix: str) -> bool:
    """Replace the router ``app.include_router`` just appended with a :class:`RouteGroup`.

    Returns False (and changes nothing) when FastAPI's included router is not the lazy
    kind this relies on or holds a route that is not an ``APIRoute``.
    """
    included = app.router.routes[-1] if app.router.routes else None
    needed = ("include_context", "original_router", "_build_effective_context")
    if not all(hasattr(included, name) for name in needed):  # another FastAPI: as included
        return False
    entries: list[_Entry] = []
    if not _leaves(included, entries):
        return False
    app.router.routes[-1] = RouteGroup(prefix, entries, app)
    return True


API_PREFIX = "/api/"


class GroupIndex(_Dispatch):
    """Every route group of an app, found by the path's segment after ``/api/``.

    Put first among the app's routes by :func:`index_groups`: a request under ``/api/``
    goes straight to the groups of its plugin (in the order they were mounted) instead of
    being checked against every route before them; any other path is "no match" at once.
    """

    def __init__(self, groups: list[RouteGroup]) -> None:
        self.groups = groups
        self.path = API_PREFIX.rstrip("/")  # what code walking ``app.routes`` reads of a route
        self._by_key: dict[str, list[RouteGroup]] = {}
        for group in groups:
            key = group.prefix[len(API_PREFIX) :].partition("/")[0]
            self._by_key.setdefault(key, []).append(group)

    @property
    def routes(self) -> list[APIRoute]:
        """Every route of every group, built."""
        return [route for group in self.groups for route in group.routes]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """The first full match among the path's plugin's groups, else the first partial."""
        path = route_path(scope)
        if not path.startswith(API_PREFIX):
            return Match.NONE, {}
        return _first_match(self._by_key.get(path[len(API_PREFIX) :].partition("/")[0], ()), scope)


def _outside_api(route: BaseRoute) -> bool:
    """True when ``route`` can match no path under ``/api/`` (its literal path part and
    ``/api/`` part ways); False when it might, or when its kind is not known here."""
    if not isinstance(route, Route | Mount):
        return False
    literal = route.path.split("{", 1)[0]
    return not literal.startswith(API_PREFIX) and not API_PREFIX.startswith(literal)


def index_groups(app: FastAPI) -> bool:
    """Replace the app's route groups with one :class:`GroupIndex` first among its routes.

    Exact, not a heuristic: done only when every group's prefix is under ``/api/`` and
    every other route before the last group can match no path under ``/api/`` (the
    platform's ``/healthz``, ``/metrics``, ``/docs`` ...), so no request is answered by
    another route than before. Returns False (and changes nothing) otherwise.
    """
    routes = app.router.routes
    groups = [route for route in routes if isinstance(route, RouteGroup)]
    if not groups or not all(g.prefix.startswith(API_PREFIX) for g in groups):
        return False
    before_last = routes[: routes.index(groups[-1])]
    if not all(isinstance(r, RouteGroup) or _outside_api(r) for r in before_last):
        return False
    others = [route for route in routes if not isinstance(route, RouteGroup)]
    routes[:] = [GroupIndex(groups), *others]
    return True


def expand_groups(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """``routes`` with each :class:`RouteGroup` or :class:`GroupIndex` replaced by its
    routes (for OpenAPI)."""
    out: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, RouteGroup | GroupIndex):
            out.extend(route.routes)
        else:
            out.append(route)
    return out
