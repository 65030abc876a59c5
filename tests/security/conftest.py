"""Fixtures for the security suite: the web app over a real store (tests/web's ``Web``), the
real server on 127.0.0.1, and a small HTTP client that can speak from another loopback address
(127.0.0.2, 127.0.0.3, ...) so that tests can play an attacker and a real user apart."""

from __future__ import annotations

import dataclasses
import http.client
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator

import pytest
from web.conftest import ADMIN, AGENT, Web, csrf_token

from gateway.web.server import WebServer

__all__ = ["ADMIN", "AGENT", "HttpClient", "Web", "csrf_token"]


@pytest.fixture
def web(tmp_path) -> Iterator[Web]:
    w = Web(tmp_path)
    yield w
    w.store.close()


@pytest.fixture
def server_for() -> Iterator[Callable[..., WebServer]]:
    """Start the real server (cheroot) over a ``Web``'s store on 127.0.0.1 and a free port;
    keyword arguments go to WebServer. Every server started is stopped at the end."""
    started: list[WebServer] = []

    def start(web: Web, *, https: bool = False, **options: object) -> WebServer:
        config = dataclasses.replace(
            web.config,
            web=dataclasses.replace(
                web.config.web, bind="127.0.0.1", port=0, tls_self_signed=https
            ),
        )
        server = WebServer(dataclasses.replace(web.services, config=config), **options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def serve(web: Web, server_for) -> Callable[..., WebServer]:
    """``server_for`` over the ``web`` fixture's store."""
    return lambda **options: server_for(web, **options)


class HttpClient:
    """HTTP/1.1 to a running server from a chosen loopback address, with one cookie (the
    session) kept like a browser keeps it. A new connection per request."""

    def __init__(self, server: WebServer, source: str = "127.0.0.1", timeout: float = 10) -> None:
        self.port = server.port
        self.source = source
        self.timeout = timeout
        self.cookie: str | None = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=self.timeout, source_address=(self.source, 0)
        )
        try:
            sent = dict(headers or {})
            if self.cookie:
                sent["Cookie"] = self.cookie
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
            for name, value in resp.getheaders():
                if name.lower() == "set-cookie" and value.startswith("gateway_session="):
                    self.cookie = value.split(";", 1)[0]
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def token(self, page: str = "/login") -> str:
        _, _, data = self.request("GET", page)
        found = re.search(rb'name="csrf[-_]token" (?:content|value)="([^"]+)"', data)
        assert found, f"no CSRF token on {page}"
        return found.group(1).decode()

    def login(self, username: str, password: str) -> int:
        """Post the login form (with a fresh token); the status (302 = logged in)."""
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrf_token": self.token()}
        ).encode()
        status, _, _ = self.request(
            "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        return status


class Concurrency:
    """Counts how many calls of a wrapped function run at once (``peak``) and in all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.calls = 0

    def wrap(self, fn: Callable) -> Callable:
        def counted(*args, **kwargs):
            with self._lock:
                self.running += 1
                self.calls += 1
                self.peak = max(self.peak, self.running)
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return counted
