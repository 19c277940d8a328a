"""A sliding-window limiter kept in process memory (exported for plugins).

Counts hits per key inside a window. With several server processes each keeps its own
counts, so the effective limit is per process. Login attempts use
:mod:`platform_core.auth.login_limits` instead, which is shared through Redis when one is
configured (docs/scaling.md).
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
