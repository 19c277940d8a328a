"""Credential invalidations fanned out to every process, over Redis pub/sub.

``ctx.forget_credentials()`` (after revoking a token, disabling or demoting a user,
rotating a client's token) invalidates this process's credential cache at once and, with a
shared Redis (:mod:`platform_core.shared`), publishes on ``<prefix>:credentials``. Every
``platformctl serve`` subscribes (:func:`listen`) and invalidates its own cache on each
message, so the change takes effect everywhere within milliseconds, not ``cache_seconds``.

The cache is trusted only while the subscription is up: before the first subscription,
and whenever the connection to Redis is lost, nothing is cached (every request resolves
its credential in the database) until it is back; a missed message can therefore never
keep a revoked credential alive. Redis was chosen over PostgreSQL LISTEN/NOTIFY because
it works the same on SQLite and needs no connection held outside the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from platform_core.shared import new_client, redis_url, shared_key

if TYPE_CHECKING:
    from platform_core.context import PlatformContext

log = logging.getLogger("platform_core.auth")

RECONNECT_DELAY = 1.0
"""Seconds between two attempts to subscribe while Redis is unreachable."""
_PENDING = "credential_publishes"


def channel(ctx: PlatformContext) -> str:
    """The pub/sub channel of this platform's credential invalidations."""
    return shared_key(ctx.config, "credentials")


def _message() -> str:
    return json.dumps({"pid": os.getpid(), "at": time.time()})


async def publish(ctx: PlatformContext) -> bool:
    """Publish one invalidation now; False (logged) when Redis is unreachable."""
    from redis.exceptions import RedisError

    url = redis_url(ctx.config)
    if url is None:
        return False
    client = new_client(url)
    try:
        await client.publish(channel(ctx), _message())
        return True
    except (RedisError, OSError) as exc:
        log.warning("could not publish a credential invalidation: %s", exc)
        return False
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


def forget(ctx: PlatformContext) -> None:
    """Invalidate this process's cache, then every other process's (published in the
    background of the running event loop, or at once when called outside one)."""
    ctx.credential_cache.invalidate()
    url = redis_url(ctx.config)
    if url is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _publish_blocking(ctx, url)
        return
    pending: set[asyncio.Task[bool]] = ctx.state.setdefault(_PENDING, set())
    task = loop.create_task(publish(ctx))
    pending.add(task)
    task.add_done_callback(pending.discard)


def _publish_blocking(ctx: PlatformContext, url: str) -> None:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        with Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2) as client:
            client.publish(channel(ctx), _message())
    except (RedisError, OSError) as exc:
        log.warning("could not publish a credential invalidation: %s", exc)


async def flush(ctx: PlatformContext) -> None:
    """Wait for invalidations still being published (before a command's loop ends)."""
    pending: set[asyncio.Task[bool]] = ctx.state.get(_PENDING, set())
    if pending:
        await asyncio.gather(*list(pending), return_exceptions=True)


async def listen(ctx: PlatformContext, stop: asyncio.Event) -> None:
    """Invalidate the cache on every published invalidation until ``stop`` is set.

    The cache is enabled only while subscribed (see the module docs).
    """
    url = redis_url(ctx.config)
    if url is None:
        return
    cache = ctx.credential_cache
    cache.enabled = False
    failures = 0
    while not stop.is_set():
        client = new_client(url)
        try:
            await _subscribed(ctx, client, stop)
        except Exception as exc:  # Redis down or gone: retry, uncached meanwhile
            if cache.enabled or failures == 0:  # once per outage, not once a second
                log.warning("credential invalidations: Redis unreachable, cache off: %s", exc)
            failures += 1
        finally:
            cache.enabled = False
            cache.clear()
            with contextlib.suppress(Exception):
                await client.aclose()
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT_DELAY)


async def _subscribed(ctx: PlatformContext, client: Any, stop: asyncio.Event) -> None:
    cache = ctx.credential_cache
    async with client.pubsub() as pubsub:
        await pubsub.subscribe(channel(ctx))
        while not stop.is_set():
            message = await pubsub.get_message(timeout=0.5)
            if message is None:
                continue
            kind = message.get("type")
            if kind == "subscribe":
                cache.invalidate(0)  # anything may have changed while unsubscribed
                cache.enabled = True
                log.info("credential invalidations: subscribed, cache on")
            elif kind == "message":
                cache.invalidate()
