"""Request and response models of standby replicas and their sync status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core import Line, Text

MAX_ID = 2**31 - 1
PoolId = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Annotated[Line, Field(min_length=1, max_length=64)]
CloudId = Annotated[Line, Field(min_length=1, max_length=100)]
Lifecycle = Literal["spot", "on-demand"]
ReplicaStatus = Literal["launching", "standby", "promoting", "promoted", "failed", "terminated"]
ReportedStatus = Literal["launching", "standby", "failed", "terminated", "promoted"]
SyncStatus = Literal["unknown", "in-sync", "lagging", "failed"]


class ReplicaIn(BaseModel):
    """A new standby replica: its pool as ``pool_id`` or as ``region``, ``zone`` and
    ``instance_type`` (one or the other)."""

    model_config = ConfigDict(extra="forbid")

    pool_id: PoolId | None = None
    region: Name | None = None
    zone: Name | None = None
    instance_type: Name | None = None
    lifecycle: Lifecycle = "spot"
    cloud_id: CloudId | None = Field(
        None, description="The cloud instance, when it already exists (the agent reports it too)"
    )


class ReplicaPatch(BaseModel):
    """Move a launching replica to another pool or lifecycle, or correct its cloud id."""

    model_config = ConfigDict(extra="forbid")

    pool_id: PoolId | None = None
    region: Name | None = None
    zone: Name | None = None
    instance_type: Name | None = None
    lifecycle: Lifecycle | None = None
    cloud_id: CloudId | None = None


class ReplicaStatusIn(BaseModel):
    """The agent reports its replica's state; ``standby`` needs the replica's ``cloud_id``.

    ``promoted`` is accepted only for a promoted replica: it confirms the real ``cloud_id``
    of an emergency replica promoted before its cloud instance existed.
    """

    model_config = ConfigDict(extra="forbid")

    status: ReportedStatus
    cloud_id: CloudId | None = None


class ReplicaSyncIn(BaseModel):
    """The agent reports how far the replica's data lags behind the instance."""

    model_config = ConfigDict(extra="forbid")

    sync_status: SyncStatus
    lag_seconds: float | None = Field(
        None, ge=0, le=10**9, description="Required when lagging; 0 when in sync by default"
    )


class PromoteIn(BaseModel):
    """Why a replica is promoted by hand (kept on the switch record)."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field("", max_length=400)


class ReplicaOut(BaseModel):
    """A replica with its pool spelled out."""

    id: int
    client_id: int
    agent_id: int
    pool_id: int
    region: str
    zone: str
    instance_type: str
    lifecycle: Lifecycle
    cloud_id: str
    status: ReplicaStatus
    sync_status: SyncStatus
    sync_lag_seconds: float | None
    emergency: bool
    created_at: datetime
    updated_at: datetime
    promoted_at: datetime | None


class ReplicaPage(BaseModel):
    """An agent's replicas, oldest first."""

    items: list[ReplicaOut]


class ReplicaSync(BaseModel):
    """One active replica's readiness."""

    id: int
    pool_id: int
    status: ReplicaStatus
    sync_status: SyncStatus
    lag_seconds: float | None
    updated_at: datetime


class SyncSummary(BaseModel):
    """Readiness of an agent's standby replicas against its replica config.

    ``ready`` counts standby replicas in sync; ``healthy`` is true when replicas are disabled,
    or when ``ready`` reaches ``standby_count`` and no active replica's sync failed.
    """

    agent_id: int
    enabled: bool
    standby_count: int
    active: int
    ready: int
    by_status: dict[str, int]
    by_sync_status: dict[str, int]
    max_lag_seconds: float | None
    healthy: bool
    replicas: list[ReplicaSync]
