"""A token bucket per API token: ``burst`` requests at once, refilled at ``rate_per_minute``.

Kept in memory (a restart gives every token a full bucket, which is harmless); a few dozen bytes
per token, and tokens are few.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBuckets:
    """Per-key token buckets; :meth:`take` says whether a request may go now."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: object, rate_per_minute: int, burst: int) -> float:
        """0 when a request of ``key`` may go now (and it is counted), else the seconds until
        one may. ``rate_per_minute`` 0 means no limit."""
        if rate_per_minute <= 0:
            return 0.0
        per_second = rate_per_minute / 60.0
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) * per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / per_second
