"""API models of ``/api/core/jobs``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RunState = Literal["queued", "running", "succeeded", "failed", "timeout", "cancelled", "lost"]


class JobOut(BaseModel):
    """A job of an active plugin: its schedule, next run and last run."""

    name: str = Field(description="<plugin>.<job>")
    schedule: str = Field(description="'every <interval>', 'cron <expr> (<zone>)' or 'on demand'")
    next_run: datetime | None = Field(description="the next periodic slot (UTC)")
    last_state: RunState | None
    last_run_at: datetime | None
    retries: int
    timeout: float | None
    overlap: bool
    description: str


class JobRunOut(BaseModel):
    """One attempt of one run of a job."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    job: str
    scheduled_for: datetime = Field(description="the periodic slot, or when it was requested")
    attempt: int
    trigger: Literal["schedule", "manual", "retry"]
    state: RunState
    worker: str | None
    enqueued_at: datetime = Field(description="when the attempt may start")
    started_at: datetime | None
    finished_at: datetime | None
    lease_until: datetime | None
    error: str | None
    result: str | None = Field(description="the job's return value as JSON text")
