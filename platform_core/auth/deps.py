"""FastAPI dependencies: the per-plugin guard (state, authentication, scopes, media type)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core._deprecation import moved_names
from platform_core.auth.cache import CredentialCache
from platform_core.auth.service import Principal, resolve_credential
from platform_core.context import PlatformContext
from platform_core.errors import Forbidden, ServiceUnavailable, Unauthorized, UnsupportedMediaType
from platform_core.retry import replay_safe

PUBLIC_KEY = "x-public"
SCOPES_KEY = "x-scopes"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_context(request: Request) -> PlatformContext:
    """The running platform's context."""
    ctx: PlatformContext = request.app.state.platform
    return ctx


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A database session in a transaction, committed before the response is sent.

    What ``ctx.db.session()`` does, written out: one generator layer less on every request.
    """
    sessionmaker = request.app.state.platform.db.sessionmaker
    async with sessionmaker() as session, session.begin():
        yield session


def default_scopes(plugin: str, method: str) -> list[str]:
    """``<plugin>:read`` for reads, ``<plugin>:write`` otherwise."""
    return [f"{plugin}:read" if method.upper() in READ_METHODS else f"{plugin}:write"]


def route_scopes(plugin: str, route: Any) -> list[str] | None:
    """The scopes an operation needs; None when it is public."""
    extra = getattr(route, "openapi_extra", None) or {}
    if extra.get(PUBLIC_KEY):
        return None
    scopes = extra.get(SCOPES_KEY)
    if scopes is not None:
        return list(scopes)
    methods = sorted(getattr(route, "methods", None) or {"GET"})
    return default_scopes(plugin, methods[0])


async def authenticate(request: Request) -> Principal:
    """The caller behind the ``Authorization: Bearer`` header, or ``Unauthorized``."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    ctx = get_context(request)
    cache: CredentialCache = ctx.state["credential_cache"]
    credential = credential.strip()

    async def resolve() -> Principal | None:
        with replay_safe():  # a token's last use may be recorded twice
            async with ctx.db.session() as session:
                return await resolve_credential(
                    session,
                    credential,
                    secret_key=ctx.secret_key,
                    role_scopes=ctx.state["role_scopes"],
                )

    principal = await cache.get_or_resolve(credential, resolve)
    if principal is None:
        raise Unauthorized("invalid, expired or revoked credentials")
    request.state.principal = principal
    return principal


def _check_media_type(request: Request, route: Any) -> None:
    if request.method in READ_METHODS or request.method == "DELETE":
        return
    body_field = getattr(route, "body_field", None)
    extra = getattr(route, "openapi_extra", None) or {}
    accepted = extra.get("x-content-types")  # declared by routes reading the raw body
    if body_field is None and accepted is None:
        return
    if not (
        request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    ):
        return
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if accepted is None:
        from fastapi import params

        info = getattr(body_field, "field_info", None)
        if isinstance(info, params.Form | params.File):
            accepted = ["application/x-www-form-urlencoded", "multipart/form-data"]
        else:
            accepted = ["application/json"]
    if media not in accepted and not (media.endswith("+json") and "application/json" in accepted):
        raise UnsupportedMediaType(
            f"content type {media or '(none)'!r} is not accepted; use {', '.join(accepted)}"
        )


def plugin_guard(plugin: str) -> Callable[[Request], Coroutine[Any, Any, Principal | None]]:
    """The dependency every route of ``plugin`` runs first."""

    async def guard(request: Request) -> Principal | None:
        ctx = get_context(request)
        rec = ctx.plugins.records.get(plugin)
        if rec is None or not rec.active:
            reason = rec.reason if rec else "not loaded"
            raise ServiceUnavailable(f"plugin {plugin!r} is unavailable: {reason}")
        route = request.scope.get("route")
        scopes = route_scopes(plugin, route)
        principal = None
        if scopes is not None:
            principal = await authenticate(request)
            missing = [s for s in scopes if s not in principal.scopes]
            if missing:
                raise Forbidden(f"this operation needs scope {missing[0]!r}")
        _check_media_type(request, route)
        return principal

    return guard


async def current_principal(request: Request) -> Principal:
    """The authenticated caller (the guard has already checked scopes)."""
    return await authenticate(request)


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
"""A route parameter type: a session committed before the response is sent."""

Caller = Annotated[Principal, Depends(current_principal)]
"""A route parameter type: the authenticated caller."""


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "get_context": "platform_core.get_context",
        "DbSession": "platform_core.DbSession",
        "Caller": "platform_core.Caller",
        "get_session": "platform_core.DbSession",
        "current_principal": "platform_core.Caller",
    },
)
