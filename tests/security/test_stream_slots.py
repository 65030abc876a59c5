"""Live-update slots (finding 5): a closed stream gives its slot back at once, one person's
many tabs cannot use up the team's streams, and a refusal says why. Real server, real sockets."""

from __future__ import annotations

import http.client
import time

from gateway.web.context import app_state

from .conftest import ADMIN, AGENT, HttpClient, Web


def logged_in(server, who: tuple[str, str]) -> HttpClient:
    client = HttpClient(server)
    assert client.login(*who) == 302
    return client


class Stream:
    """One open ``GET /api/events`` of a logged-in client."""

    def __init__(self, client: HttpClient) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
        self.conn.request("GET", "/api/events", headers={"Cookie": client.cookie or ""})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        if self.status == 200:
            assert self.resp.readline() == b"retry: 2000\n"  # the stream is open

    def rest(self) -> bytes:
        """Everything until the server ends the stream."""
        return self.resp.read()

    def close(self) -> None:
        self.resp.close()
        self.conn.close()


def open_streams(server) -> int:
    """Streams holding a slot; the hub must agree (each open stream is served there)."""
    slots = app_state(server.app).stream_slots.count()
    return slots if slots == server.hub.count() else -1


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_closed_streams_give_their_slot_back_at_once(web: Web, serve) -> None:
    server = serve()
    agent = logged_in(server, AGENT)
    started = time.monotonic()
    for n in range(30):  # someone clicking through thirty pages
        stream = Stream(agent)
        assert stream.status == 200, f"page {n + 1}: live updates refused ({stream.status})"
        stream.close()
    assert wait_for(lambda: open_streams(server) == 0, timeout=2.0), (
        f"{open_streams(server)} closed streams still held after 2 s"
    )
    print(
        f"\n30 streams opened and closed; all slots free after {time.monotonic() - started:.2f} s"
    )
    assert Stream(logged_in(server, ADMIN)).status == 200


def test_one_users_many_tabs_leave_streams_for_the_team(web: Web, serve) -> None:
    server = serve()
    agent = logged_in(server, AGENT)
    tabs = [Stream(agent) for _ in range(12)]
    try:
        assert [t.status for t in tabs] == [200] * 12
        # Beyond one person's share the oldest tabs were told to pause, and ended.
        for old in tabs[:4]:
            assert b"event: live.replaced" in old.rest()
        assert wait_for(lambda: open_streams(server) == 8, timeout=2.0)
        colleague = Stream(logged_in(server, ADMIN))
        assert colleague.status == 200
        colleague.close()
    finally:
        for tab in tabs:
            tab.close()


def test_a_full_gateway_says_so_and_when_to_retry(web: Web, serve) -> None:
    server = serve(GATEWAY_SSE_MAX_STREAMS=2)
    agent = logged_in(server, AGENT)
    held = [Stream(agent), Stream(agent)]
    try:
        refused = Stream(logged_in(server, ADMIN))
        body = refused.rest().decode()
        assert refused.status == 503 and refused.resp.getheader("Retry-After") == "10"
        assert "live-update connections of the gateway are in use" in body
    finally:
        for stream in held:
            stream.close()


def test_open_streams_hold_no_server_thread(web: Web, serve) -> None:
    """Two server threads, six open streams: each stream gets every event and pages still
    answer (when each stream held a thread, two took both and the page timed out)."""
    server = serve(threads=2)
    agent = logged_in(server, AGENT)
    streams = [Stream(agent) for _ in range(6)]
    try:
        assert [s.status for s in streams] == [200] * 6
        status, _, _ = agent.request("GET", "/home")
        assert status == 200
        event = web.events.publish("message.new", id=7, profile_id=1)
        for stream in streams:
            while stream.resp.readline() != f"id: {event.id}\n".encode():
                pass
        assert open_streams(server) == 6
    finally:
        for stream in streams:
            stream.close()
    assert wait_for(lambda: open_streams(server) == 0, timeout=2.0)


def test_streams_that_stop_reading_are_cut_off_and_free_their_slots(web: Web, serve) -> None:
    """Twenty browsers open live streams and never read them while a flood of events goes
    out: each is closed once 64 KiB wait for it (the hub keeps no more per stream), and every
    slot comes back; a colleague's stream then opens and works."""
    import socket

    server = serve()
    cookies = [logged_in(server, who).cookie for who in (AGENT, ADMIN)]
    silent = []
    for n in range(20):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind((f"127.0.0.{2 + n % 4}", 0))  # four machines: within the per-address cap
        s.connect(("127.0.0.1", server.port))
        request = f"GET /api/events HTTP/1.1\r\nHost: x\r\nCookie: {cookies[n % 2]}\r\n\r\n"
        s.sendall(request.encode())
        silent.append(s)
    try:
        for s in silent:  # each browser reads its stream's start, then never again
            s.settimeout(10)
            head = b""
            while b"retry: 2000" not in head:
                head += s.recv(4096)
        assert wait_for(lambda: open_streams(server) == 16, timeout=5.0), (
            app_state(server.app).stream_slots.count(),
            server.hub.count(),
        )  # 8 per user
        padding = "x" * 1000
        for n in range(3000):  # 3 MB for each stream
            web.events.publish("message.new", id=n, text=padding)
        assert wait_for(lambda: open_streams(server) == 0, timeout=10.0), open_streams(server)
        colleague = Stream(logged_in(server, AGENT))
        assert colleague.status == 200
        event = web.events.publish("message.new", id=1)
        while colleague.resp.readline() != f"id: {event.id}\n".encode():
            pass
        colleague.close()
    finally:
        for s in silent:
            s.close()
