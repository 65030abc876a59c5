"""Counts of the sends each modem made since the daemon started, for ``/metrics``: parts
sent, failures by whose problem they were (:class:`.failures.Blame`) and how long the modem
took to answer each part (a histogram). Kept in memory by the dispatcher's sender threads, a
few integer additions under a lock per part; Prometheus' counters start again at a restart
and its ``rate()`` knows that.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

from .failures import Blame

# Seconds from a part handed to the modem to the network's answer (AT+CMGS): a modem on a
# good network answers in 1-4 s, a congested one in tens.
LATENCY_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)


@dataclass
class ModemSends:
    """One modem's figures: ``buckets[i]`` counts the answers within ``LATENCY_BUCKETS[i]``
    seconds and not the bucket before (the exposition makes them cumulative)."""

    sent: int = 0
    errors: dict[str, int] = field(default_factory=lambda: {b.value: 0 for b in Blame})
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    seconds_sum: float = 0.0
    answers: int = 0

    def copy(self) -> ModemSends:
        return ModemSends(
            self.sent, dict(self.errors), list(self.buckets), self.seconds_sum, self.answers
        )


class SendStats:
    """What the dispatcher's senders tell about each part; read by :meth:`snapshot`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._modems: dict[str, ModemSends] = {}

    def _observe(self, m: ModemSends, seconds: float) -> None:
        m.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        m.seconds_sum += seconds
        m.answers += 1

    def sent(self, modem_id: str, seconds: float) -> None:
        """A part the network took after ``seconds``."""
        with self._lock:
            m = self._modems.setdefault(modem_id, ModemSends())
            m.sent += 1
            self._observe(m, seconds)

    def failed(self, modem_id: str, blame: Blame, seconds: float) -> None:
        """A part that failed (whose problem: ``blame``) after ``seconds``."""
        with self._lock:
            m = self._modems.setdefault(modem_id, ModemSends())
            m.errors[blame.value] = m.errors.get(blame.value, 0) + 1
            self._observe(m, seconds)

    def snapshot(self) -> dict[str, ModemSends]:
        """A copy of every modem's figures."""
        with self._lock:
            return {k: v.copy() for k, v in self._modems.items()}
