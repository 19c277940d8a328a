"""A sliding-window limiter for login attempts, kept in process memory.

Counts failed attempts per key (user name, client address) inside a window. With several
server processes each keeps its own counts, so the effective limit is per process; this is
documented in docs/operations.md.

The client address is the TCP peer's: ``X-Forwarded-For`` is believed only from the
proxies in ``[core] trusted_proxies`` (empty by default), which the app applies before any
route sees the request, so a client cannot rotate a made-up address past the limit.
"""

from __future__ import annotations

import math
import time
from collections import deque


class SlidingWindowLimiter:
    """At most ``limit`` failures per key per ``window`` seconds."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it may try now."""
        now = time.monotonic()
        hits = self._prune(key, now)
        if len(hits) < self.limit:
            return 0
        return max(1, math.ceil(hits[0] + self.window - now))

    def hit(self, key: str) -> None:
        """Record one failure for ``key``."""
        if len(self._hits) >= self.max_keys:  # bound memory under a spray of random names
            self._hits.clear()
        self._prune(key, time.monotonic()).append(time.monotonic())

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures (after a successful login)."""
        self._hits.pop(key, None)
