"""Routes: a user's apps, their revisions, rollback, switches, and what the cluster says."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from platform_core import DEFAULT_LIMIT, Caller, DbSession, IdCursor, IdPath, Limit, OptionalId
from platform_deployments.models import App
from platform_deployments.routes.deps import EnvDep, cluster_of
from platform_deployments.schemas.apps import (
    Accepted,
    AppCreate,
    AppOut,
    AppPage,
    AppState,
    AppUpdate,
    EventList,
    LogOut,
    PodList,
    RevisionList,
    RollbackIn,
    StatusOut,
)
from platform_deployments.service import apps as service
from platform_deployments.service import status

router = APIRouter(prefix="/apps", tags=["deployments: apps"])
POD = r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$"
CONTAINER = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ACCEPTED: dict[str, Any] = {"response_model": Accepted, "status_code": 202}


def accepted(app: App, snapshot: dict[str, Any]) -> Accepted:
    """The 202 answer of a stored change."""
    return Accepted(app=service.app_out(app, snapshot), revision=app.revision)


@router.get("", response_model=AppPage)
async def list_apps(
    session: DbSession,
    caller: Caller,
    user_id: OptionalId = None,
    state: Annotated[AppState | None, Query()] = None,
    cursor: IdCursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> AppPage:
    """Your apps (admins: everyone's, or one user's with ``user_id``)."""
    rows, nxt = await service.list_apps(
        session, caller, user_id=user_id, state=state, cursor=cursor, limit=limit
    )
    return AppPage(items=[service.app_out(a, s) for a, s in rows], next_cursor=nxt)


@router.post("", **ACCEPTED)
async def create_app(session: DbSession, caller: Caller, env: EnvDep, body: AppCreate) -> Accepted:
    """Create an app from a template; the apply job deploys it (202 with revision 1)."""
    return accepted(*await service.create_app(session, env, caller, body))


@router.get("/{app_id}", response_model=AppOut)
async def get_app(session: DbSession, caller: Caller, app_id: IdPath) -> AppOut:
    """One of your apps (admins: any)."""
    app = await service.get_app(session, caller, app_id)
    return service.app_out(app, await service.snapshot_of(session, app))


@router.patch("/{app_id}", **ACCEPTED)
async def update_app(
    session: DbSession, caller: Caller, env: EnvDep, app_id: IdPath, body: AppUpdate
) -> Accepted:
    """Change variables, image tag, replicas, resources or host: a new revision (202)."""
    return accepted(*await service.update_app(session, env, caller, app_id, body))


@router.delete("/{app_id}", **ACCEPTED)
async def delete_app(session: DbSession, caller: Caller, app_id: IdPath) -> Accepted:
    """Delete the app: its objects go first, its row once the cluster confirms (202)."""
    return accepted(*await service.request_delete(session, caller, app_id))


@router.get("/{app_id}/revisions", response_model=RevisionList)
async def list_revisions(session: DbSession, caller: Caller, app_id: IdPath) -> RevisionList:
    """The app's kept revisions, newest first (secret values never shown)."""
    app = await service.get_app(session, caller, app_id)
    rows = await service.revisions(session, app)
    return RevisionList(items=[service.revision_out(r, app.revision) for r in rows])


@router.post("/{app_id}/rollback", **ACCEPTED)
async def rollback(
    session: DbSession, caller: Caller, env: EnvDep, app_id: IdPath, body: RollbackIn
) -> Accepted:
    """Apply an older revision's snapshot again, as a new revision (202)."""
    return accepted(*await service.rollback(session, env, caller, app_id, body.revision))


@router.post("/{app_id}/stop", **ACCEPTED)
async def stop_app(session: DbSession, caller: Caller, app_id: IdPath) -> Accepted:
    """Scale the app to zero (202)."""
    return accepted(*await service.stop(session, caller, app_id))


@router.post("/{app_id}/start", **ACCEPTED)
async def start_app(session: DbSession, caller: Caller, app_id: IdPath) -> Accepted:
    """Scale the app back to its replicas (202)."""
    return accepted(*await service.start(session, caller, app_id))


@router.post("/{app_id}/restart", **ACCEPTED)
async def restart_app(session: DbSession, caller: Caller, app_id: IdPath) -> Accepted:
    """Restart the app's pods with a rollout restart (202)."""
    return accepted(*await service.restart(session, caller, app_id))


@router.get("/{app_id}/status", response_model=StatusOut)
async def app_status(session: DbSession, caller: Caller, env: EnvDep, app_id: IdPath) -> StatusOut:
    """Rollout state and pods from the cluster, with the app's sync state (503 if unreachable)."""
    app = await service.get_app(session, caller, app_id)
    out = service.app_out(app, await service.snapshot_of(session, app))
    async with cluster_of(env, app) as gw:
        deployment = await status.deployment(gw, app)
        pods = await status.pods(gw, app)
    return StatusOut(app=out, rollout=status.rollout(deployment, stopped=app.stopped), pods=pods)


@router.get("/{app_id}/pods", response_model=PodList)
async def app_pods(session: DbSession, caller: Caller, env: EnvDep, app_id: IdPath) -> PodList:
    """The app's pods: phase, readiness, restarts."""
    app = await service.get_app(session, caller, app_id)
    async with cluster_of(env, app) as gw:
        return PodList(items=await status.pods(gw, app))


@router.get("/{app_id}/events", response_model=EventList)
async def app_events(
    session: DbSession,
    caller: Caller,
    env: EnvDep,
    app_id: IdPath,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> EventList:
    """Recent Kubernetes events of the app's objects and pods (owner and admins only)."""
    app = await service.get_app(session, caller, app_id)
    async with cluster_of(env, app) as gw:
        return EventList(items=await status.events(gw, app, limit=limit))


@router.get("/{app_id}/logs", response_model=LogOut)
async def app_logs(
    session: DbSession,
    caller: Caller,
    env: EnvDep,
    app_id: IdPath,
    pod: Annotated[str, Query(pattern=POD, max_length=253)],
    container: Annotated[str | None, Query(pattern=CONTAINER, max_length=63)] = None,
    tail: Annotated[int, Query(ge=1, le=10_000)] = 100,
    since_seconds: Annotated[int | None, Query(ge=1, le=30 * 86400)] = None,
) -> LogOut:
    """The last ``tail`` lines of one of the app's pods (owner and admins only)."""
    app = await service.get_app(session, caller, app_id)
    async with cluster_of(env, app) as gw:
        lines = await status.logs(
            gw, app, pod, container=container, tail=tail, since_seconds=since_seconds
        )
    return LogOut(pod=pod, container=container, lines=lines)
