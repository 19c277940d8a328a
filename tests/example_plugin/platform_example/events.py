"""Event handlers of the example plugin: it reacts to the core's user deletions."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from platform_core import Event, EventHandler, NotificationRule, users_with_role

if TYPE_CHECKING:
    from platform_core import PlatformContext

log = logging.getLogger("platform_example.events")

USER_DELETED = "core.user.deleted"


class NoteCreated(Event):
    """Published when a user creates a note."""

    event_name: ClassVar[str] = "example.note.created"

    note_id: int
    owner_id: int
    title: str


def on_user_deleted(ctx: PlatformContext) -> Callable[[Any], Awaitable[int]]:
    """A handler deleting the notes of a deleted user (``event.payload["user_id"]``).

    Idempotent, as at-least-once delivery requires: a second delivery deletes nothing.
    """

    async def handle(event: Any) -> int:
        user_id = int(event.payload["user_id"])
        from platform_example import service  # service imports this module's events

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


async def admins(session: AsyncSession) -> list[int]:
    """Recipients of the note notifications: every admin."""
    return await users_with_role(session, "admin")


def notification_rules() -> list[NotificationRule]:
    """Admins hear about every new note."""
    return [
        NotificationRule(
            NoteCreated.event_name,
            admins,
            title="New note: {title}",
            body="note {note_id} by user {owner_id}",
        )
    ]
