"""Booting the platform: load plugins, collect what they contribute, build the ASGI app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import MetaData

from platform_core import apidocs, db_outage, idempotency, problems
from platform_core.auth.cache import CredentialCache
from platform_core.auth.deps import PUBLIC_KEY, SCOPES_KEY, plugin_guard, route_scopes
from platform_core.config import Config, load_config, secret_key
from platform_core.context import PlatformContext
from platform_core.db import Database
from platform_core.events.patterns import valid_pattern
from platform_core.manager import PlatformPlugins, PluginRecord, PluginState
from platform_core.migrate import MigrationTarget, warn_leftover_tables
from platform_core.observability import Metrics, RequestMiddleware, plugin_metrics
from platform_core.retry import TransactionRetryMiddleware
from platform_core.routegate import gate_routers
from platform_core.routegroup import expand_groups, flatten_included, index_groups
from platform_core.specs import (
    ROLES,
    EventHandler,
    HealthCheck,
    JobSpec,
    MetricsSource,
    Models,
    NotificationRule,
    Permission,
)

log = logging.getLogger("platform_core.app")

_PROBLEM = {
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": desc, **_PROBLEM}
    for code, desc in {
        400: "Bad request",
        401: "Not authenticated",
        403: "Missing scope",
        404: "Not found",
        409: "Conflict",
        413: "Body too large",
        415: "Unsupported media type",
        422: "Validation failed",
        429: "Rate limited",
        503: "Plugin or dependency unavailable",
    }.items()
}


def internal_plugins() -> list[tuple[str, Any]]:
    """The core's own plugins, registered through the same hooks as any other."""
    from platform_core.builtins import core_plugin

    return [("core", core_plugin)]


def boot(
    config: Config | None = None,
    *,
    extra_plugins: dict[str, Any] | None = None,
    database_url: str | None = None,
    schema: str | None = None,
) -> PlatformContext:
    """Load the configuration and the enabled plugins; return the platform's context.

    ``extra_plugins`` registers plugin objects directly (tests, benchmarks); they count as
    enabled. Nothing touches the database here.
    """
    config = config or load_config()
    plugins = PlatformPlugins(config, internal=internal_plugins(), extra=extra_plugins).load()
    timeouts = config.core.database
    db = Database(
        database_url or config.core.database_url,
        schema=schema,
        connect_timeout=timeouts.connect_timeout_seconds,
        statement_timeout=timeouts.statement_timeout_seconds,
        pool_timeout=timeouts.pool_timeout_seconds,
        pool_size=timeouts.pool_size,
        max_overflow=timeouts.max_overflow,
    )
    ctx = PlatformContext(config=config, db=db, plugins=plugins, secret_key=secret_key(config))
    ctx.state["credential_cache"] = CredentialCache(config.core.auth.cache_seconds)
    _collect_permissions(ctx)
    ctx.state["migration_targets"] = _collect_models(ctx)
    _collect_jobs(ctx)
    _collect_event_handlers(ctx)
    _collect_health(ctx)
    _collect_metrics(ctx)
    _collect_notification_rules(ctx)
    refresh_scopes(ctx)
    ctx.plugins.check_strict()
    return ctx


def _collect_permissions(ctx: PlatformContext) -> None:
    perms: dict[str, Permission] = {}
    for rec, result in ctx.plugins.call("platform_permissions"):
        items = list(result or [])
        bad = [
            p
            for p in items
            if not isinstance(p, Permission)
            or not p.scope.startswith(f"{rec.name}:")
            or set(p.roles) - set(ROLES)
        ]
        if bad:
            ctx.plugins.isolate(
                rec.name,
                f"invalid permission {bad[0]!r}: scopes are "
                f"'{rec.name}:<action>' with roles from {ROLES}",
            )
            continue
        for p in items:
            perms[p.scope] = p
    ctx.state["declared_permissions"] = perms


def refresh_scopes(ctx: PlatformContext) -> None:
    """Recompute the scope table from the active plugins (after an isolation)."""
    active = {r.name for r in ctx.plugins.active_records()}
    perms = {
        s: p for s, p in ctx.state["declared_permissions"].items() if s.split(":")[0] in active
    }
    for name in active:
        for action in ("read", "write"):
            perms.setdefault(
                f"{name}:{action}",
                Permission(f"{name}:{action}", f"default {action} scope of {name}", ROLES),
            )
    ctx.permissions = perms
    ctx.state["role_scopes"] = {role: ctx.role_scopes(role) for role in ROLES}


def _collect_models(ctx: PlatformContext) -> list[MigrationTarget]:
    targets: dict[str, MigrationTarget] = {}
    for rec, models in ctx.plugins.call("platform_models"):
        if models is None:
            continue
        reason = _check_models(rec, models)
        if reason:
            ctx.plugins.isolate(rec.name, reason)
            continue
        targets[rec.name] = MigrationTarget(rec.name, models.metadata, Path(models.migrations))
    return [targets[r.name] for r in ctx.plugins.active_records() if r.name in targets]


def _check_models(rec: PluginRecord, models: Any) -> str:
    if not isinstance(models, Models) or not isinstance(models.metadata, MetaData):
        return "platform_models() must return platform_core.Models(metadata, migrations)"
    bad = [t for t in models.metadata.tables if not t.startswith(f"{rec.name}_")]
    if bad:
        return f"table {bad[0]!r} must be prefixed '{rec.name}_'"
    if not (Path(models.migrations) / "versions").is_dir():
        return f"migrations directory {models.migrations} has no versions/ folder"
    return ""


def _collect_jobs(ctx: PlatformContext) -> None:
    for rec, specs in ctx.plugins.call("platform_jobs", ctx=ctx):
        collected = {}
        for spec in specs or []:
            if not isinstance(spec, JobSpec) or (spec.every is not None and spec.cron is not None):
                ctx.plugins.isolate(
                    rec.name,
                    f"invalid job {spec!r}: a JobSpec with 'every' or "
                    "'cron' (not both), or neither for on-demand",
                )
                break
            collected[f"{rec.name}.{spec.name}"] = spec
        else:
            ctx.jobs.update(collected)


def _collect_items(
    ctx: PlatformContext, hook: str, kind: type, *, patterned: bool
) -> list[tuple[str, Any]]:
    """``(plugin, item)`` pairs from a hook returning a list of ``kind``; isolate misfits."""
    out: list[tuple[str, Any]] = []
    for rec, result in ctx.plugins.call(hook, ctx=ctx):
        items = list(result or [])
        ok = all(isinstance(i, kind) for i in items) and (
            not patterned or all(valid_pattern(getattr(i, "pattern", "")) for i in items)
        )
        if not ok:
            suffix = " with a valid pattern (a.b.c, a.* or *)" if patterned else ""
            ctx.plugins.isolate(rec.name, f"{hook}() must return {kind.__name__} items{suffix}")
            continue
        out.extend((rec.name, i) for i in items)
    return out


def _collect_event_handlers(ctx: PlatformContext) -> None:
    ctx.event_handlers = _collect_items(
        ctx, "platform_event_handlers", EventHandler, patterned=True
    )


def _collect_health(ctx: PlatformContext) -> None:
    ctx.health_checks = _collect_items(ctx, "platform_health", HealthCheck, patterned=False)


def _collect_metrics(ctx: PlatformContext) -> None:
    ctx.metrics_sources = _collect_items(ctx, "platform_metrics", MetricsSource, patterned=False)


def _collect_notification_rules(ctx: PlatformContext) -> None:
    ctx.notification_rules = _collect_items(
        ctx, "platform_notification_rules", NotificationRule, patterned=True
    )


def _drop_isolated(ctx: PlatformContext) -> None:
    """Forget what isolated plugins contributed after boot (jobs, handlers, checks)."""
    active = {r.name for r in ctx.plugins.active_records()}
    ctx.jobs = {k: v for k, v in ctx.jobs.items() if k.split(".")[0] in active}
    ctx.event_handlers = [(p, h) for p, h in ctx.event_handlers if p in active]
    ctx.health_checks = [(p, c) for p, c in ctx.health_checks if p in active]
    ctx.metrics_sources = [(p, m) for p, m in ctx.metrics_sources if p in active]
    ctx.notification_rules = [(p, r) for p, r in ctx.notification_rules if p in active]
    refresh_scopes(ctx)


def _mount_plugin_routes(app: FastAPI, ctx: PlatformContext) -> set[str]:
    """Mount every active plugin's routers; the names of the plugins whose routes are in."""
    mounted: set[str] = set()
    included: list[tuple[APIRouter, str]] = []
    for rec, routers in ctx.plugins.call("platform_routes", ctx=ctx):
        items = routers if isinstance(routers, list | tuple) else [routers]
        if not all(isinstance(r, APIRouter) for r in items):
            ctx.plugins.isolate(rec.name, "platform_routes() must return a list of APIRouter")
            continue
        mounted.add(rec.name)
        prefix = f"/api/{rec.name}"
        for router in items:
            _annotate_router(router, rec.name)
            app.include_router(
                router,
                prefix=prefix,
                tags=[rec.name],
                dependencies=[Depends(plugin_guard(rec.name))],
                responses=PROBLEM_RESPONSES,
                generate_unique_id_function=operation_id(rec.name),
            )
            if not flatten_included(app, prefix):  # one flat group: each route matched once
                included.append((router, prefix))
    gate_routers(included)  # a request skips the routers its path cannot be under
    index_groups(app)  # a request under /api/<plugin> goes straight to that plugin's groups
    return mounted


UNAVAILABLE_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _mount_unavailable(app: FastAPI, ctx: PlatformContext, mounted: set[str]) -> None:
    """Answer 503 under ``/api/<name>`` for enabled plugins that failed before mounting.

    Without this, the routes of a plugin that failed to load would be a plain 404, as if
    they never existed; the 503 names the plugin and the reason (hidden from OpenAPI).
    """
    for rec in ctx.plugins.records.values():
        if rec.internal or not rec.enabled or rec.active or rec.name in mounted:
            continue

        async def unavailable(request: Request, name: str = rec.name) -> Response:
            from platform_core.errors import ServiceUnavailable

            record = ctx.plugins.records[name]
            raise ServiceUnavailable(
                f"plugin {name!r} is {record.state.value}: {record.reason}",
                plugin=name,
                reason=record.reason,
            )

        for path in (f"/api/{rec.name}", f"/api/{rec.name}/{{rest:path}}"):
            app.add_api_route(
                path,
                unavailable,
                methods=UNAVAILABLE_METHODS,
                include_in_schema=False,
                name=f"unavailable_{rec.name}",
            )


def operation_id(plugin: str) -> Callable[[APIRoute], str]:
    """Operation ids ``<plugin>_<route function>`` (``scheduler_create_booking``).

    Short and stable names for generated clients; a test checks that they are unique.
    """

    def generate(route: APIRoute) -> str:
        return f"{plugin}_{route.name}".lower()

    return generate


def _annotate_router(router: APIRouter, plugin: str) -> None:
    """Annotate the plugin's own routes before inclusion (FastAPI copies or wraps them)."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            _annotate(route, plugin)
        nested = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps includes lazy
        if isinstance(nested, APIRouter):
            _annotate_router(nested, plugin)


def _annotate(route: APIRoute, plugin: str) -> None:
    """Write the operation's auth requirement into its OpenAPI entry (idempotent)."""
    scopes = route_scopes(plugin, route)
    extra = dict(route.openapi_extra or {})
    if scopes is None:
        extra.update({PUBLIC_KEY: True, "security": []})
    else:
        extra.update({SCOPES_KEY: scopes, "security": [{"bearer": []}, {"oauth2": scopes}]})
    route.openapi_extra = extra


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(
        title=app.title,
        version=app.version,
        routes=expand_groups(app.routes),
        description=app.description,
        tags=app.openapi_tags,
    )
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(
        {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A personal API token (plt_...) or an access token (JWT)",
            },
            "oauth2": {
                "type": "oauth2",
                "flows": {"password": {"tokenUrl": "/api/core/auth/token", "scopes": {}}},
            },
        }
    )
    components.setdefault("schemas", {})["Problem"] = {
        "type": "object",
        "title": "Problem",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "request_id": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    }
    app.openapi_schema = schema
    return schema


def create_app(ctx: PlatformContext) -> FastAPI:
    """The ASGI app for a booted platform: core endpoints plus every active plugin's routes."""
    from platform_core import __version__

    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.plugins.acall("platform_startup", ctx=ctx)
        ctx.plugins.check_strict()  # strict: a failed startup hook stops the server from starting
        _drop_isolated(ctx)
        await warn_leftover_tables(ctx.db, ctx.plugins.owners())
        _set_plugin_gauge(ctx, metrics)
        from platform_core.auth import invalidation
        from platform_core.notifications import live
        from platform_core.shared import close_clients

        stop_listening = asyncio.Event()
        listener = asyncio.create_task(invalidation.listen(ctx, stop_listening))
        live_listener = asyncio.create_task(live.listen(ctx, stop_listening))
        background = None
        if ctx.config.core.background:
            from platform_core.background import Background

            background = Background(ctx, "serve")
            background.start()
        from platform_core.background import job_runner

        log.info(
            "platform started",
            extra={
                "plugins": ",".join(r.name for r in ctx.plugins.active_records() if not r.internal)
            },
        )
        log.info("job runner: %s", job_runner(ctx))
        try:
            yield
        finally:
            if background is not None:
                await background.stop()
            stop_listening.set()
            await listener
            await live_listener
            await invalidation.flush(ctx)
            await live.flush(ctx)
            await ctx.plugins.acall("platform_shutdown", ctx=ctx, reverse=True, isolate=False)
            await close_clients(ctx)
            await ctx.db.dispose()

    app = FastAPI(
        title="Platform API",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served from local assets by platform_core.apidocs
        redoc_url=None,
        description="A plugin platform for domain backends; each plugin's API is under "
        "/api/<plugin>.",
        openapi_tags=[
            {"name": r.name, "description": r.meta.description or f"the {r.name} plugin"}
            for r in ctx.plugins.active_records()
        ],
    )
    app.state.platform = ctx
    app.state.metrics = metrics
    problems.install(app)
    db_outage.install(app)  # database outages: 503 + Retry-After instead of 500
    # Middleware added first runs innermost. The retry replays a deadlocked request; the
    # idempotency layer wraps it (a replay keeps its claimed key), and RequestMiddleware
    # wraps both (a replayed request keeps its request id and is logged and measured once).
    app.add_middleware(TransactionRetryMiddleware, engine=ctx.db.engine)
    idempotency.install(app, ctx)  # inside RequestMiddleware: stores responses without its headers
    app.add_middleware(RequestMiddleware, metrics=metrics, max_body=ctx.config.core.max_body_bytes)
    if ctx.config.core.trusted_proxies:  # outermost: the client address every layer sees
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=ctx.config.core.trusted_proxies)
    _mount_core_endpoints(app, ctx, metrics)
    apidocs.install(app)
    mounted = _mount_plugin_routes(app, ctx)
    ctx.plugins.check_strict()
    _drop_isolated(ctx)
    _mount_unavailable(app, ctx, mounted)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _set_plugin_gauge(ctx: PlatformContext, metrics: Metrics) -> None:
    for state in PluginState:
        metrics.plugins.labels(state.value).set(
            sum(1 for r in ctx.plugins.records.values() if r.state is state and not r.internal)
        )


def _mount_core_endpoints(app: FastAPI, ctx: PlatformContext, metrics: Metrics) -> None:
    """Liveness, readiness and metrics: outside /api, never behind a plugin."""

    ops_id = operation_id("ops")

    @app.get(
        "/healthz",
        tags=["ops"],
        openapi_extra={PUBLIC_KEY: True, "security": []},
        generate_unique_id_function=ops_id,
    )
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        generate_unique_id_function=ops_id,
        openapi_extra={PUBLIC_KEY: True, "security": []},
        responses={503: {"description": "Not ready"}},
    )
    async def readyz() -> JSONResponse:
        """Readiness: the database and every plugin's health checks pass; 503 from the
        moment the process was asked to stop (it still serves while draining).

        Enabled plugins that are isolated or missing are listed under ``plugins``; with
        ``[core] ready_with_isolated_plugins = false`` they make the answer 503.
        """
        from platform_core.health import readiness

        if ctx.state.get("draining"):
            return JSONResponse({"status": "draining", "checks": {}}, status_code=503)

        ok, body = await readiness(ctx)
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get(
        "/metrics",
        tags=["ops"],
        generate_unique_id_function=ops_id,
        openapi_extra={PUBLIC_KEY: True, "security": []},
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus(request: Request) -> Response:
        """Prometheus metrics in the text exposition format."""
        if not ctx.config.core.metrics_public:
            from platform_core.auth.deps import authenticate
            from platform_core.errors import Forbidden

            principal = await authenticate(request)
            if not principal.is_admin:
                raise Forbidden("metrics are restricted to admins")
        body = generate_latest(metrics.registry) + await plugin_metrics(ctx)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
