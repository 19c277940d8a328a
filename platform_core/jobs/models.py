"""The job run records: one row per attempt of a run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from platform_core.base import CoreBase
from platform_core.db import UTCDateTime, utcnow

RUN_STATES = ("queued", "running", "succeeded", "failed", "timeout", "cancelled", "lost")


class JobRun(CoreBase):
    """One attempt of one run of a job.

    A periodic run is identified by ``(job, scheduled_for)``; the unique constraint over
    ``(job, scheduled_for, attempt)`` is what makes two schedulers enqueue it only once.
    A retry is a new row with ``attempt + 1``.
    """

    __tablename__ = "core_job_runs"
    __table_args__ = (
        UniqueConstraint("job", "scheduled_for", "attempt", name="uq_core_job_runs_slot"),
        Index("ix_core_job_runs_job_id", "job", "id"),
        Index("ix_core_job_runs_state_lease", "state", "lease_until"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(200))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual | retry
    state: Mapped[str] = mapped_column(String(16), default="queued")
    worker: Mapped[str | None] = mapped_column(String(200))
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
