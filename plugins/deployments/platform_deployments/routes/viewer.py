"""Routes: the caller's MongoDB viewer (start, stop, status)."""

from __future__ import annotations

from fastapi import APIRouter

from platform_core import Caller, DbSession
from platform_deployments.models import Viewer
from platform_deployments.routes.deps import EnvDep
from platform_deployments.schemas.mongo import ViewerOut
from platform_deployments.service import viewer as service
from platform_deployments.service.apps import Env

router = APIRouter(prefix="/viewer", tags=["deployments: mongo"])


def viewer_out(env: Env, row: Viewer) -> ViewerOut:
    """The owner's view, with the basic-auth login."""
    scheme = "https" if env.settings.tls else "http"
    return ViewerOut(
        user_id=row.user_id,
        state=row.state,
        namespace=row.namespace,
        url=f"{scheme}://{row.host}/" if row.host else None,
        username=row.username,
        password=env.box.open(row.password_enc),
        started_at=row.started_at,
        last_used_at=row.last_used_at,
        stopped_at=row.stopped_at,
    )


@router.get("", response_model=ViewerOut)
async def viewer_status(session: DbSession, caller: Caller, env: EnvDep) -> ViewerOut:
    """Your viewer's state and login (reading it counts as use)."""
    return viewer_out(env, await service.touch(session, caller.user_id))


@router.post("/start", response_model=ViewerOut)
async def start_viewer(session: DbSession, caller: Caller, env: EnvDep) -> ViewerOut:
    """Deploy your viewer (mongo-express with your database's credentials, basic auth)."""
    return viewer_out(env, await service.start(session, env, caller.user_id))


@router.post("/stop", response_model=ViewerOut)
async def stop_viewer(session: DbSession, caller: Caller, env: EnvDep) -> ViewerOut:
    """Remove your viewer from the cluster."""
    return viewer_out(env, await service.stop(session, env, caller.user_id))
