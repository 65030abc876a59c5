"""A webhook receiver on loopback for the tests (also the integration tests': import it as
``webhooks.receiver``)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
