"""Schemas: an agent's enabled flag (set by its client) and its own settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class ToggleEnabled(BaseModel):
    """The state the client wants: the change applies only from the other state (409 else)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool


class AgentEnabled(BaseModel):
    """An agent's enabled flag after a toggle."""

    agent_id: int
    enabled: bool
    changed_at: datetime


EngineName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$", min_length=1, max_length=64)
]


class AgentConfig(BaseModel):
    """An agent's own settings; every field has a default, so ``{}`` means all defaults.

    ``decision_engine`` overrides the client's and the platform's engine for this agent's
    decisions (null: no override); it must name an installed engine.
    """

    model_config = ConfigDict(extra="forbid")

    report_interval_seconds: int = Field(300, ge=10, le=86_400)
    heartbeat_interval_seconds: int = Field(60, ge=5, le=3_600)
    decide_interval_seconds: int = Field(900, ge=60, le=7 * 86_400)
    decision_engine: EngineName | None = None
