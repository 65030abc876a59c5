"""Live updates: ``GET /api/events``, every event of the bus as server-sent events (``id``,
``event: <kind>``, ``data: <json>``), a ``: keep-alive`` comment every 15 s; the stream ends
after 55 s or when the app stops, and the browser's EventSource reconnects by itself.

Under the gateway's own server (gateway/web/server.py) the request is answered like any page
and then its connection is handed to the stream hub (gateway/web/stream_hub.py), which serves
every open stream on one thread; under another server or the test client the stream is a
generator on the request's thread (:func:`sse_stream`), with the same events, keep-alives and
end. Each stream still holds a socket and a subscriber's place, so streams are rationed
(:class:`StreamSlots`): at most ``SSE_MAX_STREAMS`` at once for the whole team and
``SSE_PER_USER`` for one user. A user's stream beyond their share ends their oldest stream
(with a ``live.replaced`` event, so that tab's script waits until it is looked at again rather
than taking the slot back at once); a stream beyond the team's total is answered 503 with
``Retry-After``. A stream whose browser went away is noticed within ``SSE_POLL`` seconds when
the server can see the connection (at once in the hub; within ``SSE_POLL`` seconds through
``gateway.client_gone`` on the generator's path), else at the next keep-alive, and its slot is
free again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from flask import Blueprint, Response, current_app, g, jsonify, request

from ...messaging.events import Event, Subscription
from ..context import app_state

log = logging.getLogger(__name__)

bp = Blueprint("live", __name__, url_prefix="/api")

SSE_SECONDS = 55.0  # a stream's life; the browser reconnects (proxies drop idle streams)
SSE_HEARTBEAT = 15.0
SSE_POLL = 0.5  # how often a quiet stream looks at the stopping flag and its connection
SSE_RETRY_MS = 2000  # how soon the browser reconnects after a stream ends
SSE_MAX_STREAMS = 50  # for the whole team
SSE_PER_USER = 8  # one person's open tabs
SSE_FULL_RETRY = 10  # seconds a stream refused for want of slots waits before trying again

# Set by gateway/web/server.py: a callable that is True once the browser has closed the
# connection (absent under other servers and the test client: the keep-alive notices then).
CLIENT_GONE = "gateway.client_gone"
# Set by gateway/web/server.py: its StreamHub. The view then opens the stream in the hub and
# leaves it under HUB_STREAM for the server to hand the connection over after the first chunk.
STREAM_HUB = "gateway.stream_hub"
HUB_STREAM = "gateway.hub_stream"


@dataclass(eq=False)
class StreamTicket:
    """One open stream's slot; ``replaced`` is set when its user opened one too many."""

    user_id: int
    opened: float
    replaced: threading.Event = field(default_factory=threading.Event)


class StreamSlots:
    """How many live streams are open, in all and per user; see the module's docstring."""

    def __init__(self, total: int = SSE_MAX_STREAMS, per_user: int = SSE_PER_USER) -> None:
        self.total = total
        self.per_user = per_user
        self._lock = threading.Lock()
        self._open: list[StreamTicket] = []  # oldest first

    def acquire(self, user_id: int) -> StreamTicket | None:
        """A slot for a new stream of this user (ending their oldest when they are at their
        share), or None when the team's total is reached."""
        with self._lock:
            mine = [t for t in self._open if t.user_id == user_id]
            if len(mine) >= self.per_user:
                oldest = mine[0]
                oldest.replaced.set()  # its thread ends the stream within SSE_POLL
                self._open.remove(oldest)
            elif len(self._open) >= self.total:
                return None
            ticket = StreamTicket(user_id, time.monotonic())
            self._open.append(ticket)
            return ticket

    def release(self, ticket: StreamTicket) -> None:
        """The stream ended (a replaced ticket was already let go; nothing happens twice)."""
        with self._lock:
            if ticket in self._open:
                self._open.remove(ticket)

    def count(self, user_id: int | None = None) -> int:
        """Open streams, of everyone or of one user."""
        with self._lock:
            return sum(1 for t in self._open if user_id is None or t.user_id == user_id)


def sse_event(event: Event) -> str:
    """One event in the text/event-stream format (JSON has no raw newline to split on)."""
    data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"


REPLACED = (
    "event: live.replaced\ndata: "
    + json.dumps({"reason": "this user opened more live pages; this one pauses until it is used"})
    + "\n\n"
)


CONNECTED = f"retry: {SSE_RETRY_MS}\n: connected\n\n"


def sse_stream(
    sub: Subscription,
    stopping: threading.Event,
    *,
    seconds: float = SSE_SECONDS,
    heartbeat: float = SSE_HEARTBEAT,
    replaced: threading.Event | None = None,
    client_gone: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """The event stream of one browser: every event of the subscription as it is published,
    a keep-alive comment when quiet, until ``seconds`` have passed, ``stopping`` is set, the
    stream was ``replaced`` by a newer one of its user, or ``client_gone()``. Closes the
    subscription when it ends."""
    try:
        # A first chunk at once: the headers go out and the browser's EventSource opens.
        yield CONNECTED
        start = time.monotonic()
        deadline = start + seconds
        next_beat = start + heartbeat
        while not stopping.is_set():
            if replaced is not None and replaced.is_set():
                yield REPLACED
                break
            if client_gone is not None and client_gone():
                break
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= next_beat:
                yield ": keep-alive\n\n"
                next_beat = now + heartbeat
                continue
            event = sub.get(timeout=min(SSE_POLL, deadline - now, next_beat - now))
            if event is not None:
                yield sse_event(event)
    finally:
        sub.close()


@bp.get("/events")
def events():
    app = current_app._get_current_object()
    state = app_state(app)
    slots = state.stream_slots
    ticket = slots.acquire(int(g.user["id"]))
    if ticket is None:
        log.warning("all %d live event streams are in use; one more must retry", slots.total)
        resp = jsonify(
            error=f"All {slots.total} live-update connections of the gateway are in use; this"
            " page will update by itself again shortly.",
            field=None,
        )
        resp.status_code = 503
        resp.headers["Retry-After"] = str(SSE_FULL_RETRY)
        return resp
    seconds = float(app.config.get("GATEWAY_SSE_SECONDS", SSE_SECONDS))
    heartbeat = float(app.config.get("GATEWAY_SSE_HEARTBEAT", SSE_HEARTBEAT))
    hub = request.environ.get(STREAM_HUB)
    if hub is not None:
        return _hub_stream(hub, slots, ticket, seconds, heartbeat)
    sub = state.services.events.subscribe()
    stopping = state.stopping
    client_gone = request.environ.get(CLIENT_GONE)
    released = threading.Lock()

    def cleanup() -> None:
        # Runs when the stream ends or when the server closes an unread response; only once.
        if released.acquire(blocking=False):
            sub.close()
            slots.release(ticket)

    def stream() -> Iterator[str]:
        try:
            yield from sse_stream(
                sub,
                stopping,
                seconds=seconds,
                heartbeat=heartbeat,
                replaced=ticket.replaced,
                client_gone=client_gone,
            )
        finally:
            cleanup()

    resp = _stream_response(stream())
    resp.call_on_close(cleanup)
    return resp


def _hub_stream(hub, slots: StreamSlots, ticket: StreamTicket, seconds: float, heartbeat: float):
    """The stream opened in the server's hub: events are kept for it from now on; the
    server hands the connection over once the head and :data:`CONNECTED` are written, or
    abandons it (which frees the slot) if the response goes wrong before."""
    stream = hub.open(
        release=lambda: slots.release(ticket),
        replaced=ticket.replaced,
        seconds=seconds,
        heartbeat=heartbeat,
    )
    request.environ[HUB_STREAM] = stream
    hub.wake()  # this user's replaced stream, if any, ends now

    def first() -> Iterator[str]:
        yield CONNECTED  # a generator: no Content-Length, so the response is chunked

    return _stream_response(first())


def _stream_response(body: Iterator[str]) -> Response:
    resp = Response(body, mimetype="text/event-stream")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Accel-Buffering"] = "no"  # nginx or similar in front: do not buffer
    return resp
