"""Notifications in users' inboxes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from platform_core.base import CoreBase
from platform_core.db import UTCDateTime, utcnow


class Notification(CoreBase):
    """One notification for one user, from one event (at most once per event and user)."""

    __tablename__ = "core_notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "event_uid", name="uq_core_notifications_user_event"),
        Index("ix_core_notifications_inbox", "user_id", "read_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_users.id", ondelete="CASCADE"))
    event_uid: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
