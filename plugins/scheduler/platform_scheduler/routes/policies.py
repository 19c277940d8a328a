"""Routes of policies."""

from __future__ import annotations

from fastapi import APIRouter, Response

from platform_core import NO_CONTENT, DbSession, IdPath
from platform_scheduler import service
from platform_scheduler.routes.deps import ADMIN
from platform_scheduler.schemas.policies import PolicyIn, PolicyOut, PolicyPatch

router = APIRouter()


# -- policies ---------------------------------------------------------------------------


@router.get("/policies", response_model=list[PolicyOut])
async def list_policies(session: DbSession) -> list[PolicyOut]:
    """Every booking policy."""
    return [PolicyOut.model_validate(p) for p in await service.list_policies(session)]


@router.post("/policies", response_model=PolicyOut, status_code=201, openapi_extra=ADMIN)
async def create_policy(data: PolicyIn, session: DbSession) -> PolicyOut:
    """Create a policy for a device type or a tag (admins)."""
    return PolicyOut.model_validate(await service.create_policy(session, data.model_dump()))


@router.get("/policies/{policy_id}", response_model=PolicyOut)
async def get_policy(policy_id: IdPath, session: DbSession) -> PolicyOut:
    """One policy."""
    return PolicyOut.model_validate(await service.get_policy(session, policy_id))


@router.patch("/policies/{policy_id}", response_model=PolicyOut, openapi_extra=ADMIN)
async def update_policy(policy_id: IdPath, data: PolicyPatch, session: DbSession) -> PolicyOut:
    """Change a policy (admins)."""
    policy = await service.update_policy(session, policy_id, data.model_dump(exclude_unset=True))
    return PolicyOut.model_validate(policy)


@router.delete("/policies/{policy_id}", **NO_CONTENT, openapi_extra=ADMIN)
async def delete_policy(policy_id: IdPath, session: DbSession) -> Response:
    """Delete a policy (admins)."""
    await service.delete_policy(session, policy_id)
    return Response(status_code=204)
