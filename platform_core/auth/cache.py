"""A short-lived, in-process cache of resolved credentials.

Resolving a bearer credential costs one or two queries per request. The cache keeps the
resolved principal for ``[core.auth] cache_seconds`` (default 5; 0 disables it), keyed by
a digest of the credential. Failed resolutions are never cached. A credential's own expiry
(an API token's ``expires_at``, a JWT's ``exp``) is checked on every hit, so an expired
credential is refused at once, cached or not.

Revoking a token or changing a user calls ``ctx.forget_credentials()``, which
:meth:`CredentialCache.invalidate` s this process's cache and, with a shared Redis, every
other process's (:mod:`platform_core.auth.invalidation`). An invalidation also holds the
cache off for :data:`HOLD_SECONDS`: the change that caused it commits a moment later, and a
resolution that read the old rows meanwhile must not be cached. Without Redis a change made
by another process takes effect within ``cache_seconds``.

Concurrent misses for one credential (every connection of a busy client when its entry
goes stale) run the queries once: :meth:`CredentialCache.get_or_resolve` lets the others
wait for that resolution and read its result from the cache; when it cached nothing (a
refused credential, an invalidation meanwhile) each of them resolves on its own, as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from platform_core.db import utcnow

if TYPE_CHECKING:
    from platform_core.auth.service import Principal

HOLD_SECONDS = 1.0
"""Seconds after an invalidation during which nothing is cached."""


class CredentialCache:
    """Principal by credential digest, each entry valid for ``ttl`` seconds."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self.generation = 0
        """Bumped by every invalidation: a resolution started before one is not cached."""
        self.enabled = True
        """False while invalidations from other processes cannot be received."""
        self._hold_until = 0.0
        self._pending: dict[str, asyncio.Future[None]] = {}

    @staticmethod
    def _key(credential: str) -> str:
        return hashlib.sha256(credential.encode()).hexdigest()

    def get(self, credential: str) -> Principal | None:
        """The cached principal, or None when absent, stale or past the credential's expiry."""
        if self.ttl <= 0 or not self.enabled:
            return None
        return self._lookup(self._key(credential))

    def _lookup(self, key: str) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stale_at, principal = entry
        expires_at = principal.expires_at
        if stale_at < time.monotonic() or (expires_at is not None and expires_at <= utcnow()):
            self._entries.pop(key, None)
            return None
        return principal

    async def get_or_resolve(
        self, credential: str, resolve: Callable[[], Awaitable[Principal | None]]
    ) -> Principal | None:
        """The cached principal, else ``await resolve()``, cached unless an invalidation
        happened meanwhile (see :meth:`put`).

        While one resolution of a credential runs, other callers for it wait for its end and
        use the cached result.
        """
        if self.ttl <= 0 or not self.enabled:
            return await resolve()
        key = self._key(credential)
        principal = self._lookup(key)
        if principal is not None:
            return principal
        running = self._pending.get(key)
        if running is not None:
            await asyncio.shield(running)
            principal = self._lookup(key) if self.enabled else None
            if principal is not None:
                return principal
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        own = key not in self._pending
        if own:
            self._pending[key] = done
        try:
            generation = self.generation
            principal = await resolve()
            if principal is not None:
                self.put(credential, principal, generation)
            return principal
        finally:
            if own:
                del self._pending[key]
                done.set_result(None)

    def put(self, credential: str, principal: Principal, generation: int | None = None) -> None:
        """Remember ``principal`` for ``credential``, unless an invalidation happened since
        ``generation`` (read before resolving) or within the last :data:`HOLD_SECONDS`."""
        if self.ttl <= 0 or not self.enabled or time.monotonic() < self._hold_until:
            return
        if generation is not None and generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[self._key(credential)] = (time.monotonic() + self.ttl, principal)

    @property
    def holding(self) -> bool:
        """True within :data:`HOLD_SECONDS` of an invalidation (a credential resolved now
        may predate the change that caused it)."""
        return time.monotonic() < self._hold_until

    def clear(self) -> None:
        """Forget everything (this process only; see ``ctx.forget_credentials()``)."""
        self._entries.clear()
        self.generation += 1

    def invalidate(self, hold: float = HOLD_SECONDS) -> None:
        """Forget everything and cache nothing for ``hold`` seconds (see the module docs)."""
        self.clear()
        self._hold_until = max(self._hold_until, time.monotonic() + hold)
