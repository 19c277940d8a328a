"""Events the deployments plugin publishes: ``deployments.app.*``. Every payload names the
app and its owner (``user_id``), so the owner's notifications and webhooks can follow it."""

from __future__ import annotations

from typing import ClassVar

from platform_core import Event


class AppEvent(Event):
    """What every app event carries."""

    app_id: int
    user_id: int
    name: str


class AppCreated(AppEvent):
    """An app was created (its first revision waits for the apply job)."""

    event_name: ClassVar[str] = "deployments.app.created"
    template: str
    revision: int


class AppDeployed(AppEvent):
    """The cluster accepted a revision of the app."""

    event_name: ClassVar[str] = "deployments.app.deployed"
    revision: int


class AppFailed(AppEvent):
    """Applying a revision failed (reported once per revision; retried with backoff)."""

    event_name: ClassVar[str] = "deployments.app.failed"
    revision: int
    error: str


class AppRolledBack(AppEvent):
    """An older revision's snapshot became a new revision."""

    event_name: ClassVar[str] = "deployments.app.rolled_back"
    from_revision: int
    to_revision: int
    revision: int


class AppDeleted(AppEvent):
    """The app's objects are gone from the cluster and its row was removed."""

    event_name: ClassVar[str] = "deployments.app.deleted"
    forced: bool


class AppUnhealthy(AppEvent):
    """The health job found the app's rollout failed or its pods not ready."""

    event_name: ClassVar[str] = "deployments.app.unhealthy"
    reason: str
