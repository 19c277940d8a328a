"""Thin HTTP layer over the auth service: login, the caller, users, API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request

from platform_core import PUBLIC, requires_scopes
from platform_core.auth import service, users
from platform_core.auth.deps import Caller, DbSession, get_context
from platform_core.auth.login_limits import login_limiter
from platform_core.auth.models import ApiToken
from platform_core.auth.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenOut,
    MeOut,
    PasswordReset,
    PasswordResetOut,
    TokenResponse,
    UserAuditOut,
    UserAuditPage,
    UserCreate,
    UserOut,
    UserUpdate,
)
from platform_core.auth.tokens import encode_jwt
from platform_core.errors import TooManyRequests, Unauthorized, invalid
from platform_core.http import NO_CONTENT, IdCursor, IdPath, Limit, OptionalId
from platform_core.pagination import DEFAULT_LIMIT
from platform_core.types import Line

router = APIRouter()
ADMIN = requires_scopes("core:admin")


@router.post("/auth/token", response_model=TokenResponse, openapi_extra=PUBLIC)
async def login(
    request: Request,
    session: DbSession,
    username: Annotated[Line, Form(max_length=64)],
    password: Annotated[Line, Form(max_length=1024)],
    scope: Annotated[Line, Form(max_length=4096)] = "",
) -> TokenResponse:
    """OAuth2 password flow: exchange a user name and password for a short-lived JWT.

    Failed attempts are limited per user name and per client address (shared by every
    process when Redis is configured; see docs/scaling.md).
    """
    ctx = get_context(request)
    limiter = login_limiter(ctx)
    address = request.client.host if request.client else "unknown"
    keys = (f"user:{username.lower()}", f"addr:{address}")
    wait, ticket = await limiter.acquire(keys)
    if wait:
        raise TooManyRequests(f"too many failed logins; retry in {wait}s", retry_after=wait)
    try:
        user = await service.authenticate(session, username, password)
    except BaseException:
        await limiter.settle(keys, ticket, outcome="aborted")
        raise
    if user is None:
        await limiter.settle(keys, ticket, outcome="failed")
        raise Unauthorized("invalid username or password", error="invalid_grant")
    await limiter.settle(keys, ticket, outcome="succeeded")
    held = ctx.state["role_scopes"][user.role]
    asked = set(scope.split()) if scope.strip() else set(held)
    granted = sorted(asked & held)
    ttl = timedelta(seconds=ctx.config.core.auth.jwt_ttl_seconds)
    token, _ = encode_jwt(ctx.secret_key, user.id, granted, ttl)
    return TokenResponse(
        access_token=token, expires_in=int(ttl.total_seconds()), scope=" ".join(granted)
    )


@router.get("/me", response_model=MeOut)
async def me(session: DbSession, caller: Caller) -> MeOut:
    """The caller and the scopes their credential holds."""
    user = await service.get_user(session, caller.user_id)
    return MeOut(**UserOut.model_validate(user).model_dump(), scopes=sorted(caller.scopes))


@router.get("/users", response_model=list[UserOut], openapi_extra=ADMIN)
async def list_users(session: DbSession) -> list[UserOut]:
    """Every user (admins only)."""
    return [UserOut.model_validate(u) for u in await service.list_users(session)]


def _actor(caller: service.Principal) -> users.Actor:
    return users.Actor(caller.username, caller.user_id)


@router.post("/users", response_model=UserOut, status_code=201, openapi_extra=ADMIN)
async def create_user(body: UserCreate, session: DbSession, caller: Caller) -> UserOut:
    """Create a user (admins only); 409 when the name is taken."""
    user = await users.create_user_recorded(
        session, _actor(caller), body.username, body.role, body.password
    )
    return UserOut.model_validate(user)


@router.get("/users/{user_id}", response_model=UserOut, openapi_extra=ADMIN)
async def get_user(user_id: IdPath, session: DbSession) -> UserOut:
    """One user (admins only)."""
    return UserOut.model_validate(await service.get_user(session, user_id))


@router.patch("/users/{user_id}", response_model=UserOut, openapi_extra=ADMIN)
async def update_user(
    request: Request, user_id: IdPath, body: UserUpdate, session: DbSession, caller: Caller
) -> UserOut:
    """Change a user's role, or deactivate (revoking their API tokens) or reactivate them.

    409 when the change would leave no active admin.
    """
    if body.role is None and body.is_active is None:
        raise invalid("body", "nothing to change: give role or is_active", location="body")
    user = await service.get_user(session, user_id)
    if body.role is not None:
        user = await users.set_role(session, _actor(caller), user_id, body.role)
    if body.is_active is not None:
        user = await users.set_active(session, _actor(caller), user_id, body.is_active)
    get_context(request).forget_credentials()
    return UserOut.model_validate(user)


@router.delete("/users/{user_id}", **NO_CONTENT, openapi_extra=ADMIN)
async def delete_user(
    request: Request, user_id: IdPath, session: DbSession, caller: Caller
) -> None:
    """Delete a user and their tokens (admins only); 409 for the last active admin."""
    await users.delete_user(session, _actor(caller), user_id)
    get_context(request).forget_credentials()


@router.post("/users/{user_id}/password", response_model=PasswordResetOut, openapi_extra=ADMIN)
async def reset_password(
    request: Request, user_id: IdPath, body: PasswordReset, session: DbSession, caller: Caller
) -> PasswordResetOut:
    """Set a user's password (admins only); without one, a generated password is returned once.

    The old password is never shown. ``revoke_tokens`` also revokes their API tokens.
    """
    generated = await users.reset_password(
        session, _actor(caller), user_id, body.password, revoke_tokens=body.revoke_tokens
    )
    user = await service.get_user(session, user_id)
    if body.revoke_tokens:
        get_context(request).forget_credentials()
    return PasswordResetOut(user_id=user.id, username=user.username, generated_password=generated)


@router.get("/audit/users", response_model=UserAuditPage, openapi_extra=ADMIN)
async def user_audit(
    session: DbSession,
    user_id: OptionalId = None,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> UserAuditPage:
    """Every recorded change to user accounts, newest first (admins only)."""
    rows, nxt = await users.list_audit(session, user_id=user_id, cursor=cursor, limit=limit)
    return UserAuditPage(items=[UserAuditOut.model_validate(r) for r in rows], next_cursor=nxt)


def token_out(token: ApiToken) -> ApiTokenOut:
    """The API view of a token record."""
    return ApiTokenOut(
        id=token.id,
        user_id=token.user_id,
        name=token.name,
        prefix=token.prefix,
        scopes=token.scopes,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
        state=service.token_state(token),
    )


@router.get("/tokens", response_model=list[ApiTokenOut])
async def list_tokens(session: DbSession, caller: Caller) -> list[ApiTokenOut]:
    """The caller's own API tokens (never their secrets)."""
    return [token_out(t) for t in await service.list_tokens(session, caller.user_id)]


@router.post("/tokens", response_model=ApiTokenCreated, status_code=201)
async def create_token(
    request: Request, body: ApiTokenCreate, session: DbSession, caller: Caller
) -> ApiTokenCreated:
    """Create a personal API token for the caller; the secret is in this response only.

    A token cannot hold a scope its creator's credential does not hold.
    """
    ctx = get_context(request)
    user = await service.get_user(session, caller.user_id)
    expires = service.parse_duration(body.expires_in) if body.expires_in else None
    scopes = body.scopes if body.scopes is not None else sorted(caller.scopes)
    token, secret = await service.create_token(
        session,
        user,
        scopes=scopes,
        known_scopes=frozenset(ctx.permissions),
        role_scopes=caller.scopes,
        expires_in=expires,
        name=body.name,
    )
    return ApiTokenCreated(**token_out(token).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(
    request: Request, token_id: IdPath, session: DbSession, caller: Caller
) -> None:
    """Revoke one of the caller's tokens (admins: anyone's); idempotent."""
    owner = None if caller.has("core:admin") else caller.user_id
    await service.revoke_token(session, token_id, owner_id=owner)
    get_context(request).forget_credentials()
