"""Routes: an agent's standby replicas, their status and sync reports, and promotion.

Clients (and admins) create, change and delete replicas; the agent reports their status and
sync; a client admin (or admin) promotes. Other clients get 404 for everything.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import NO_CONTENT, DbSession, IdPath, requires_scopes
from platform_pricing.models import Replica
from platform_pricing.routes.deps import TenantDep
from platform_pricing.schemas.replicas import (
    PromoteIn,
    ReplicaIn,
    ReplicaOut,
    ReplicaPage,
    ReplicaPatch,
    ReplicaStatus,
    ReplicaStatusIn,
    ReplicaSyncIn,
    SyncSummary,
)
from platform_pricing.service import replicas as service

router = APIRouter(tags=["pricing replicas"])

ANY = requires_scopes()
BASE = "/agents/{agent_id}/replicas"


async def _one(session: AsyncSession, replica: Replica) -> ReplicaOut:
    return ReplicaOut(**(await service.describe(session, [replica]))[0])


@router.post(BASE, response_model=ReplicaOut, status_code=201, openapi_extra=ANY)
async def create_replica(
    agent_id: IdPath, data: ReplicaIn, session: DbSession, tenant: TenantDep
) -> ReplicaOut:
    """Add a standby replica (``launching``); 409 beyond the agent's ``standby_count``."""
    replica = await service.create_replica(session, tenant, agent_id, data.model_dump())
    return await _one(session, replica)


@router.get(BASE, response_model=ReplicaPage, openapi_extra=ANY)
async def list_replicas(
    agent_id: IdPath, session: DbSession, tenant: TenantDep, status: ReplicaStatus | None = None
) -> ReplicaPage:
    """The agent's replicas, oldest first (the agent itself may list them too)."""
    rows = await service.list_replicas(session, tenant, agent_id, status=status)
    return ReplicaPage(items=[ReplicaOut(**r) for r in await service.describe(session, rows)])


@router.get(BASE + "/sync-status", response_model=SyncSummary, openapi_extra=ANY)
async def sync_status(agent_id: IdPath, session: DbSession, tenant: TenantDep) -> SyncSummary:
    """How many standby replicas are ready against the replica config, and their lag."""
    return SyncSummary(**await service.sync_summary(session, tenant, agent_id))


@router.get(BASE + "/{replica_id}", response_model=ReplicaOut, openapi_extra=ANY)
async def get_replica(
    agent_id: IdPath, replica_id: IdPath, session: DbSession, tenant: TenantDep
) -> ReplicaOut:
    """One replica."""
    return await _one(session, await service.get_replica(session, tenant, agent_id, replica_id))


@router.patch(BASE + "/{replica_id}", response_model=ReplicaOut, openapi_extra=ANY)
async def update_replica(
    agent_id: IdPath, replica_id: IdPath, data: ReplicaPatch, session: DbSession, tenant: TenantDep
) -> ReplicaOut:
    """Move a launching replica to another pool or lifecycle, or set its cloud id."""
    replica = await service.update_replica(
        session, tenant, agent_id, replica_id, data.model_dump(exclude_unset=True)
    )
    return await _one(session, replica)


@router.delete(BASE + "/{replica_id}", openapi_extra=ANY, **NO_CONTENT)
async def delete_replica(
    agent_id: IdPath, replica_id: IdPath, session: DbSession, tenant: TenantDep
) -> Response:
    """Forget a replica that is not promoted (the agent tears down unlisted replicas)."""
    await service.delete_replica(session, tenant, agent_id, replica_id)
    return Response(status_code=204)


@router.post(BASE + "/{replica_id}/promote", response_model=ReplicaOut, openapi_extra=ANY)
async def promote_replica(
    agent_id: IdPath,
    replica_id: IdPath,
    session: DbSession,
    tenant: TenantDep,
    data: PromoteIn | None = None,
) -> ReplicaOut:
    """Promote a standby replica (client admin): the instance moves to the replica's pool."""
    replica = await service.promote_replica(
        session,
        tenant,
        agent_id,
        replica_id,
        reason=data.reason if data else "",
        actor=tenant.username,
    )
    return await _one(session, replica)


@router.put(BASE + "/{replica_id}/status", response_model=ReplicaOut, openapi_extra=ANY)
async def report_status(
    agent_id: IdPath,
    replica_id: IdPath,
    data: ReplicaStatusIn,
    session: DbSession,
    tenant: TenantDep,
) -> ReplicaOut:
    """The agent reports a replica launching, ready (``standby``), failed or terminated."""
    replica = await service.report_status(
        session, tenant, agent_id, replica_id, data.status, data.cloud_id
    )
    return await _one(session, replica)


@router.put(BASE + "/{replica_id}/sync", response_model=ReplicaOut, openapi_extra=ANY)
async def report_sync(
    agent_id: IdPath,
    replica_id: IdPath,
    data: ReplicaSyncIn,
    session: DbSession,
    tenant: TenantDep,
) -> ReplicaOut:
    """The agent reports a replica's data sync: in-sync, lagging (with lag), failed."""
    replica = await service.report_sync(
        session, tenant, agent_id, replica_id, data.sync_status, data.lag_seconds
    )
    return await _one(session, replica)
