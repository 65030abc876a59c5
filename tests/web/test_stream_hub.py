"""The stream hub: live streams served on one thread (gateway/web/stream_hub.py), over socket
pairs (the browser's end read here): events, keep-alives and the end, a browser hanging up or
not reading, a quiet hub that sleeps. Through the real server: tests/security/
test_stream_slots.py."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from gateway.messaging.events import EventBus
from gateway.web.stream_hub import MAX_PENDING, StreamHub


@pytest.fixture
def hub():
    bus = EventBus()
    h = StreamHub(bus)
    h.start()
    yield h, bus
    h.stop()


def opened(h: StreamHub, *, seconds: float = 30, heartbeat: float = 30, chunked=False):
    """A stream handed to the hub over a socket pair: (browser's end, released event)."""
    released = threading.Event()
    stream = h.open(release=released.set, seconds=seconds, heartbeat=heartbeat)
    server_end, browser = socket.socketpair()
    browser.settimeout(5)
    h.attach(stream, server_end, chunked=chunked)
    return browser, released


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_each_event_reaches_every_stream_opened_before_it(hub) -> None:
    h, bus = hub
    first, _ = opened(h)
    early = bus.publish("message.new", id=1)
    second, _ = opened(h, chunked=True)
    late = bus.publish("message.status", id=1, status="sent")
    got_first = read_until(first, b"sent")
    assert f"id: {early.id}\nevent: message.new\n".encode() in got_first
    assert f"id: {late.id}\nevent: message.status\n".encode() in got_first
    got_second = read_until(second, b"sent")
    assert b"message.new" not in got_second  # published before it was opened
    text = f'id: {late.id}\nevent: message.status\ndata: {{"id":1,"status":"sent"}}\n\n'
    assert f"{len(text.encode()):x}\r\n{text}\r\n".encode() == got_second  # one HTTP chunk


def test_keep_alive_end_and_release(hub) -> None:
    h, _ = hub
    browser, released = opened(h, seconds=0.6, heartbeat=0.2, chunked=True)
    data = read_until(browser, b"0\r\n\r\n")
    assert data.count(b": keep-alive\n\n") >= 2
    assert data.endswith(b"0\r\n\r\n")  # the chunked body ends properly
    assert browser.recv(10) == b""  # and the connection is closed
    assert released.wait(2) and h.count() == 0


def test_a_browser_that_hangs_up_frees_its_slot_at_once(hub) -> None:
    h, _ = hub
    browser, released = opened(h)
    assert h.count() == 1
    browser.close()
    assert released.wait(1.0), "the hub did not notice the browser hang up"
    assert h.count() == 0


def test_a_browser_that_stops_reading_is_cut_off_not_buffered(hub) -> None:
    h, bus = hub
    browser, released = opened(h)
    browser.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    padding = "x" * 1000
    for n in range(4 * MAX_PENDING // 1000):  # far more than the socket and the hub keep
        bus.publish("message.new", id=n, text=padding)
        if released.is_set():
            break
    assert released.wait(5), "a stream nobody reads kept growing"
    assert h.count() == 0


def test_a_quiet_hub_sleeps(hub) -> None:
    """Open streams and no events: the hub's thread blocks until the next keep-alive (no
    polling). Counted as the thread's voluntary context switches over one second."""
    h, bus = hub
    streams = [opened(h, heartbeat=10)[0] for _ in range(5)]
    thread = next(t for t in threading.enumerate() if t.name == "live-streams")
    path = f"/proc/self/task/{thread.native_id}/status"

    def switches() -> int:
        with open(path) as f:
            line = next(x for x in f if x.startswith("voluntary_ctxt_switches"))
        return int(line.split()[1])

    bus.publish("message.new", id=1)  # once every stream has it, the hub is back in select
    for s in streams:
        read_until(s, b"\n\n")
    before = switches()
    time.sleep(1.0)
    assert switches() - before <= 1
    for s in streams:
        s.close()


def test_a_hub_whose_thread_failed_takes_no_more_streams(hub, monkeypatch) -> None:
    """A bug that ends the hub's thread is logged, its streams closed, and the server serves
    new streams on its workers (alive() is False) rather than handing them to no one."""
    h, bus = hub
    browser, released = opened(h)

    def broken(event) -> str:
        raise RuntimeError("a bug in formatting")

    monkeypatch.setattr("gateway.web.stream_hub.sse_event", broken)
    bus.publish("message.new", id=1)
    assert released.wait(2) and browser.recv(10) == b""
    deadline = time.monotonic() + 2
    while h.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not h.alive()
    late, late_released = opened(h)
    assert late_released.wait(1) and late.recv(10) == b""
