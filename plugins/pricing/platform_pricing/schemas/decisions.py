"""Pydantic models of decisions, commands and engines."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_core import IdPage, Line, Text

MAX_ID = 2**31 - 1
Outcome = Literal["stay", "switch", "on-demand"]
Lifecycle = Literal["spot", "on-demand"]
CommandStatus = Literal["pending", "acknowledged", "superseded", "cancelled"]


class PoolOut(BaseModel):
    """A spot capacity pool."""

    id: int
    region: str
    zone: str
    instance_type: str


class DecisionOut(BaseModel):
    """A decision: what the engine recommended for an instance, and on which inputs.

    ``id`` is None for a recommendation that was not stored (``switch-recommendation``).
    ``engine`` decided; ``requested_engine`` was asked; ``fallback_reason`` says why they
    differ. ``details`` are the engine's extras (the rule engine's ``rule`` code and numbers),
    returned when the decision is made and not stored. ``inputs`` is the full
    :class:`~platform_pricing.engines.DecisionInput` (JSON), enough to replay the decision.
    ``model_name``/``model_version`` name the ML model version that decided (``onnx`` engine).
    """

    id: int | None
    client_id: int
    instance_id: int
    engine: str
    requested_engine: str
    fallback_reason: str | None
    outcome: Outcome
    target_pool_id: int | None
    expected_saving_per_hour: float
    reason: str
    elapsed_ms: float
    created_at: datetime
    inputs: dict[str, Any]
    details: dict[str, Any] | None = None
    model_name: str | None = None
    model_version: str | None = None


class DecisionPage(IdPage[DecisionOut]):
    """A page of decisions, newest first; pass ``next_cursor`` as ``cursor`` for the next."""


class CommandOut(BaseModel):
    """A command for an agent: switch the instance to ``target`` with ``target_lifecycle``."""

    id: int
    client_id: int
    agent_id: int
    instance_id: int
    kind: str
    target_pool_id: int | None
    target: PoolOut | None
    target_lifecycle: Lifecycle
    decision_id: int | None
    forced: bool
    reason: str
    status: CommandStatus
    issued_by: str
    deliveries: int
    created_at: datetime
    last_delivered_at: datetime | None
    acknowledged_at: datetime | None
    result: str


class CommandPage(IdPage[CommandOut]):
    """A page of commands, newest first; pass ``next_cursor`` as ``cursor`` for the next."""


class CommandList(BaseModel):
    """An agent's pending commands, oldest first (a small bounded list: not paged)."""

    items: list[CommandOut]


class AckIn(BaseModel):
    """An agent's acknowledgement of a command: whether it carried it out, and a message."""

    model_config = ConfigDict(extra="forbid")

    success: bool
    message: Text = Field("", max_length=400)


class IssueOut(BaseModel):
    """The decision behind an issue request and its command (None, with the reason, on stay)."""

    decision: DecisionOut
    command: CommandOut | None
    reason: str | None


class ForceSwitchIn(BaseModel):
    """Switch an instance regardless of engines and anti-flapping.

    The target pool is ``pool_id`` or ``region`` + ``zone`` + ``instance_type`` (a pool the
    client has reported prices for or runs an instance in); for ``on-demand`` it may be left
    out to stay in the current pool.
    """

    model_config = ConfigDict(extra="forbid")

    pool_id: int | None = Field(None, ge=1, le=MAX_ID)
    region: Line | None = Field(None, min_length=1, max_length=64)
    zone: Line | None = Field(None, min_length=1, max_length=64)
    instance_type: Line | None = Field(None, min_length=1, max_length=64)
    lifecycle: Lifecycle
    reason: Text = Field(min_length=1, max_length=400)


class EngineOut(BaseModel):
    """An installed decision engine; ``active``/``fallback``: the platform's choices."""

    name: str
    description: str
    plugin: str
    active: bool
    fallback: bool


class EngineList(BaseModel):
    """The installed decision engines (a small bounded list: not paged)."""

    items: list[EngineOut]
