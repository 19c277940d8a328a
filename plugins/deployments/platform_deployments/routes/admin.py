"""Routes: quotas (yours; everyone's for admins), totals, suspend, force delete, drop a database."""

from __future__ import annotations

from fastapi import APIRouter

from platform_core import NO_CONTENT, Caller, DbSession, IdPath, requires_scopes
from platform_deployments.routes.deps import EnvDep
from platform_deployments.schemas.apps import AppPage
from platform_deployments.schemas.quotas import QuotaIn, QuotaList, QuotaOut, Totals
from platform_deployments.service import admin, mongo, quotas
from platform_deployments.service import apps as apps_service

router = APIRouter(tags=["deployments: quotas and admin"])
ADMIN = requires_scopes("deployments:admin")


@router.get("/quotas", response_model=QuotaOut)
async def my_quota(session: DbSession, caller: Caller, env: EnvDep) -> QuotaOut:
    """Your quota and what your apps request of it."""
    return await quotas.quota_out(session, env.settings, caller.user_id)


@router.get("/admin/quotas", response_model=QuotaList, openapi_extra=ADMIN)
async def all_quotas(session: DbSession, env: EnvDep) -> QuotaList:
    """Every user with apps, a database or an override (admins)."""
    users = await quotas.known_users(session)
    return QuotaList(items=[await quotas.quota_out(session, env.settings, u) for u in users])


@router.put("/admin/quotas/{user_id}", response_model=QuotaOut, openapi_extra=ADMIN)
async def set_quota(session: DbSession, env: EnvDep, user_id: IdPath, body: QuotaIn) -> QuotaOut:
    """Override a user's quota (admins)."""
    await quotas.set_quota(session, user_id, body)
    return await quotas.quota_out(session, env.settings, user_id)


@router.delete("/admin/quotas/{user_id}", openapi_extra=ADMIN, **NO_CONTENT)
async def clear_quota(session: DbSession, user_id: IdPath) -> None:
    """Back to the default quota (admins)."""
    await quotas.clear_quota(session, user_id)


@router.get("/admin/totals", response_model=Totals, openapi_extra=ADMIN)
async def totals(session: DbSession) -> Totals:
    """Platform totals: apps by state, replicas, requests, MongoDB storage (admins)."""
    return await quotas.totals(session)


@router.post("/admin/users/{user_id}/suspend", response_model=AppPage, openapi_extra=ADMIN)
async def suspend_user(session: DbSession, caller: Caller, user_id: IdPath) -> AppPage:
    """Stop every app of a user (scale to 0) (admins)."""
    rows = await admin.suspend_user(session, caller, user_id)
    return AppPage(items=[apps_service.app_out(a, s) for a, s in rows], next_cursor=None)


@router.delete("/admin/apps/{app_id}", openapi_extra=ADMIN, **NO_CONTENT)
async def force_delete(session: DbSession, caller: Caller, app_id: IdPath) -> None:
    """Remove an app's row now (admins); the cleanup job removes its orphaned objects."""
    await apps_service.force_delete(session, caller, app_id)


@router.delete("/admin/mongo/{user_id}", openapi_extra=ADMIN, **NO_CONTENT)
async def drop_database(session: DbSession, env: EnvDep, user_id: IdPath) -> None:
    """Drop a user's MongoDB user and database (admins)."""
    await mongo.drop(session, env, user_id)
