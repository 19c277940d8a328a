"""Event handlers of the example plugin: it reacts to the core's user deletions."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from platform_core.specs import EventHandler
from platform_example import service

if TYPE_CHECKING:
    from platform_core.context import PlatformContext

log = logging.getLogger("platform_example.events")

USER_DELETED = "core.user.deleted"


def on_user_deleted(ctx: PlatformContext) -> Callable[[Any], Awaitable[int]]:
    """A handler deleting the notes of a deleted user (``event.payload["user_id"]``).

    Idempotent, as at-least-once delivery requires: a second delivery deletes nothing.
    """

    async def handle(event: Any) -> int:
        user_id = int(event.payload["user_id"])
        async with ctx.db.session() as session:
            deleted = await service.delete_owner_notes(session, user_id)
        log.info(
            "notes of deleted user removed",
            extra={"plugin": "example", "user_id": user_id, "deleted": deleted},
        )
        return deleted

    return handle


def handlers(ctx: PlatformContext) -> list[EventHandler]:
    """The plugin's subscriptions, bound to the running platform."""
    return [EventHandler(USER_DELETED, on_user_deleted(ctx), name="delete_user_notes")]
