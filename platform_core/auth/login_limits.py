"""Login attempt limits: per user name and per client address, shared through Redis.

An attempt *reserves* its place before the password is checked: it counts as a failure
from the start, is kept when the password is wrong, and is taken back when the login
succeeds (the user's failures are then forgotten, as before) or the check itself broke.
So N concurrent attempts can never all slip past a limit they would exceed together.

With a shared Redis (:mod:`platform_core.shared`) the counts live there, in one sorted set
per key, and every process checks and reserves atomically in one Lua script using Redis's
clock: N processes together allow ``[core.auth] login_attempts`` failures per
``login_window_seconds``, not N times as many. Without Redis, or while it is unreachable
(logged), each process counts on its own (:class:`LocalLoginLimiter`).

The client address is the TCP peer's; ``X-Forwarded-For`` is believed only from
``[core] trusted_proxies`` (docs/operations.md, section 10).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from platform_core.context import PlatformContext

log = logging.getLogger("platform_core.auth")

LOCAL = "local:"
"""Ticket prefix of a reservation made in process memory."""
WARN_EVERY = 30.0
"""Seconds between two warnings that Redis is unreachable for login limits."""
RETRY_AFTER_FAILURE = 5.0
"""Seconds a process counts on its own after Redis failed, before it tries Redis again."""

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
end
return 0
"""


class LoginLimiter(Protocol):
    """Reserve, then settle, one login attempt under every key of ``keys``."""

    async def acquire(self, keys: Sequence[str]) -> tuple[int, str]:
        """``(0, ticket)`` when the attempt may go ahead, else ``(seconds to wait, "")``."""
        ...

    async def settle(self, keys: Sequence[str], ticket: str, *, outcome: str) -> None:
        """``outcome``: ``failed`` keeps the reservation as a failure; ``succeeded`` forgets
        the first key's failures and takes the reservation back; ``aborted`` takes it back."""
        ...


class LocalLoginLimiter:
    """The limiter of one process: failures per key per ``window`` seconds, in memory."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, list[tuple[float, str]]] = {}

    def _live(self, key: str, now: float) -> list[tuple[float, str]]:
        hits = [h for h in self._hits.get(key, ()) if h[0] > now - self.window]
        self._hits[key] = hits
        return hits

    async def acquire(self, keys: Sequence[str]) -> tuple[int, str]:
        """See :class:`LoginLimiter`."""
        now = time.monotonic()
        if len(self._hits) >= self.max_keys:  # bound memory under a spray of random names
            self._hits.clear()
        wait = 0.0
        for key in keys:
            hits = self._live(key, now)
            if len(hits) >= self.limit:
                wait = max(wait, hits[0][0] + self.window - now)
        if wait > 0:
            return max(1, math.ceil(wait)), ""
        ticket = LOCAL + uuid.uuid4().hex
        for key in keys:
            self._hits[key].append((now, ticket))
        return 0, ticket

    async def settle(self, keys: Sequence[str], ticket: str, *, outcome: str) -> None:
        """See :class:`LoginLimiter`."""
        if outcome == "failed":
            return
        for i, key in enumerate(keys):
            if i == 0 and outcome == "succeeded":
                self._hits.pop(key, None)
            elif key in self._hits:
                self._hits[key] = [h for h in self._hits[key] if h[1] != ticket]


class RedisLoginLimiter:
    """The limiter all processes share, in Redis; falls back to ``local`` when it is down."""

    def __init__(self, ctx: PlatformContext, local: LocalLoginLimiter) -> None:
        from platform_core.shared import shared_key

        self.ctx = ctx
        self.local = local
        self.prefix = shared_key(ctx.config, "login")
        self._warned = 0.0
        self._down_until = 0.0

    def _keys(self, keys: Sequence[str]) -> list[str]:
        return [f"{self.prefix}:{k}" for k in keys]

    def _redis(self) -> Any:
        from platform_core.shared import client

        return client(self.ctx)

    def _failed(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + RETRY_AFTER_FAILURE
        if time.monotonic() - self._warned > WARN_EVERY:
            self._warned = time.monotonic()
            log.warning("login limits: Redis unreachable, counting in this process only: %s", exc)

    async def acquire(self, keys: Sequence[str]) -> tuple[int, str]:
        """See :class:`LoginLimiter`."""
        from redis.exceptions import RedisError

        if time.monotonic() < self._down_until:
            return await self.local.acquire(keys)
        ticket = uuid.uuid4().hex
        window_ms = int(self.local.window * 1000)
        try:
            wait_ms = await self._redis().eval(
                _ACQUIRE, len(keys), *self._keys(keys), window_ms, self.local.limit, ticket
            )
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await self.local.acquire(keys)
        if int(wait_ms) > 0:
            return max(1, math.ceil(int(wait_ms) / 1000)), ""
        return 0, ticket

    async def settle(self, keys: Sequence[str], ticket: str, *, outcome: str) -> None:
        """See :class:`LoginLimiter`."""
        from redis.exceptions import RedisError

        if ticket.startswith(LOCAL):
            await self.local.settle(keys, ticket, outcome=outcome)
            return
        if outcome == "failed":
            return
        full = self._keys(keys)
        try:
            pipe = self._redis().pipeline(transaction=True)
            for i, key in enumerate(full):
                if i == 0 and outcome == "succeeded":
                    pipe.delete(key)
                else:
                    pipe.zrem(key, ticket)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc)


def login_limiter(ctx: PlatformContext) -> LoginLimiter:
    """This process's login limiter: shared through Redis when one is configured."""
    limiter: LoginLimiter | None = ctx.state.get("login_limiter")
    if limiter is None:
        from platform_core.shared import redis_url

        auth = ctx.config.core.auth
        local = LocalLoginLimiter(auth.login_attempts, auth.login_window_seconds)
        shared = redis_url(ctx.config) is not None
        limiter = RedisLoginLimiter(ctx, local) if shared else local
        ctx.state["login_limiter"] = limiter
    return limiter
