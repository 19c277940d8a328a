"""Clients (tenants): their records, policy overrides and API tokens (robot users' tokens).

A client's API identity is a core robot user (role ``member``, username
``pricing-client-<name>``); its tokens are core API tokens of that user scoped
``pricing:client`` (plus ``pricing:client_admin`` for admin tokens) and ``core:read`` (the
client's notification inbox). Deleting a client
retires its robot users: their tokens are revoked, they are deactivated and renamed so the
name can be used again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import (
    ApiToken,
    Conflict,
    Forbidden,
    NotFound,
    User,
    create_token,
    create_user,
    get_user,
    invalid,
    list_tokens,
    page_by_id,
    parse_duration,
    revoke_token,
    utcnow,
)
from platform_pricing import tenancy
from platform_pricing.models import (
    Agent,
    Client,
    ClientSnapshot,
    HourlyPrice,
    MonthlySavings,
    PricePoint,
)
from platform_pricing.settings import PolicySettings
from platform_pricing.tenancy import CLIENT_ADMIN_SCOPE, CLIENT_SCOPE, Tenant

CLIENT_USER_PREFIX = "pricing-client-"
RETIRED_USER_PREFIX = "pricing-retired-"
CORE_READ = "core:read"


def effective_policy(client: Client, defaults: PolicySettings) -> dict[str, Any]:
    """The client's overrides over the platform's defaults, every key present."""
    return defaults.model_dump() | dict(client.policy or {})


async def create_client(
    session: AsyncSession,
    *,
    name: str,
    display_name: str = "",
    policy: Mapping[str, Any] | None = None,
) -> Client:
    """Create a client and its robot user; ``Conflict`` when the name is taken."""
    if await session.scalar(select(Client.id).where(Client.name == name)) is not None:
        raise Conflict(f"client {name!r} already exists", field="name")
    user = await create_user(session, CLIENT_USER_PREFIX + name, "member", None)
    client = Client(
        name=name,
        display_name=display_name,
        user_id=user.id,
        policy={k: v for k, v in (policy or {}).items() if v is not None},
        engine=None,
        is_active=True,
        created_at=utcnow(),
    )
    session.add(client)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # a concurrent create with the same name won the race
        raise Conflict(f"client {name!r} already exists", field="name") from exc
    return client


async def list_clients(
    session: AsyncSession,
    tenant: Tenant,
    *,
    cursor: int | None = None,
    limit: int | None = None,
) -> tuple[list[Client], int | None]:
    """A page of clients by id (the admin: every client; a client sees only itself) and the
    next page's cursor (None at the end; ``limit`` None: every client)."""
    _refuse_agents(tenant)
    stmt = select(Client).where(tenant.where(Client.id))
    return await page_by_id(session, stmt, Client.id, cursor=cursor, limit=limit)


async def get_client(session: AsyncSession, tenant: Tenant, client_id: int) -> Client:
    """A client the caller may see (404 otherwise)."""
    _refuse_agents(tenant)
    return await tenancy.get_client(session, tenant, client_id)


async def update_client(
    session: AsyncSession,
    tenant: Tenant,
    client_id: int,
    changes: Mapping[str, Any],
    *,
    engines: Iterable[str],
) -> Client:
    """Apply ``changes``: the admin may change anything, a client admin only the policy.

    ``policy`` is merged key by key into the current overrides (``None`` drops a key);
    ``engine`` must be one of ``engines`` (``None`` returns to the platform's choice).
    """
    client = await get_client(session, tenant, client_id)
    admin_only = sorted(k for k in ("display_name", "is_active", "engine") if k in changes)
    if admin_only and not tenant.is_admin:
        raise Forbidden(f"only a pricing admin may change {', '.join(admin_only)}")
    if "policy" in changes:
        tenancy.require_client_admin(tenant)
        merged = dict(client.policy or {})
        for key, value in (changes["policy"] or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        client.policy = merged
    if "engine" in changes:
        engine = changes["engine"]
        known = set(engines)
        if engine is not None and engine not in known:
            raise invalid("engine", f"unknown engine {engine!r}; known: {', '.join(sorted(known))}")
        client.engine = engine
    if changes.get("display_name") is not None:
        client.display_name = changes["display_name"]
    if changes.get("is_active") is not None:
        client.is_active = changes["is_active"]
    await session.flush()
    return client


async def delete_client(session: AsyncSession, client_id: int) -> None:
    """Delete a client with everything it owns; its robot users (and agents') are retired."""
    client = await _client(session, client_id)
    agent_users = await session.scalars(select(Agent.user_id).where(Agent.client_id == client.id))
    await retire_users(session, [client.user_id, *agent_users.all()])
    # Tables keyed by client_id without a foreign key (bulk data) are emptied explicitly;
    # the rest follows the client's row through ON DELETE CASCADE.
    for model in (PricePoint, HourlyPrice, ClientSnapshot, MonthlySavings):
        await session.execute(delete(model).where(model.client_id == client.id))
    await session.execute(delete(Client).where(Client.id == client.id))


# -- tokens ------------------------------------------------------------------------------------


async def create_client_token(
    session: AsyncSession,
    client_id: int,
    *,
    name: str,
    admin: bool,
    expires_in: str | None,
    known_scopes: frozenset[str],
    role_scopes: Mapping[str, frozenset[str]],
    default_days: int = 0,
) -> tuple[ApiToken, str]:
    """A new token of the client's robot user; returns the record and the secret.

    Without ``expires_in`` it expires after ``default_days`` (``[plugins.pricing]
    client_token_days``; 0: never).
    """
    client = await _client(session, client_id)
    user = await get_user(session, client.user_id)
    # core:read lets the client read its own inbox (/api/core/notifications) and /me.
    scopes = [CORE_READ, CLIENT_SCOPE] + ([CLIENT_ADMIN_SCOPE] if admin else [])
    return await create_token(
        session,
        user,
        scopes=scopes,
        known_scopes=known_scopes,
        role_scopes=role_scopes.get(user.role, frozenset()),
        expires_in=parse_duration(expires_in)
        if expires_in
        else (timedelta(days=default_days) if default_days else None),
        name=name,
    )


async def list_client_tokens(session: AsyncSession, client_id: int) -> list[ApiToken]:
    """The client's tokens (never their secrets)."""
    client = await _client(session, client_id)
    return await list_tokens(session, client.user_id)


async def revoke_client_token(session: AsyncSession, client_id: int, token_id: int) -> ApiToken:
    """Revoke one of the client's tokens (idempotent); 404 for another user's token."""
    client = await _client(session, client_id)
    return await revoke_token(session, token_id, owner_id=client.user_id)


async def retire_users(session: AsyncSession, user_ids: Iterable[int]) -> None:
    """Revoke the robot users' tokens, deactivate them and free their names."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    now = utcnow()
    tokens = await session.scalars(
        select(ApiToken).where(ApiToken.user_id.in_(ids), ApiToken.revoked_at.is_(None))
    )
    for token in tokens:
        token.revoked_at = now
    for user in await session.scalars(select(User).where(User.id.in_(ids))):
        user.is_active = False
        user.username = f"{RETIRED_USER_PREFIX}{user.id}"
    await session.flush()


async def _client(session: AsyncSession, client_id: int) -> Client:
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFound(f"client {client_id} not found")
    return client


def _refuse_agents(tenant: Tenant) -> None:
    if tenant.kind == "agent":
        raise Forbidden("agent tokens cannot read client records")
