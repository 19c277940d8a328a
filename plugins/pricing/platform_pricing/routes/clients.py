"""Routes: clients (tenants) and their API tokens; thin over ``service.clients``."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from platform_core import (
    DEFAULT_LIMIT,
    NO_CONTENT,
    ApiToken,
    DbSession,
    IdCursor,
    IdPath,
    Limit,
    get_context,
    requires_scopes,
    token_state,
)
from platform_pricing.models import Client
from platform_pricing.routes.deps import Settings, TenantDep
from platform_pricing.schemas.clients import (
    ClientIn,
    ClientOut,
    ClientPage,
    ClientPatch,
    ClientTokenCreated,
    ClientTokenIn,
    ClientTokenList,
    ClientTokenOut,
)
from platform_pricing.service import clients as service
from platform_pricing.settings import PricingSettings

router = APIRouter()
log = logging.getLogger(__name__)

ADMIN = requires_scopes("pricing:admin")
ANY_CALLER = requires_scopes()


def client_out(client: Client, settings: PricingSettings) -> ClientOut:
    """The API view of a client."""
    return ClientOut(
        id=client.id,
        name=client.name,
        display_name=client.display_name,
        policy=dict(client.policy or {}),
        effective_policy=service.effective_policy(client, settings.policy),
        engine=client.engine,
        is_active=client.is_active,
        created_at=client.created_at,
    )


def token_out(token: ApiToken) -> ClientTokenOut:
    """The API view of a client token (never its secret)."""
    return ClientTokenOut(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        scopes=list(token.scopes or []),
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
        state=token_state(token),  # type: ignore[arg-type]
    )


def _engine_names(request: Request) -> set[str]:
    from platform_pricing.service.decisions import collect_engines

    return set(collect_engines(get_context(request).plugins))


def _forget_credentials(request: Request) -> None:
    # Revoked tokens must stop working at once in this process (the core does the same).
    get_context(request).forget_credentials()


@router.post("/clients", response_model=ClientOut, status_code=201, openapi_extra=ADMIN)
async def create_client(data: ClientIn, session: DbSession, settings: Settings) -> ClientOut:
    """Create a client (admins only); 409 when the name is taken."""
    client = await service.create_client(
        session,
        name=data.name,
        display_name=data.display_name,
        policy=data.policy.model_dump(exclude_none=True) if data.policy else None,
    )
    return client_out(client, settings)


@router.get("/clients", response_model=ClientPage, openapi_extra=ANY_CALLER)
async def list_clients(
    session: DbSession,
    tenant: TenantDep,
    settings: Settings,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> ClientPage:
    """Every client by id (admins); a client sees only itself; cursor paged."""
    rows, nxt = await service.list_clients(session, tenant, cursor=cursor, limit=limit)
    return ClientPage(items=[client_out(c, settings) for c in rows], next_cursor=nxt)


@router.get("/clients/{client_id}", response_model=ClientOut, openapi_extra=ANY_CALLER)
async def get_client(
    client_id: IdPath, session: DbSession, tenant: TenantDep, settings: Settings
) -> ClientOut:
    """One client (404 for another client's id)."""
    return client_out(await service.get_client(session, tenant, client_id), settings)


@router.patch("/clients/{client_id}", response_model=ClientOut, openapi_extra=ANY_CALLER)
async def update_client(
    client_id: IdPath,
    data: ClientPatch,
    request: Request,
    session: DbSession,
    tenant: TenantDep,
    settings: Settings,
) -> ClientOut:
    """Admins change display_name, is_active and engine; a client admin changes its policy.

    ``policy`` is merged key by key into the overrides; a key set to null drops it.
    """
    changes = data.model_dump(exclude_unset=True)
    if data.policy is not None:
        changes["policy"] = data.policy.model_dump(exclude_unset=True)
    engines = _engine_names(request) if "engine" in changes else set()
    client = await service.update_client(session, tenant, client_id, changes, engines=engines)
    return client_out(client, settings)


@router.delete("/clients/{client_id}", openapi_extra=ADMIN, **NO_CONTENT)
async def delete_client(client_id: IdPath, request: Request, session: DbSession) -> Response:
    """Delete a client and all its data (admins only); its tokens stop working."""
    await service.delete_client(session, client_id)
    _forget_credentials(request)
    return Response(status_code=204)


@router.post(
    "/clients/{client_id}/tokens",
    response_model=ClientTokenCreated,
    status_code=201,
    openapi_extra=ADMIN,
)
async def create_client_token(
    client_id: IdPath,
    data: ClientTokenIn,
    request: Request,
    session: DbSession,
    settings: Settings,
) -> ClientTokenCreated:
    """A token for the client (``admin``: also pricing:client_admin); the secret shows once."""
    ctx = get_context(request)
    token, secret = await service.create_client_token(
        session,
        client_id,
        name=data.name,
        admin=data.admin,
        expires_in=data.expires_in,
        known_scopes=frozenset(ctx.permissions),
        role_scopes=ctx.scopes_by_role,
        default_days=settings.client_token_days,
    )
    return ClientTokenCreated(
        id=token.id,
        name=token.name,
        token=secret,
        scopes=list(token.scopes or []),
        expires_at=token.expires_at,
    )


@router.get("/clients/{client_id}/tokens", response_model=ClientTokenList, openapi_extra=ADMIN)
async def list_client_tokens(client_id: IdPath, session: DbSession) -> ClientTokenList:
    """The client's tokens (admins only; never the secrets); not paged."""
    rows = await service.list_client_tokens(session, client_id)
    return ClientTokenList(items=[token_out(t) for t in rows])


@router.delete("/clients/{client_id}/tokens/{token_id}", openapi_extra=ADMIN, **NO_CONTENT)
async def revoke_client_token(
    client_id: IdPath, token_id: IdPath, request: Request, session: DbSession
) -> Response:
    """Revoke one of the client's tokens (admins only; idempotent)."""
    await service.revoke_client_token(session, client_id, token_id)
    _forget_credentials(request)
    return Response(status_code=204)
