"""Live-update streams (``GET /api/events``) served by one thread instead of a web server
thread each.

A stream is mostly waiting: for the next event, the next keep-alive, its end. Holding a
server thread for each (50 of them) cost a stack and a frame chain per stream, and each
stream woke every half second to look at its connection and the stopping flag. Here the web
server's worker answers the request (session, slot, headers and the first chunk, as for any
page) and then hands the connection to the hub (gateway/web/server.py); the hub's one thread
waits in ``select`` for whichever comes first: an event published on the bus, a stream's
keep-alive or end time, a browser hanging up, a slow browser's socket taking more bytes. An
idle gateway with open browsers sleeps until the next keep-alive (no polling).

Each event is formatted once for every stream. A stream whose browser stops reading keeps at
most :data:`MAX_PENDING` bytes; beyond that it is closed (the browser reconnects and its page
reloads what it missed from the store), never growing the daemon's memory.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable

from ..messaging.events import Event, EventBus
from .views.live import REPLACED, sse_event

log = logging.getLogger(__name__)

# The kernel's buffer for a stream's socket: events are small and few, and left to grow (up to
# 4 MiB each on Linux) fifty silent browsers could hold 200 MiB of the Pi's memory.
SEND_BUFFER = 64 * 1024
MAX_PENDING = 64 * 1024  # bytes a stream may keep for a browser that stops reading (x 50 streams)
CLOSE_GRACE = 2.0  # seconds an ending stream has to take its last bytes before it is cut
KEEP_ALIVE = ": keep-alive\n\n"


class HubStream:
    """One live stream in the hub: its bytes not yet written, its times, and what to call when
    it ends (the slot's release). Made by :meth:`StreamHub.open`; the server attaches its
    socket once the response's head and first chunk are out."""

    __slots__ = (
        "chunked",
        "closing_by",
        "deadline",
        "ended",
        "heartbeat",
        "next_beat",
        "pending",
        "release",
        "replaced",
        "seconds",
        "since",
        "sock",
        "writable_wait",
    )

    def __init__(
        self,
        since: int,
        release: Callable[[], None],
        replaced: threading.Event | None,
        seconds: float,
        heartbeat: float,
    ) -> None:
        self.since = since  # events numbered above this are for this stream
        self.release = release
        self.replaced = replaced
        self.seconds = seconds
        self.heartbeat = heartbeat
        self.sock: socket.socket | None = None
        self.chunked = False
        self.pending = bytearray()
        self.deadline = 0.0
        self.next_beat = 0.0
        self.closing_by: float | None = None  # set when it ends: flush, then close
        self.writable_wait = False  # registered for EVENT_WRITE too
        self.ended = False

    def put(self, text: str) -> None:
        """Queue ``text`` for the browser (framed as an HTTP/1.1 chunk when the response is
        chunked)."""
        data = text.encode("utf-8")
        if self.chunked:
            self.pending += b"%x\r\n" % len(data) + data + b"\r\n"
        else:
            self.pending += data


class StreamHub:
    """The live streams of the web app, on one thread; see the module's docstring."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._lock = threading.Lock()
        self._streams: set[HubStream] = set()  # open: attached or about to be
        self._attaching: list[HubStream] = []
        self._events: list[tuple[int, Event]] = []
        self._received = 0
        self._woken = False
        self._stopping = False
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop_listening: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None

    # ----- the web server's and the view's side -----

    def start(self) -> None:
        self._stop_listening = self._bus.listen(self._on_event)
        self._thread = threading.Thread(target=self._run, name="live-streams", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End every stream (each gets its end of response) and the thread; again: nothing."""
        if self._stop_listening is not None:
            self._stop_listening()
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the live-streams thread did not end within %.0f s", timeout)
                return
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def open(
        self,
        *,
        release: Callable[[], None],
        replaced: threading.Event | None = None,
        seconds: float,
        heartbeat: float,
    ) -> HubStream:
        """A new stream: every event published from now on is kept for it until the server
        :meth:`attach`es its connection (or :meth:`abandon`s it)."""
        with self._lock:
            stream = HubStream(self._received, release, replaced, seconds, heartbeat)
            self._streams.add(stream)
        return stream

    def attach(self, stream: HubStream, sock: socket.socket, *, chunked: bool) -> None:
        """The response's head and first chunk are written: from here on the hub writes to
        ``sock`` (non-blocking from now on) and closes it when the stream ends."""
        stream.chunked = chunked
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError as exc:  # not a TCP socket (a test's socket pair may refuse it)
            log.debug("could not bound a live stream's send buffer: %s", exc)
        thread = self._thread
        with self._lock:
            # Stopped, fell behind before this, or the hub's thread failed (logged): the
            # browser's EventSource reconnects, to a worker-served stream (alive()).
            refused = self._stopping or stream.ended or thread is None or not thread.is_alive()
            if not refused:
                stream.sock = sock
                self._attaching.append(stream)
        if refused:
            self._close_now(sock)
            self.abandon(stream)  # nothing when it had already ended
            return
        self.wake()

    def abandon(self, stream: HubStream) -> None:
        """The response never reached the point of handing over (an error, a HEAD request):
        forget the stream and free its slot."""
        with self._lock:
            if stream.ended:
                return
            stream.ended = True
            self._streams.discard(stream)
        self._finish(stream)

    def wake(self) -> None:
        """Have the hub's thread look at its streams now (a stream was replaced, attached)."""
        with self._lock:
            if self._woken:
                return
            self._woken = True
        with contextlib.suppress(BlockingIOError):  # a byte is already waiting
            self._wake_w.send(b"\0")

    def alive(self) -> bool:
        """True while the hub's thread serves streams (the server hands new ones to it only
        then; else they are served on a worker as under other servers)."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopping

    def count(self) -> int:
        """Streams open (attached or being handed over)."""
        with self._lock:
            return len(self._streams)

    def _on_event(self, event: Event) -> None:
        # On the publishing thread: note it and wake the hub; nothing slower.
        with self._lock:
            if self._stopping or not self._streams:
                return
            self._received += 1
            self._events.append((self._received, event))
        self.wake()

    # ----- the hub's thread -----

    def _run(self) -> None:
        attached: set[HubStream] = set()
        try:
            while True:
                timeout = self._next_timeout(attached)
                ready = self._selector.select(timeout)
                for key, mask in ready:
                    stream = key.data
                    if stream is None:
                        self._drain_wake()
                    elif mask & selectors.EVENT_READ:
                        # An EventSource sends nothing after its request: any byte or the
                        # end of the stream means the browser has gone.
                        self._end(stream, attached, cut=True)
                    elif mask & selectors.EVENT_WRITE:
                        self._flush(stream, attached)
                if self._turn(attached):
                    return
        except Exception:
            # Logged once here; new streams are served on the web server's workers (alive()).
            log.exception("the live-streams thread failed; open streams are closed")
            with self._lock:
                arriving, self._attaching = self._attaching, []
            for stream in [*attached, *arriving]:
                self._end(stream, attached, cut=True)

    def _turn(self, attached: set[HubStream]) -> bool:
        """Take what arrived (streams, events), apply the streams' times, write; True when
        the hub has stopped and every stream is closed."""
        with self._lock:
            events, self._events = self._events, []
            arriving, self._attaching = self._attaching, []
            stopping = self._stopping
            streams = list(self._streams)
        now = time.monotonic()
        for stream in arriving:
            if stream.ended:  # fell behind while being handed over: already closed
                continue
            stream.deadline = now + stream.seconds
            stream.next_beat = now + stream.heartbeat
            attached.add(stream)
            self._selector.register(stream.sock, selectors.EVENT_READ, stream)
        for number, event in events:
            text = sse_event(event)
            for stream in streams:
                if number > stream.since and stream.closing_by is None:
                    stream.put(text)
        for stream in streams:
            if len(stream.pending) > MAX_PENDING:
                log.info("a live stream fell %d bytes behind; closed", len(stream.pending))
                self._end(stream, attached, cut=True)
        for stream in list(attached):
            if stream.closing_by is not None:
                if now >= stream.closing_by:
                    self._end(stream, attached, cut=True)
                continue
            if stopping or now >= stream.deadline:
                self._end(stream, attached)
            elif stream.replaced is not None and stream.replaced.is_set():
                stream.put(REPLACED)
                self._end(stream, attached)
            elif now >= stream.next_beat:
                stream.put(KEEP_ALIVE)
                stream.next_beat = now + stream.heartbeat
        for stream in list(attached):
            if stream.pending:
                self._flush(stream, attached)
        # Streams still being handed over when the hub stops are closed by attach().
        return stopping and not attached

    def _next_timeout(self, attached: set[HubStream]) -> float | None:
        times = [
            s.closing_by if s.closing_by is not None else min(s.deadline, s.next_beat)
            for s in attached
        ]
        if not times:
            return None  # nothing to do until an event, a stream or the stop arrives
        return max(0.0, min(times) - time.monotonic())

    def _drain_wake(self) -> None:
        # Read first, then allow the next wake-up to write: a wake() in between finds the
        # flag still set and sends nothing, but what it announced is already in the lists.
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        with self._lock:
            self._woken = False

    def _flush(self, stream: HubStream, attached: set[HubStream]) -> None:
        sock = stream.sock
        if sock is None:
            return
        try:
            while stream.pending:
                sent = sock.send(stream.pending)
                del stream.pending[:sent]
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass  # the rest when the socket takes more
        except OSError as exc:  # the browser went away mid-write
            log.debug("live stream write failed: %s", exc)
            self._end(stream, attached, cut=True)
            return
        if not stream.pending and stream.closing_by is not None:
            self._end(stream, attached, cut=True)
            return
        want_write = bool(stream.pending)
        if want_write != stream.writable_wait:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
            self._selector.modify(sock, events, stream)
            stream.writable_wait = want_write

    def _end(self, stream: HubStream, attached: set[HubStream], *, cut: bool = False) -> None:
        """End a stream: with its end of response written first, or ``cut`` at once."""
        if stream.ended:
            return
        if not cut and stream.sock is not None and stream.closing_by is None:
            if stream.chunked:
                stream.pending += b"0\r\n\r\n"
            stream.closing_by = time.monotonic() + CLOSE_GRACE
            self._flush(stream, attached)
            return
        with self._lock:
            if stream.ended:
                return
            stream.ended = True
            self._streams.discard(stream)
        if stream in attached:
            self._selector.unregister(stream.sock)
            attached.discard(stream)
        if stream.sock is not None:
            self._close_now(stream.sock)
        self._finish(stream)

    @staticmethod
    def _close_now(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.close()

    @staticmethod
    def _finish(stream: HubStream) -> None:
        stream.pending = bytearray()
        try:
            stream.release()
        except Exception:  # a slot's release must not take the other streams down
            log.exception("releasing a live stream's slot failed")
