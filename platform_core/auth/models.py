"""The core's own tables: users, personal API tokens and the record of user changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from platform_core._deprecation import moved_names
from platform_core.base import CoreBase
from platform_core.db import UTCDateTime, utcnow


class User(CoreBase):
    """A person or robot account with one role: admin, operator or member."""

    __tablename__ = "core_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(CoreBase):
    """A personal API token, stored only as a SHA-256 digest of its secret."""

    __tablename__ = "core_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("core_users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserAudit(CoreBase):
    """One change to a user account: who did what to whom, when (kept after a deletion).

    ``user_id`` and ``actor_id`` are plain integers, not foreign keys, so that the record
    of a deleted user (or of a deleted admin's changes) stays.
    """

    __tablename__ = "core_user_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "User": "platform_core.User",
        "ApiToken": "platform_core.ApiToken",
    },
)
