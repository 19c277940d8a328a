"""Live notifications: new inbox rows announced to the streams of the process that serves
their user, across processes over Redis pub/sub.

The database is the source of truth; an announcement is only a hint "user U has a
notification with id N". A stream (:mod:`platform_core.notifications.stream`) reads the
user's notifications with an id above its cursor whenever a hint above the cursor arrives.
While this process is subscribed to the shared Redis, streams also read at least every
:data:`POLL_SECONDS` (an announcement its publisher failed to send), and every stream
reads after each (re)subscription; otherwise (no Redis, or Redis unreachable) they read
at every heartbeat. A lost hint therefore delays a notification, never loses it.

No gap, no duplicate: the stream's cursor only moves forward over committed rows, so one
user's notifications must commit in id order. On PostgreSQL, a transaction takes a
transaction-scoped advisory lock (:func:`serialize`) before it inserts its first
notification and holds it to its commit, so a later id always commits later; SQLite
serializes writers by itself.

Announcements go out after the transaction commits (:func:`track`): to this process's
streams at once and, with a shared Redis (:mod:`platform_core.shared`), on
``<prefix>:notifications``, to which every ``platformctl serve`` subscribes
(:func:`listen`). Without Redis, streams learn of notifications created by other
processes at their next heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import event as sa_event
from sqlalchemy import text

from platform_core.shared import client as shared_client
from platform_core.shared import new_client, redis_url, shared_key

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from platform_core.context import PlatformContext

log = logging.getLogger("platform_core.notifications")

LOCK_NAMESPACE = 0x4E4F5449
"""First key of the advisory lock serializing notification inserts (``'NOTI'``)."""
POLL_SECONDS = 60.0
"""While announcements are received, the longest a stream goes without reading the
database (or re-checking its credential there)."""
RECONNECT_DELAY = 1.0
"""Seconds between two attempts to subscribe while Redis is unreachable."""
_HUB = "notification_hub"
_PENDING = "notification_publishes"
_INFO = "live_notifications"
_SUBSCRIBED = "live_notifications_subscribed"


class Subscription:
    """One open stream of one user: woken by hints above what it has sent."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.latest = 0
        """The highest notification id announced to this stream."""
        self.wake = asyncio.Event()

    def poke(self) -> None:
        """Wake the stream to read the database (announcements may have been missed)."""
        self.wake.set()

    def hint(self, notification_id: int) -> None:
        """Note that ``notification_id`` exists (wakes the stream when it is new)."""
        if notification_id > self.latest:
            self.latest = notification_id
            self.wake.set()


class Hub:
    """This process's open streams by user, with a per-user cap."""

    def __init__(self) -> None:
        self._streams: dict[int, set[Subscription]] = {}

    def open(self, user_id: int, cap: int) -> Subscription | None:
        """A new subscription of ``user_id``; None when the user already has ``cap``."""
        streams = self._streams.setdefault(user_id, set())
        if len(streams) >= cap:
            return None
        sub = Subscription(user_id)
        streams.add(sub)
        return sub

    def close(self, sub: Subscription) -> None:
        """Forget a subscription (its stream ended)."""
        streams = self._streams.get(sub.user_id)
        if streams is not None:
            streams.discard(sub)
            if not streams:
                del self._streams[sub.user_id]

    def count(self, user_id: int) -> int:
        """How many streams ``user_id`` has open in this process."""
        return len(self._streams.get(user_id, ()))

    def poke_all(self) -> None:
        """Wake every stream of this process to read the database."""
        for streams in list(self._streams.values()):
            for sub in list(streams):
                sub.poke()

    def announce(self, user_id: int, notification_id: int) -> None:
        """Hint every stream of ``user_id`` in this process."""
        for sub in list(self._streams.get(user_id, ())):
            sub.hint(notification_id)


def hub(ctx: PlatformContext) -> Hub:
    """This process's hub of open streams."""
    found: Hub | None = ctx.state.get(_HUB)
    if found is None:
        found = ctx.state[_HUB] = Hub()
    return found


def reliable(ctx: PlatformContext) -> bool:
    """True while this process receives every process's announcements (subscribed to the
    shared Redis): streams then need not poll the database at each heartbeat."""
    return bool(ctx.state.get(_SUBSCRIBED))


def channel(ctx: PlatformContext) -> str:
    """The pub/sub channel of this platform's notification announcements."""
    return shared_key(ctx.config, "notifications")


async def serialize(ctx: PlatformContext, session: AsyncSession) -> None:
    """Make this transaction's notifications commit in id order with everyone else's
    (PostgreSQL: an advisory lock held to the commit; once per transaction), and
    announce them after the commit. Call before adding notifications."""
    track(ctx, session)
    info = session.info.setdefault(_INFO, {"locked": False, "new": []})
    if ctx.db.dialect == "postgresql" and not info["locked"]:
        await session.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": LOCK_NAMESPACE})
        info["locked"] = True


def track(ctx: PlatformContext, session: AsyncSession) -> None:
    """Announce the notifications ``session`` inserts once its transaction commits."""
    sync = session.sync_session
    if sa_event.contains(sync, "after_flush", _collect):
        return
    session.info["live_ctx"] = ctx
    sa_event.listen(sync, "after_flush", _collect)
    sa_event.listen(sync, "after_commit", _announce)
    sa_event.listen(sync, "after_rollback", _forget)


def _collect(sync: Any, _flush: Any) -> None:
    from platform_core.notifications.models import Notification

    info = sync.info.setdefault(_INFO, {"locked": False, "new": []})
    for obj in sync.new:
        if isinstance(obj, Notification):
            info["new"].append((obj.user_id, obj.id))


def _forget(sync: Any) -> None:
    info = sync.info.get(_INFO)
    if info is not None:
        info["new"] = []
        info["locked"] = False


def _announce(sync: Any) -> None:
    info = sync.info.get(_INFO)
    ctx = sync.info.get("live_ctx")
    if info is None or ctx is None:
        return
    new, info["new"], info["locked"] = info["new"], [], False
    if new:
        announce(ctx, new)


def announce(ctx: PlatformContext, notes: list[tuple[int, int]]) -> None:
    """Hint this process's streams of ``(user_id, notification_id)`` pairs at once, and
    every other process's through Redis (published in the background)."""
    local = hub(ctx)
    for user_id, notification_id in notes:
        local.announce(user_id, notification_id)
    if redis_url(ctx.config) is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop (never the case in the platform's processes): heartbeats catch up
    pending: set[asyncio.Task[None]] = ctx.state.setdefault(_PENDING, set())
    task = loop.create_task(_publish(ctx, notes))
    pending.add(task)
    task.add_done_callback(pending.discard)


async def _publish(ctx: PlatformContext, notes: list[tuple[int, int]]) -> None:
    from redis.exceptions import RedisError

    redis = shared_client(ctx)
    if redis is None:
        return
    try:
        await redis.publish(channel(ctx), json.dumps([[u, n] for u, n in notes]))
    except (RedisError, OSError) as exc:
        log.warning("could not publish live notifications (heartbeats catch up): %s", exc)


async def flush(ctx: PlatformContext) -> None:
    """Wait for announcements still being published (before the loop ends)."""
    pending: set[asyncio.Task[None]] = ctx.state.get(_PENDING, set())
    if pending:
        await asyncio.gather(*list(pending), return_exceptions=True)


async def listen(ctx: PlatformContext, stop: asyncio.Event) -> None:
    """Hint this process's streams of every announcement published by any process until
    ``stop`` is set; resubscribes every second while Redis is unreachable."""
    url = redis_url(ctx.config)
    if url is None:
        return
    failures = 0
    while not stop.is_set():
        redis = new_client(url)
        try:
            await _subscribed(ctx, redis, stop)
            failures = 0
        except Exception as exc:  # Redis down or gone: streams poll at heartbeats meanwhile
            if failures == 0:
                log.warning("live notifications: Redis unreachable, heartbeats only: %s", exc)
            failures += 1
        finally:
            ctx.state[_SUBSCRIBED] = False
            with contextlib.suppress(Exception):
                await redis.aclose()
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT_DELAY)


async def _subscribed(ctx: PlatformContext, redis: Any, stop: asyncio.Event) -> None:
    local = hub(ctx)
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(channel(ctx))
        while not stop.is_set():
            message = await pubsub.get_message(timeout=0.5)
            if message is None:
                continue
            if message.get("type") == "subscribe":
                ctx.state[_SUBSCRIBED] = True
                local.poke_all()  # anything may have been announced while unsubscribed
                continue
            if message.get("type") != "message":
                continue
            try:
                notes = json.loads(message["data"])
                for user_id, notification_id in notes:
                    local.announce(int(user_id), int(notification_id))
            except (ValueError, TypeError) as exc:
                log.warning("live notifications: bad message ignored: %s", exc)
