"""``/api/core/notifications``: the caller's inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from platform_core.auth.deps import Caller, DbSession
from platform_core.http import IdPath
from platform_core.notifications import service

router = APIRouter()


class NotificationOut(BaseModel):
    """A notification in the inbox."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    title: str
    body: str
    event_id: str | None = None
    created_at: datetime
    read_at: datetime | None


class Inbox(BaseModel):
    """A page of the inbox: unread first, then newest first."""

    items: list[NotificationOut]
    total: int
    unread: int
    next_offset: int | None


class UnreadCount(BaseModel):
    """How many notifications are unread."""

    unread: int


class Marked(BaseModel):
    """How many notifications were marked read."""

    marked: int


def _out(n: object) -> NotificationOut:
    out = NotificationOut.model_validate(n)
    out.event_id = getattr(n, "event_uid", None)
    return out


@router.get("/notifications", response_model=Inbox)
async def list_notifications(
    session: DbSession,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    unread_only: bool = False,
) -> Inbox:
    """The caller's notifications, unread first, paginated with ``limit`` and ``offset``."""
    items, total, unread = await service.inbox(
        session, caller.user_id, limit=limit, offset=offset, unread_only=unread_only
    )
    more = offset + len(items) < total
    return Inbox(
        items=[_out(n) for n in items],
        total=total,
        unread=unread,
        next_offset=offset + len(items) if more else None,
    )


@router.get("/notifications/unread-count", response_model=UnreadCount)
async def unread(session: DbSession, caller: Caller) -> UnreadCount:
    """How many of the caller's notifications are unread."""
    return UnreadCount(unread=await service.unread_count(session, caller.user_id))


@router.post("/notifications/{notification_id}/read", response_model=NotificationOut)
async def read_one(notification_id: IdPath, session: DbSession, caller: Caller) -> NotificationOut:
    """Mark one notification read (idempotent); 404 when it is not the caller's."""
    return _out(await service.mark_read(session, caller.user_id, notification_id))


@router.post("/notifications/read-all", response_model=Marked)
async def read_all(session: DbSession, caller: Caller) -> Marked:
    """Mark every unread notification of the caller read."""
    return Marked(marked=await service.mark_all_read(session, caller.user_id))
