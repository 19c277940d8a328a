"""The outbox of events and the per-handler delivery records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from platform_core.base import CoreBase
from platform_core.db import UTCDateTime, utcnow


class EventRecord(CoreBase):
    """An event in the outbox, written in the same transaction as the change it reports.

    ``uid`` is the public id receivers de-duplicate on; ``id`` orders the outbox.
    """

    __tablename__ = "core_events"
    __table_args__ = (Index("ix_core_events_dispatched_id", "dispatched_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    plugin: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EventDelivery(CoreBase):
    """One event for one subscribed handler: retried until it succeeds or gives up."""

    __tablename__ = "core_event_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "handler", name="uq_core_event_deliveries_event_handler"),
        Index("ix_core_event_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("core_events.id", ondelete="CASCADE"))
    handler: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|succeeded|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
