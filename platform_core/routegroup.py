"""A plugin's routes as one flat group: one prefix check, then each route matched once.

FastAPI (0.16x) keeps an included router lazy: a request under ``/api/<plugin>`` is matched
through every level of the plugin's routers (the plugin's own router, the routers it
includes) to find its route, then matched through every level again to run it, and each
level recomputes its routes' version by walking the routers below it. For a one-row read
that was about a tenth of the platform's CPU per request.

:func:`flatten_included` turns the router FastAPI just included into a :class:`RouteGroup`
of plain ``APIRoute`` objects, built with ``add_api_route`` from FastAPI's own merged view
of each route (its full path, the inclusion's dependencies, tags, responses and
operation-id function together with the route's own settings): the routes FastAPI
itself would build for them, as it did before lazy includes. The group answers "no
match" at once for paths outside its prefix and, inside it, asks only the routes whose
literal path part the request path starts with. Matching and running happen once, on
the route itself.

A router that holds anything but ``APIRoute`` (a WebSocket route, a mount) is left as
FastAPI included it (and gated, see :mod:`platform_core.routegate`). The OpenAPI document
lists a group's routes (:func:`expand_groups`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Scope

from platform_core.routegate import route_path


class RouteGroup(BaseRoute):
    """Routes under one path prefix, matched in order; the matched route handles."""

    def __init__(self, prefix: str, routes: list[APIRoute]) -> None:
        self.prefix = prefix
        self.routes = routes
        self._candidates = [(route.path.split("{", 1)[0], route) for route in routes]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """The first full match of a route under the prefix, else the first partial one
        (a path that matched with another method: 405), else none."""
        path = route_path(scope)
        if not path.startswith(self.prefix):
            return Match.NONE, {}
        partial: Scope | None = None
        for literal, route in self._candidates:
            if not path.startswith(literal):
                continue
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return match, child_scope
            if match is Match.PARTIAL and partial is None:
                partial = child_scope
        if partial is not None:
            return Match.PARTIAL, partial
        return Match.NONE, {}

    def handle(self, scope: Scope, receive: Any, send: Any) -> Awaitable[None]:  # type: ignore[override]
        """Run the route :meth:`matches` chose (it put itself in ``scope["route"]``); the
        route's own coroutine, so that no frame of the group stays on the request's stack."""
        route: APIRoute = scope["route"]
        return route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """The URL of the named route in this group."""
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)


def flatten_included(app: FastAPI, prefix: str) -> bool:
    """Replace the router ``app.include_router`` just appended with a :class:`RouteGroup`.

    Returns False (and changes nothing) when FastAPI's included router is not the lazy
    kind this relies on or holds a route that is not an ``APIRoute``.
    """
    included = app.router.routes[-1] if app.router.routes else None
    contexts_of = getattr(included, "effective_route_contexts", None)
    if contexts_of is None:
        return False
    contexts = list(contexts_of())
    if not all(isinstance(c.original_route, APIRoute) for c in contexts):
        return False
    routes: list[APIRoute] = []
    for c in contexts:
        route: APIRoute = c.original_route
        app.router.add_api_route(
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
        added = app.router.routes.pop()
        assert isinstance(added, APIRoute)
        routes.append(added)
    app.router.routes[-1] = RouteGroup(prefix, routes)
    return True


def expand_groups(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """``routes`` with each :class:`RouteGroup` replaced by its routes (for OpenAPI)."""
    out: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, RouteGroup):
            out.extend(route.routes)
        else:
            out.append(route)
    return out
