"""SQLAlchemy tables of the deployments plugin, all prefixed ``deployments_``.

User ids refer to the core's users by value (no foreign keys across plugins). An app's
desired state is its latest revision's snapshot plus the ``stopped`` and ``restarted_at``
switches; the apply and reconcile jobs bring the cluster to it and record the outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_core import UTCDateTime, plugin_metadata, utcnow

APP_STATES = ("pending", "synced", "out_of_sync", "error", "deleting")
"""``pending``: a change waits for the apply job; ``deleting``: objects are being removed."""


class DeploymentsBase(DeclarativeBase):
    """Declarative base bound to the deployments plugin's own metadata."""

    metadata = plugin_metadata()


class Template(DeploymentsBase):
    """One version of an app template; a new version is a new row, apps keep theirs."""

    __tablename__ = "deployments_templates"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_deployments_templates_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class App(DeploymentsBase):
    """A user's app: where it runs, its current revision and how the cluster matches it."""

    __tablename__ = "deployments_apps"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_deployments_apps_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(40))
    cluster: Mapped[str] = mapped_column(String(63))
    namespace: Mapped[str] = mapped_column(String(63))
    base_name: Mapped[str] = mapped_column(String(63))
    template_id: Mapped[int] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(253), unique=True, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    applied_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    message: Mapped[str] = mapped_column(Text, default="")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    restarted_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Revision(DeploymentsBase):
    """An app's desired state at one change: the snapshot rollback re-applies."""

    __tablename__ = "deployments_revisions"
    __table_args__ = (UniqueConstraint("app_id", "number", name="uq_deployments_revisions_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(
        ForeignKey("deployments_apps.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Quota(DeploymentsBase):
    """An admin's override of one user's quota (absent: the settings' defaults)."""

    __tablename__ = "deployments_quotas"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    max_apps: Mapped[int] = mapped_column(Integer)
    max_replicas: Mapped[int] = mapped_column(Integer)
    cpu_millis: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    allow_image_override: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MongoDatabase(DeploymentsBase):
    """A user's MongoDB database and user; the password is encrypted with the secret key."""

    __tablename__ = "deployments_mongo"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    database: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(64))
    password_enc: Mapped[str] = mapped_column(Text)
    data_size: Mapped[int] = mapped_column(BigInteger, default=0)
    storage_size: Mapped[int] = mapped_column(BigInteger, default=0)
    collections: Mapped[int] = mapped_column(Integer, default=0)
    sampled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Viewer(DeploymentsBase):
    """A user's MongoDB viewer: running or stopped, its basic-auth login, last use."""

    __tablename__ = "deployments_viewers"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16), default="stopped")
    cluster: Mapped[str] = mapped_column(String(63))
    namespace: Mapped[str] = mapped_column(String(63))
    base_name: Mapped[str] = mapped_column(String(63))
    host: Mapped[str | None] = mapped_column(String(253), nullable=True)
    username: Mapped[str] = mapped_column(String(64))
    password_enc: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
