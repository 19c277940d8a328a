"""Tables of the example plugin, all prefixed ``example_``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_core import UTCDateTime, plugin_metadata, utcnow


class ExampleBase(DeclarativeBase):
    """Declarative base owning the plugin's own metadata."""

    metadata = plugin_metadata()


class Note(ExampleBase):
    """A short text note owned by one user; titles are unique per owner."""

    __tablename__ = "example_notes"
    __table_args__ = (UniqueConstraint("owner_id", "title", name="uq_example_notes_owner_title"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key to core_users: a plugin's schema never depends on another's migrations.
    owner_id: Mapped[int] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
