"""Apps: creation and change requests, the app and revision views, status, pods, logs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from platform_core import TextValues
from platform_deployments.schemas.templates import (
    IMAGE,
    Resources,
    TemplateName,
    VariableValue,
)

APP_NAME = r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$"
HOST = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
TAG = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"

AppName = Annotated[str, StringConstraints(pattern=APP_NAME, max_length=40)]
Host = Annotated[str, StringConstraints(pattern=HOST, max_length=253)]
ClusterName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
Variables = Annotated[
    dict[Annotated[str, StringConstraints(max_length=63)], VariableValue | None],
    TextValues,
    Field(max_length=100),
]
AppState = Literal["pending", "synced", "out_of_sync", "error", "deleting"]


class AppCreate(BaseModel):
    """A new app from a template (the latest version unless one is named)."""

    model_config = ConfigDict(extra="forbid")

    name: AppName
    template: TemplateName
    template_version: int | None = Field(default=None, ge=1, le=1_000_000)
    variables: Variables = Field(default_factory=dict)
    image_tag: Annotated[str, StringConstraints(pattern=TAG)] | None = None
    image: Annotated[str, StringConstraints(pattern=IMAGE)] | None = Field(
        default=None, description="another image repository: only when an admin allows it"
    )
    replicas: int | None = Field(default=None, ge=0, le=100)
    resources: Resources | None = None
    host: Host | None = None
    cluster: ClusterName | None = None


class AppUpdate(BaseModel):
    """A change of an app: each one is a new revision. ``host: null`` removes a custom host."""

    model_config = ConfigDict(extra="forbid")

    variables: Variables | None = None
    image_tag: Annotated[str, StringConstraints(pattern=TAG)] | None = None
    image: Annotated[str, StringConstraints(pattern=IMAGE)] | None = None
    replicas: int | None = Field(default=None, ge=0, le=100)
    resources: Resources | None = None
    host: Host | None = None
    template_version: int | None = Field(
        default=None, ge=1, le=1_000_000, description="redeploy on another version of the template"
    )


class RollbackIn(BaseModel):
    """Apply revision ``revision``'s snapshot again, as a new revision."""

    model_config = ConfigDict(extra="forbid")

    revision: int = Field(ge=1, le=2_147_483_647)


class AppOut(BaseModel):
    """An app: where it runs, its revision, and how the cluster matches it."""

    id: int
    user_id: int
    name: str
    template: str
    template_version: int
    cluster: str
    namespace: str
    host: str | None
    image: str
    replicas: int
    resources: Resources
    variables: dict[str, str]
    secret_variables: list[str] = Field(description="names only: values are write-only")
    mongo: bool
    revision: int
    applied_revision: int | None
    state: AppState
    message: str
    last_error: str | None
    stopped: bool
    health: str
    created_at: datetime
    updated_at: datetime
    synced_at: datetime | None


class AppPage(BaseModel):
    """A page of apps in id order."""

    items: list[AppOut]
    next_cursor: int | None


class Accepted(BaseModel):
    """A change stored and waiting for the apply job (202)."""

    app: AppOut
    revision: int


class RevisionOut(BaseModel):
    """One revision of an app (secret values left out)."""

    number: int
    reason: str
    created_at: datetime
    created_by: int | None
    template: str
    template_version: int
    image: str
    replicas: int
    resources: Resources
    host: str | None
    variables: dict[str, str]
    secret_variables: list[str]
    current: bool


class RevisionList(BaseModel):
    """An app's kept revisions, newest first."""

    items: list[RevisionOut]


class PodOut(BaseModel):
    """A pod of the app."""

    name: str
    phase: str
    ready: bool
    restarts: int
    containers: list[str]
    node: str | None


class RolloutOut(BaseModel):
    """The rollout state of the app's Deployment."""

    state: Literal["missing", "stopped", "progressing", "available", "failed"]
    reason: str | None
    message: str | None
    replicas: int
    updated_replicas: int
    ready_replicas: int
    available_replicas: int


class StatusOut(BaseModel):
    """The app as the cluster sees it, and its sync state."""

    app: AppOut
    rollout: RolloutOut
    pods: list[PodOut]


class PodList(BaseModel):
    """The app's pods."""

    items: list[PodOut]


class EventOut(BaseModel):
    """A Kubernetes event of one of the app's objects."""

    type: str
    reason: str
    message: str
    object: str
    count: int
    last_seen: str | None


class EventList(BaseModel):
    """The app's recent Kubernetes events, newest first."""

    items: list[EventOut]


class LogOut(BaseModel):
    """The last lines of a pod's log."""

    pod: str
    container: str | None
    lines: list[str]
