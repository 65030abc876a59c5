"""The network-wide clock: the time stamped on every SMS the simulated network carries."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class NetworkClock:
    """Wall-clock time for the simulated network, optionally frozen at a start point.

    With ``start`` it runs from that instant at real speed, so two runs with the same seed and
    start stamp the same times up to the test's own duration; :meth:`advance` jumps ahead
    (for validity periods and "old message" scenarios) without sleeping.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._start = start
        self._t0 = time.monotonic()
        self._offset = timedelta(0)

    def now(self) -> datetime:
        """The current network time, timezone-aware, second precision (what an SCTS can carry)."""
        with self._lock:
            if self._start is None:
                base = datetime.now(UTC)
            else:
                base = self._start + timedelta(seconds=time.monotonic() - self._t0)
            return (base + self._offset).replace(microsecond=0)

    def advance(self, seconds: float) -> None:
        """Move the network time forward by ``seconds``."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)
