"""A short-lived, in-process cache of resolved credentials.

Resolving a bearer credential costs one or two queries per request. The cache keeps the
resolved principal for ``[core.auth] cache_seconds`` (default 5; 0 disables it), keyed by
a digest of the credential. Revoking a token or changing a user through this process clears
the cache at once; a change made by another process (the CLI, another server) takes effect
within ``cache_seconds``. Failed resolutions are never cached. A credential's own expiry
(an API token's ``expires_at``, a JWT's ``exp``) is checked on every hit, so an expired
credential is refused at once, cached or not.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from platform_core.db import utcnow

if TYPE_CHECKING:
    from platform_core.auth.service import Principal


class CredentialCache:
    """Principal by credential digest, each entry valid for ``ttl`` seconds."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}

    @staticmethod
    def _key(credential: str) -> str:
        return hashlib.sha256(credential.encode()).hexdigest()

    def get(self, credential: str) -> Principal | None:
        """The cached principal, or None when absent, stale or past the credential's expiry."""
        if self.ttl <= 0:
            return None
        key = self._key(credential)
        entry = self._entries.get(key)
        if entry is None:
            return None
        stale_at, principal = entry
        expires_at = principal.expires_at
        if stale_at < time.monotonic() or (expires_at is not None and expires_at <= utcnow()):
            self._entries.pop(key, None)
            return None
        return principal

    def put(self, credential: str, principal: Principal) -> None:
        """Remember ``principal`` for ``credential``."""
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[self._key(credential)] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        """Forget everything (after a revocation or a change of user)."""
        self._entries.clear()
