"""Pydantic request and response models of agents, their instances and replica settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core import IdPage, Line

Lifecycle = Literal["spot", "on-demand"]
AgentStatus = Literal["online", "offline"]

CLOUD_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Region = Annotated[Line, Field(pattern=CLOUD_NAME, description="e.g. us-east-1")]
Zone = Annotated[Line, Field(pattern=CLOUD_NAME, description="e.g. us-east-1a")]
InstanceType = Annotated[Line, Field(pattern=CLOUD_NAME, description="e.g. m5.large")]
CloudId = Annotated[
    Line, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$", description="e.g. i-0abc")
]
AgentName = Annotated[Line, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$")]


class InstanceIn(BaseModel):
    """The cloud instance an agent runs on."""

    model_config = ConfigDict(extra="forbid")

    cloud_id: CloudId
    region: Region
    zone: Zone
    instance_type: InstanceType
    lifecycle: Lifecycle = "spot"


class AgentRegister(BaseModel):
    """An agent registering (or re-registering under the same name, which rotates its token)."""

    model_config = ConfigDict(extra="forbid")

    name: AgentName
    version: Line = Field("", max_length=50)
    instance: InstanceIn


class HeartbeatIn(BaseModel):
    """An optional heartbeat body: the agent's current version."""

    model_config = ConfigDict(extra="forbid")

    version: Line | None = Field(None, max_length=50)


class AgentOut(BaseModel):
    """An agent as the API shows it."""

    id: int
    client_id: int
    name: str
    version: str
    status: AgentStatus
    instance_id: int | None
    registered_at: datetime
    last_heartbeat_at: datetime
    offline_since: datetime | None
    enabled: bool = True


class HeartbeatOut(AgentOut):
    """The agent after a heartbeat, and how many commands wait for it."""

    pending_commands: int


class InstanceOut(BaseModel):
    """A client's instance: the workload an agent runs, with its current pool."""

    id: int
    client_id: int
    agent_id: int
    cloud_id: str
    pool_id: int
    region: str
    zone: str
    instance_type: str
    lifecycle: Lifecycle
    state: str
    last_switch_at: datetime | None
    created_at: datetime


class AgentPage(IdPage[AgentOut]):
    """A page of agents by id; pass ``next_cursor`` as ``cursor`` for the next (keyset: id)."""


class InstancePage(IdPage[InstanceOut]):
    """A page of instances by id; pass ``next_cursor`` as ``cursor`` for the next (keyset: id)."""


class AgentRegistered(BaseModel):
    """The registered agent, its instance and its token (shown in this response only)."""

    agent: AgentOut
    instance: InstanceOut
    token: str


class ReplicaPool(BaseModel):
    """A pool a standby replica may run in."""

    model_config = ConfigDict(extra="forbid")

    region: Region
    zone: Zone
    instance_type: InstanceType


class ReplicaConfig(BaseModel):
    """Whether an agent keeps standby replicas, how many, and in which pools (empty: any)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    standby_count: int = Field(0, ge=0, le=5)
    pools: list[ReplicaPool] = Field(default_factory=list, max_length=50)
