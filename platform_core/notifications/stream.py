"""One user's live notification stream: replay after a cursor, then live, with heartbeats.

:func:`notifications` yields the user's notifications with an id above ``after`` in id
order (the replay), then each new one as it commits, and ``None`` for a heartbeat every
``[core.notifications] heartbeat_seconds``. At each heartbeat the credential is resolved
again (through the credential cache, which revocations invalidate in every process): a
revoked token, a deactivated user, a check the database cannot answer or a process that is
stopping ends the stream. A failed read of new notifications is retried at the next hint
or heartbeat (the cursor stays where it was, so nothing is skipped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from platform_core.auth.service import resolve_credential
from platform_core.context import PlatformContext
from platform_core.events.patterns import matches
from platform_core.notifications.live import Subscription
from platform_core.notifications.models import Notification

log = logging.getLogger("platform_core.notifications")

DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
"""What a database that is down or out of pooled connections raises."""
BATCH = 200
"""Notifications read from the database at a time."""
TICK = 1.0
"""Seconds between two checks of whether the process is stopping."""


async def latest_id(ctx: PlatformContext, user_id: int) -> int:
    """The user's highest notification id (0 when none): where a fresh stream starts."""
    async with ctx.db.session() as session:
        query = select(func.max(Notification.id)).where(Notification.user_id == user_id)
        return int((await session.scalar(query)) or 0)


async def _after(ctx: PlatformContext, user_id: int, cursor: int) -> list[Notification]:
    async with ctx.db.session() as session:
        query = (
            select(Notification)
            .where(Notification.user_id == user_id, Notification.id > cursor)
            .order_by(Notification.id)
            .limit(BATCH)
        )
        return list((await session.scalars(query)).all())


async def still_allowed(ctx: PlatformContext, credential: str, user_id: int) -> bool:
    """True while ``credential`` still resolves to ``user_id`` (not revoked, user active)."""
    cache = ctx.credential_cache
    principal = cache.get(credential)
    if principal is None:
        generation = cache.generation
        async with ctx.db.session() as session:
            principal = await resolve_credential(
                session,
                credential,
                secret_key=ctx.secret_key,
                role_scopes=ctx.state["role_scopes"],
            )
        if principal is None:
            return False
        cache.put(credential, principal, generation)
    return principal.user_id == user_id


async def notifications(
    ctx: PlatformContext,
    sub: Subscription,
    *,
    credential: str,
    after: int,
    kinds: list[str],
) -> AsyncIterator[Notification | None]:
    """The stream of ``sub``'s user (see the module docs); ``kinds`` (event name patterns)
    keeps only matching notifications, an empty list keeps all."""
    heartbeat = ctx.config.core.notifications.heartbeat_seconds
    cursor = after
    while True:
        sub.wake.clear()  # before reading: a hint arriving during the read wakes us again
        while True:
            try:
                batch = await _after(ctx, sub.user_id, cursor)
            except DB_ERRORS as exc:  # read again at the next hint or heartbeat
                log.warning("notification stream: database read failed, retrying: %s", exc)
                break
            for note in batch:
                cursor = note.id
                if not kinds or any(matches(k, note.kind) for k in kinds):
                    yield note
            if len(batch) < BATCH:
                break
        beat_at = time.monotonic() + heartbeat
        woken = False
        while not woken:
            if ctx.state.get("draining"):
                return
            left = beat_at - time.monotonic()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(sub.wake.wait(), min(TICK, left))
                woken = True
            except TimeoutError:
                continue
        if not woken:
            try:
                allowed = await still_allowed(ctx, credential, sub.user_id)
            except DB_ERRORS as exc:  # unverifiable: end it; the client reconnects and resumes
                log.warning("notification stream: credential check failed, closing: %s", exc)
                return
            if not allowed:
                return
            yield None
