"""An in-process event bus: every change (message in, status changed, modem up/down) is
published here, and each open chat window or SSE stream holds a subscription.

Subscribers get bounded queues: a browser that stops reading loses its oldest events (it
reloads from the store when it reconnects), never the daemon's memory.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One change: ``kind`` (message.new, message.status, modem.up, modem.down, modem.health,
    profile.changed, broadcast.progress) and its JSON-able ``data``; ``id`` increases, for
    SSE's Last-Event-ID."""

    id: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class Subscription:
    """A subscriber's queue of events; iterate with ``get(timeout)``; close when done."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=maxsize)
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds without one."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def poke(self) -> None:
        """Wake the reader blocked in :meth:`get` with an event of kind ``wake`` that no
        one published (the broadcast feeder: a broadcast changed, or it is to stop)."""
        self._offer(Event(0, "wake"))

    def close(self) -> None:
        self._bus._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Publish/subscribe between the daemon's threads and the web app."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[Event], None]] = []

    def listen(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``fn`` with every event, on the publishing thread (so it must return at once:
        set a flag, wake a thread); returns the function that stops it. For the daemon's own
        workers, which need a wake-up, not a queue of events."""
        with self._lock:
            self._listeners.append(fn)

        def stop() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return stop

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, maxsize)
        with self._lock:
            self._subs.add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, kind: str, /, **data: Any) -> Event:
        with self._lock:
            event = Event(next(self._ids), kind, data)
            subs = list(self._subs)
            listeners = list(self._listeners)
        for sub in subs:
            sub._offer(event)
        for fn in listeners:
            try:
                fn(event)
            except Exception:  # a listener's bug must not stop the publisher
                log.exception("event listener %r failed on %s", fn, kind)
        log.debug("event %s %s", kind, data)
        return event

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subs)
