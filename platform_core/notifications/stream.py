"""One user's live notification stream: replay after a cursor, then live, with heartbeats.

:func:`notifications` yields the user's notifications with an id above ``after`` in id
order (the replay), then each new one as it commits, and ``None`` for a heartbeat every
``[core.notifications] heartbeat_seconds``.

At each heartbeat the credential is checked again: without a shared Redis, or when an
invalidation arrived since the last check (any revocation, deactivation or role change in
any process), or ``POLL_SECONDS`` after it, it is resolved again (credential cache, then
the database); a revoked token, a deactivated user, a check the database cannot answer or
a process that is stopping ends the stream. The database is read for new notifications on
each announcement, and at a heartbeat only when announcements may have been missed (see
:mod:`platform_core.notifications.live`). A failed read is retried at the next hint or
heartbeat (the cursor stays where it was, so nothing is skipped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from platform_core.auth.service import resolve_credential
from platform_core.context import PlatformContext
from platform_core.db import utcnow
from platform_core.events.patterns import matches
from platform_core.notifications.live import POLL_SECONDS, Subscription, reliable
from platform_core.notifications.models import Notification
from platform_core.shared import redis_url

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


class Verified:
    """When a stream's credential was last resolved, and the cache generation then."""

    def __init__(self, ctx: PlatformContext, expires_at: datetime | None) -> None:
        """Taken by the route right after its guard resolved the credential (no await
        between): trusted like a fresh lookup, unless an invalidation is recent."""
        cache = ctx.credential_cache
        self.generation = cache.generation
        self.at = float("-inf") if cache.holding else time.monotonic()
        self.expires_at = expires_at

    def still_good(self, ctx: PlatformContext) -> bool:
        """True when nothing can have revoked the credential since it was resolved: every
        process's invalidations are received (shared Redis, subscribed), none came since,
        it has not expired, and it was resolved less than ``POLL_SECONDS`` ago."""
        cache = ctx.credential_cache
        return (
            redis_url(ctx.config) is not None
            and cache.enabled
            and cache.generation == self.generation
            and time.monotonic() - self.at < POLL_SECONDS
            and (self.expires_at is None or self.expires_at > utcnow())
        )


async def still_allowed(
    ctx: PlatformContext, credential: str, user_id: int, verified: Verified | None = None
) -> bool:
    """True while ``credential`` still resolves to ``user_id`` (not revoked, user active);
    ``verified`` (updated here) skips the lookup while :meth:`Verified.still_good`."""
    if verified is not None and verified.still_good(ctx):
        return True
    cache = ctx.credential_cache
    generation = cache.generation
    principal = cache.get(credential)
    if principal is None:
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
    if verified is not None:
        verified.generation, verified.at = generation, time.monotonic()
        verified.expires_at = principal.expires_at
    return principal.user_id == user_id


async def notifications(
    ctx: PlatformContext,
    sub: Subscription,
    *,
    credential: str,
    after: int,
    kinds: list[str],
    verified: Verified,
    fresh: bool = False,
) -> AsyncIterator[Notification | None]:
    """The stream of ``sub``'s user (see the module docs); ``kinds`` (event name patterns)
    keeps only matching notifications, an empty list keeps all. ``fresh``: ``after`` is
    the user's :func:`latest_id` read after ``sub`` was opened (no replay to read)."""
    heartbeat = ctx.config.core.notifications.heartbeat_seconds
    cursor = after
    read = not fresh  # fresh: ``after`` was just read, a hint since has set ``sub.wake``
    read_at = time.monotonic()
    failed = False
    while True:
        if read:
            sub.wake.clear()  # before reading: a hint arriving during the read wakes us again
        while read:
            try:
                batch = await _after(ctx, sub.user_id, cursor)
            except DB_ERRORS as exc:  # read again at the next hint or heartbeat
                log.warning("notification stream: database read failed, retrying: %s", exc)
                failed = True
                break
            failed = False
            for note in batch:
                cursor = note.id
                if not kinds or any(matches(k, note.kind) for k in kinds):
                    yield note
            if len(batch) < BATCH:
                read_at = time.monotonic()
                break
        read = True
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
            # a heartbeat: read only when announcements may have been missed
            read = failed or not reliable(ctx) or time.monotonic() - read_at >= POLL_SECONDS
            try:
                allowed = await still_allowed(ctx, credential, sub.user_id, verified)
            except DB_ERRORS as exc:  # unverifiable: end it; the client reconnects and resumes
                log.warning("notification stream: credential check failed, closing: %s", exc)
                return
            if not allowed:
                return
            yield None
