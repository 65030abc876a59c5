"""Fixtures for the webhook tests: a receiver on loopback that can be down, slow, up or
redirecting, and a poster that tells the test about every attempt."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.messaging import webhooks

SECRET_HEADER = "X-Gateway-Signature"


class Receiver:
    """A webhook receiver on 127.0.0.1. ``mode``: "down" (nothing listens on its port),
    "up" (200), "slow" (takes the body, then answers only after ``hold`` seconds, longer than
    the gateway's read timeout: the gateway counts a failure although the event arrived),
    "redirect" (302 to another host), "error" (500)."""

    def __init__(self, hold: float = 2.0) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # nothing listens there now: "down" refuses connections
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.hold = hold
        self.mode = "down"
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.cond = threading.Condition()
        self.release = threading.Event()  # ends every slow answer at once (shutdown)
        self._server: ThreadingHTTPServer | None = None

    def set(self, mode: str) -> None:
        if mode == "down":
            self._stop_server()
        elif self._server is None:
            self._start_server()
        self.mode = mode

    def _start_server(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.cond:
                    receiver.got.append((dict(self.headers.items()), body))
                    receiver.cond.notify_all()
                mode = receiver.mode
                if mode == "slow":
                    receiver.release.wait(receiver.hold)
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://elsewhere.example/hook")
                elif mode == "error":
                    self.send_response(500)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _stop_server(self) -> None:
        if self._server is not None:
            self.release.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self.release.clear()

    def close(self) -> None:
        self._stop_server()

    def wait_for(self, predicate: Callable[[list], bool], timeout: float = 15.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.got), timeout):
                raise AssertionError(
                    f"the receiver got {len(self.got)} POSTs, not what was awaited"
                )

    def events(self) -> list[dict]:
        with self.cond:
            return [json.loads(body) for _, body in self.got]


class Attempts:
    """A poster around the real one that counts each attempt's outcome, for waiting on."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.cond = threading.Condition()

    def __call__(self, url: str, body: bytes, headers: dict, **timeouts: float):
        try:
            answer = webhooks.post(url, body, headers, **timeouts)
        except webhooks.DeliveryFailed as exc:
            self._note(f"failed: {exc}")
            raise
        self._note(f"answered {answer.status}")
        return answer

    def _note(self, outcome: str) -> None:
        with self.cond:
            self.outcomes.append(outcome)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[list[str]], bool], timeout: float = 15.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.outcomes), timeout):
                raise AssertionError(f"attempts so far: {self.outcomes}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


CONFIG = """
data_dir: {data_dir}
default_region: US
modems:
  - {{id: a, imei: "490154203237518"}}
  - {{id: c, imei: "353456789012347"}}
short_codes:
  - {{code: "55123", name: Support, modems: [a]}}
  - {{code: "55999", name: Alerts, modems: [c]}}
"""


class Link:
    """A modem link that takes every PDU at once."""

    def __init__(self) -> None:
        self.mr = 0
        self.lock = threading.Lock()

    def send_pdu(self, pdu: str, length: int) -> int:
        with self.lock:
            self.mr = (self.mr + 1) % 256
            return self.mr


class World:
    """The gateway's services without modems (the dispatcher sends through :class:`Link`),
    built as the daemon builds them, over ``tmp_path``; ``extra`` is appended to the YAML."""

    def __init__(self, tmp_path, extra: str = "", **build: object) -> None:
        from gateway.config import parse_config
        from gateway.services import build_services

        self.tmp_path = tmp_path
        self.config = parse_config(CONFIG.format(data_dir=tmp_path) + extra)
        self.services = build_services(self.config, modems=False, **build)
        self.store = self.services.store
        self.events = self.services.events
        self.sub = self.events.subscribe()
        self.dispatcher = self.services.dispatcher
        self.outbox = self.services.outbox

    def up(self, *names: str) -> None:
        for name in names:
            self.dispatcher.modem_up(name, Link())

    def wait_status(self, message_id: int, statuses: set[str], timeout: float = 5.0) -> str:
        """Wait (on the bus's events) until the message reaches one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            row = self.store.messages.get(message_id)
            if row["status"] in statuses:
                return row["status"]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"message {message_id} stayed {row['status']}")
            self.sub.get(timeout=left)

    def close(self) -> None:
        self.services.webhooks.stop()
        self.dispatcher.stop()
        self.sub.close()
        self.store.close()
