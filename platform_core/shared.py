"""The Redis that several platform processes share, when one is configured.

``[core.redis] url``, else the Redis of ``[core.jobs] broker_url``, else none: then login
limits and the credential cache stay per process. Keys and channels start with
``[core.redis] prefix``. A client is made per event loop (the CLI runs each command in a
fresh loop) and closed by :func:`close_clients`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from platform_core.config import Config
    from platform_core.context import PlatformContext

CONNECT_TIMEOUT = 2.0
"""Seconds to open a connection to Redis before falling back (or retrying)."""
COMMAND_TIMEOUT = 2.0
"""Seconds one Redis command may take before it counts as failed."""
_CLIENTS = "shared_redis_clients"


def redis_url(config: Config) -> str | None:
    """The shared Redis URL: ``[core.redis] url``, else the jobs broker's, else None."""
    if config.core.redis.url:
        return config.core.redis.url
    broker = config.core.jobs.broker_url
    if broker and broker.startswith(("redis://", "rediss://", "unix://")):
        from platform_core.jobs.distributed import broker_target

        return broker_target(broker)[0]
    return None


def shared_key(config: Config, *parts: str) -> str:
    """``<prefix>:<part>:<part>...``: a Redis key or channel of this platform."""
    return ":".join((config.core.redis.prefix, *parts))


def new_client(url: str) -> Any:
    """A fresh asyncio Redis client with the platform's timeouts (caller closes it)."""
    from redis.asyncio import Redis

    return Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=COMMAND_TIMEOUT
    )


def client(ctx: PlatformContext) -> Any | None:
    """This event loop's client of the shared Redis; None when none is configured."""
    url = redis_url(ctx.config)
    if url is None:
        return None
    loop = asyncio.get_running_loop()
    clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = ctx.state.setdefault(_CLIENTS, {})
    entry = clients.get(id(loop))
    if entry is None or entry[0] is not loop:
        entry = clients[id(loop)] = (loop, new_client(url))
    return entry[1]


async def close_clients(ctx: PlatformContext) -> None:
    """Close the current event loop's shared Redis client (and forget the others')."""
    clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = ctx.state.pop(_CLIENTS, {})
    loop = asyncio.get_running_loop()
    for owner, redis in clients.values():
        if owner is loop:
            await redis.aclose()
