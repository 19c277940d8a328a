"""The inbox: notifications from the plugins' rules, unread first, marked read by users."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from platform_core._deprecation import moved_names
from platform_core.auth.models import User
from platform_core.calling import call_with_available
from platform_core.context import PlatformContext
from platform_core.db import utcnow
from platform_core.errors import NotFound
from platform_core.events.outbox import DeliveredEvent
from platform_core.events.patterns import matches
from platform_core.notifications import live
from platform_core.notifications.models import Notification

log = logging.getLogger("platform_core.notifications")


async def users_with_role(session: AsyncSession, *roles: str) -> list[int]:
    """Ids of the active users holding one of ``roles`` (for rules: "notify the admins")."""
    query = select(User.id).where(User.role.in_(roles), User.is_active)
    return list((await session.scalars(query)).all())


def _render(template: str | Callable[[Any], str], event: DeliveredEvent) -> str:
    if callable(template):
        return str(template(event))
    try:
        return template.format(**event.payload)
    except (KeyError, IndexError, ValueError):  # a template the payload can't fill
        return template


async def apply_rules(ctx: PlatformContext, session: AsyncSession, event: DeliveredEvent) -> int:
    """Add the notifications every matching rule asks for; return how many were added.

    Runs in the dispatching transaction. A rule that raises is logged and skipped (the event
    is still dispatched), unless it is a database error, which aborts the dispatch so that
    it is retried. One user gets at most one notification per event.
    """
    wanted: dict[int, tuple[str, str, bool]] = {}
    for plugin, rule in ctx.notification_rules:
        if not matches(rule.pattern, event.name):
            continue
        try:
            with session.no_autoflush:
                users = await call_with_available(
                    rule.recipients, event=event, session=session, ctx=ctx
                )
            title, body = _render(rule.title, event)[:200], _render(rule.body, event)
        except SQLAlchemyError:
            raise  # the transaction is unusable: abort the fan-out, retried on the next pass
        except Exception:
            log.exception("notification rule failed", extra={"plugin": plugin, "event": event.name})
            continue
        for user_id in users or []:
            wanted.setdefault(int(user_id), (title, body, rule.unread))
    if not wanted:
        return 0
    existing = set((await session.scalars(select(User.id).where(User.id.in_(wanted)))).all())
    if existing:
        await live.serialize(ctx, session)  # commit in id order; announce after the commit
    now = utcnow()
    for user_id, (title, body, unread) in wanted.items():
        if user_id in existing:
            session.add(
                Notification(
                    user_id=user_id,
                    event_uid=event.id,
                    kind=event.name,
                    title=title,
                    body=body,
                    created_at=now,
                    read_at=None if unread else now,
                )
            )
    return len(existing)


async def notify(
    session: AsyncSession,
    user_ids: list[int],
    *,
    kind: str,
    title: str,
    body: str = "",
    ctx: PlatformContext | None = None,
) -> None:
    """Put a notification not tied to an event in users' inboxes (live on their streams
    after the commit when ``ctx`` is given, else at the streams' next heartbeat)."""
    if ctx is not None and user_ids:
        await live.serialize(ctx, session)
    for user_id in user_ids:
        session.add(Notification(user_id=user_id, kind=kind, title=title[:200], body=body))


async def inbox(
    session: AsyncSession, user_id: int, *, limit: int, offset: int, unread_only: bool = False
) -> tuple[list[Notification], int, int]:
    """A page of the user's notifications (unread first, newest first), total and unread."""
    base = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        base = base.where(Notification.read_at.is_(None))
    query = (
        base.order_by(Notification.read_at.is_not(None), Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    items = list((await session.scalars(query)).all())
    total = int((await session.scalar(select(func.count()).select_from(base.subquery()))) or 0)
    return items, total, await unread_count(session, user_id)


async def unread_count(session: AsyncSession, user_id: int) -> int:
    """How many of the user's notifications are unread."""
    query = select(func.count()).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    return int((await session.scalar(query)) or 0)


async def mark_read(session: AsyncSession, user_id: int, notification_id: int) -> Notification:
    """Mark one of the user's notifications read (idempotent); ``NotFound`` otherwise."""
    note = await session.get(Notification, notification_id)
    if note is None or note.user_id != user_id:
        raise NotFound(f"notification {notification_id} not found")
    if note.read_at is None:
        note.read_at = utcnow()
    return note


async def mark_all_read(session: AsyncSession, user_id: int) -> int:
    """Mark every unread notification of the user read; return how many changed."""
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# Plugins import these from platform_core now; the old path warns (docs/plugin-guide.md).
moved_names(
    __name__,
    {
        "users_with_role": "platform_core.users_with_role",
    },
)
