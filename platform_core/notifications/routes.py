"""``/api/core/notifications``: the caller's inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.background import BackgroundTask

from platform_core.auth.deps import Caller, DbSession, get_context
from platform_core.errors import TooManyRequests, invalid
from platform_core.events.patterns import valid_pattern
from platform_core.http import IdPath
from platform_core.notifications import live, service, stream

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


MAX_KINDS = 20


def _resume_from(header: str | None, query: int | None) -> int | None:
    if query is not None:
        return query
    if header is None or not header.strip():
        return None
    value = header.strip()
    if not value.isdigit() or len(value) > 18:
        raise invalid(
            "Last-Event-ID", "must be a notification id (an integer >= 0)", location="header"
        )
    return int(value)


def _frame(note: object) -> bytes:
    data = _out(note).model_dump_json()
    return f"id: {note.id}\nevent: notification\ndata: {data}\n\n".encode()  # type: ignore[attr-defined]


@router.get(
    "/notifications/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events: ``event: notification`` with ``id:`` the "
            "notification id and ``data:`` a NotificationOut; ``: ping`` heartbeats",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        429: {"description": "The caller has too many streams open in this process"},
    },
)
async def notification_stream(
    request: Request,
    caller: Caller,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, le=10**18, description="resume after this id (or the Last-Event-ID header)"),
    ] = None,
    kind: Annotated[
        list[str] | None,
        Query(max_length=MAX_KINDS, description="event name patterns to follow (default all)"),
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """The caller's notifications live, as server-sent events.

    With ``Last-Event-ID`` (header or ``last_event_id``) the caller's notifications after
    that id are replayed first, then new ones follow as they are created, with no gap and
    no duplicate; without it the stream starts with the next new one. ``kind`` keeps only
    notifications of matching events (``bookings.booking.*``). A ``: ping`` comment every
    ``[core.notifications] heartbeat_seconds``; a revoked token or deactivated user ends the
    stream at the next one. 429 beyond ``max_streams_per_user`` open streams.
    """
    kinds = list(kind or [])
    for pattern in kinds:
        if len(pattern) > 200 or not valid_pattern(pattern):
            raise invalid(
                "kind", f"{pattern[:200]!r} is not an event name pattern", location="query"
            )
    after = _resume_from(last_event_id_header, last_event_id)
    ctx = get_context(request)
    verified = stream.Verified(ctx, caller.expires_at)  # the guard's lookup, just now
    settings = ctx.config.core.notifications
    hub = live.hub(ctx)
    sub = hub.open(caller.user_id, settings.max_streams_per_user)
    if sub is None:
        raise TooManyRequests(
            f"at most {settings.max_streams_per_user} notification streams per user are open "
            "at once; close one first",
            retry_after=int(settings.heartbeat_seconds) or 1,
        )
    fresh = after is None
    try:
        if after is None:
            after = await stream.latest_id(ctx, caller.user_id)  # subscribed first: no gap
    except BaseException:
        hub.close(sub)
        raise
    credential = request.headers.get("authorization", "").partition(" ")[2].strip()

    async def close() -> None:  # async: a sync task would run in a thread
        hub.close(sub)

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            async for note in stream.notifications(
                ctx,
                sub,
                credential=credential,
                after=after,
                kinds=kinds,
                verified=verified,
                fresh=fresh,
            ):
                yield b": ping\n\n" if note is None else _frame(note)
        finally:
            hub.close(sub)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(close),
    )
