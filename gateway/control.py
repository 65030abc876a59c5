"""The daemon's local control socket: JSON lines over a Unix socket in the data directory, for
``gateway send`` and ``gateway modems`` on the same machine. File permissions (0600, the
daemon's user) are its access control; nothing listens on the network for it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .store import StoreError

log = logging.getLogger(__name__)

SOCKET_NAME = "gateway.sock"
MAX_REQUEST = 256 * 1024

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlError(RuntimeError):
    """The daemon could not be reached or refused the request; the message says which."""


class _RequestHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: ControlSocketServer = self.server  # type: ignore[assignment]
        line = self.rfile.readline(MAX_REQUEST + 1)
        try:
            request = parse_request(line)
            handler = server.handlers.get(request["op"])
            if handler is None:
                known = ", ".join(sorted(server.handlers))
                raise ValueError(f"unknown op {request['op']!r} (known: {known})")
            reply = handler(request)
        except ValueError as exc:
            reply = {"ok": False, "error": str(exc)}
        except StoreError as exc:  # the store is full, read-only or damaged: say which and why
            log.error("control request failed: %s", exc)
            reply = {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bad request must not take the daemon down; log it
            log.exception("control request failed")
            reply = {"ok": False, "error": f"internal error: {exc!r}"}
        finally:
            if server.after_request is not None:
                server.after_request()
        self.wfile.write(json.dumps(reply, ensure_ascii=False, default=str).encode() + b"\n")


def parse_request(line: bytes) -> dict[str, Any]:
    """One request line as a JSON object with an ``op``; ValueError saying what is wrong."""
    if len(line) > MAX_REQUEST:
        raise ValueError(f"the request is too long ({MAX_REQUEST // 1024} KiB at most)")
    try:
        request = json.loads(line)
    except RecursionError:
        raise ValueError("the request's JSON is nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("the request is not UTF-8 text") from None
    except ValueError as exc:
        raise ValueError(f"the request is not valid JSON ({exc})") from None
    if not isinstance(request, dict) or "op" not in request:
        raise ValueError("a request is a JSON object with an 'op'")
    if not isinstance(request["op"], str):
        raise ValueError("'op' must be a string such as \"send\"")
    return request


class ControlSocketServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Serves ``handlers[op](request) -> reply`` on ``data_dir/gateway.sock``."""

    daemon_threads = True

    def __init__(
        self,
        data_dir: Path,
        handlers: dict[str, Handler],
        after_request: Callable[[], None] | None = None,
    ) -> None:
        self.path = Path(data_dir) / SOCKET_NAME
        self.handlers = handlers
        # Run on the request's thread once its handler is done (the daemon gives the thread's
        # store connection back: each request has a thread of its own, which then ends).
        self.after_request = after_request
        if self.path.exists():
            if is_running(data_dir):
                raise ControlError(f"another gateway is already running on {self.path}")
            self.path.unlink()
        old = os.umask(0o077)
        try:
            super().__init__(str(self.path), _RequestHandler)
        finally:
            os.umask(old)
        self._thread = threading.Thread(target=self.serve_forever, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.path.unlink(missing_ok=True)


def request(data_dir: Path, op: str, *, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
    """Send one request to the running daemon and return its reply."""
    path = Path(data_dir) / SOCKET_NAME
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ControlError(
            f"the gateway is not running (no daemon answers on {path}); start it with "
            "'gateway run -c FILE' or 'systemctl start gateway'"
        ) from exc
    except OSError as exc:
        raise ControlError(f"cannot talk to the gateway on {path}: {exc}") from exc
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ControlError(f"the gateway gave an unreadable answer: {data[:200]!r}") from exc


def is_running(data_dir: Path) -> bool:
    """True when a daemon answers on the control socket of ``data_dir``."""
    try:
        return bool(request(data_dir, "ping", timeout=2.0).get("ok"))
    except ControlError:
        return False
