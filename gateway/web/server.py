"""Serving the web app: cheroot (pure Python, threaded, streams server-sent events as they are
written) on the configured address, over HTTPS when a certificate is configured or a
self-signed one is asked for.

cheroot hands a connection to a worker thread as soon as its first bytes arrive, and the worker
then reads the request line and headers with blocking reads; a client that trickles its headers
holds that thread. So that a few such clients cannot take every thread (and the app down):

- the request line and headers must arrive within ``HEAD_SECONDS`` of the first byte, and the
  body within ``BODY_SECONDS`` (else 408 and the connection is closed), however slowly they
  trickle (cheroot's own timeout is per read);
- one address may have at most ``PER_ADDRESS`` requests in the reading-and-working stage at
  once (until the response starts); a connection beyond that is answered 503 at once;
- the thread pool has ``REQUEST_THREADS`` threads; a live-update stream holds one only while
  its request is answered, then its connection is handed to the stream hub
  (gateway/web/stream_hub.py), which serves every open stream on one thread (streams are
  rationed in views/live.py);
- over HTTPS, the TLS handshake happens on the worker thread, within the same limits: cheroot
  does it on the one thread that accepts every connection, where three silent connections
  stalled every page for 10 s each.

Each worker can also tell the app whether the browser has closed the connection
(``environ["gateway.client_gone"]``), for a stream served on a worker (the hub sees a closed
connection by itself).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

from cheroot import makefile, wsgi
from cheroot.server import HTTPConnection, HTTPRequest
from cheroot.ssl.builtin import BuiltinSSLAdapter

from ..memory import return_large_blocks
from .app import create_app
from .context import Services, app_state
from .errors import WebServerError
from .stream_hub import StreamHub
from .views.live import CLIENT_GONE, HUB_STREAM, STREAM_HUB

__all__ = ["AddressGuard", "WebServer", "WebServerError", "self_signed"]

log = logging.getLogger(__name__)

HEAD_SECONDS = 10.0  # a request's line and headers, from its first byte
BODY_SECONDS = 120.0  # the whole request with its body (CSV imports are 8 MB at most)
PER_ADDRESS = 10  # requests of one address being read or worked on at once
# Threads answering requests (a live stream's only until it is handed to the hub). Enough that
# slow clients from 7 addresses (PER_ADDRESS each) leave some for everyone else; the ones that
# are not needed cost little: work goes to the thread idle for the shortest time
# (_HotFirstQueue), so most threads never run a page and keep their stacks untouched.
REQUEST_THREADS = 74
SOCKET_TIMEOUT = 10  # cheroot's timeout for one read or write, and for an idle keep-alive


def self_signed(cert: Path, key: Path, hostname: str = "gateway.local") -> None:
    """Create a self-signed certificate and key with the ``openssl`` command (present on every
    Debian and Raspberry Pi OS system), valid ten years, key readable by the owner only."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise WebServerError(
            "web.tls_self_signed needs the openssl command: sudo apt-get install openssl"
        )
    cert.parent.mkdir(parents=True, exist_ok=True)
    key.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            f"/CN={hostname}",
            "-addext",
            f"subjectAltName=DNS:{hostname},DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise WebServerError(f"openssl could not make a certificate: {result.stderr.strip()}")
    key.chmod(0o600)
    log.info("generated a self-signed certificate %s", cert)


class AddressGuard:
    """Counts the requests of each client address that are being read or worked on, and
    refuses one more beyond ``limit``."""

    WARN_EVERY = 60.0  # seconds between log lines about refusals (a flood must not fill it)

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}
        self.refused = 0
        self._warned_at: float | None = None
        self._refused_since_warning = 0

    def enter(self, address: str) -> bool:
        with self._lock:
            count = self._busy.get(address, 0)
            if count < self.limit:
                self._busy[address] = count + 1
                return True
            self.refused += 1
            self._refused_since_warning += 1
            now = time.monotonic()
            if self._warned_at is None or now - self._warned_at >= self.WARN_EVERY:
                log.warning(
                    "refused %d connection(s) with more than %d requests at once from one "
                    "address (latest %s)",
                    self._refused_since_warning,
                    self.limit,
                    address,
                )
                self._warned_at = now
                self._refused_since_warning = 0
            return False

    def leave(self, address: str) -> None:
        with self._lock:
            count = self._busy.get(address, 0) - 1
            if count > 0:
                self._busy[address] = count
            else:
                self._busy.pop(address, None)

    def busy(self, address: str) -> int:
        with self._lock:
            return self._busy.get(address, 0)


class _DeadlineIO(socket.SocketIO):
    """A socket's reading side that fails with a timeout once ``deadline`` (a monotonic time,
    or None for none) has passed, however the bytes trickle in."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        super().__init__(sock, "rb")
        self.timeout = timeout
        self.deadline: float | None = None

    def readinto(self, b) -> int | None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")  # cheroot answers 408 and closes
            self._sock.settimeout(min(left, self.timeout))
        return super().readinto(b)

    def end_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline = None
            self._sock.settimeout(self.timeout)  # writes of a long response get the full time


class _Reader(makefile.StreamReader):
    """cheroot's buffered socket reader over a :class:`_DeadlineIO`."""

    def __init__(self, sock: socket.socket, timeout: float, bufsize: int) -> None:
        self.deadline_io = _DeadlineIO(sock, timeout)
        super(makefile.StreamReader, self).__init__(self.deadline_io, bufsize)
        self.bytes_read = 0


class _Request(HTTPRequest):
    def parse_request(self) -> None:
        super().parse_request()
        if self.ready:  # the head is in: the body gets the rest of the request's time
            conn = self.conn
            conn.rfile.deadline_io.deadline = conn.started + self.server.body_seconds

    def send_headers(self) -> None:
        # The response starts: this request no longer counts against its address, and a long
        # response (a live stream) writes with the socket's normal timeout.
        self.conn.leave_guard()
        self.conn.rfile.deadline_io.end_deadline()
        super().send_headers()


class _Connection(HTTPConnection):
    RequestHandlerClass = _Request

    def __init__(self, server, sock, makefile=makefile.MakeFile) -> None:
        super().__init__(server, sock, makefile)
        given, self.rfile = self.rfile, _Reader(sock, server.timeout, self.rbufsize)
        given.close()
        self.started = 0.0
        self._guarded = False
        self._tls_done = False

    def communicate(self) -> bool:
        server = self.server
        address = self.remote_addr or ""
        if not server.guard.enter(address):
            self._refuse()
            return False
        self._guarded = True
        self.started = time.monotonic()
        self.rfile.deadline_io.deadline = self.started + server.head_seconds
        try:
            if not self._handshake():
                return False
            return super().communicate()
        finally:
            self.leave_guard()
            self.rfile.deadline_io.end_deadline()

    def _handshake(self) -> bool:
        """Complete a TLS handshake not done yet (see _TLSAdapter), within the head's time;
        False when it fails (the connection is then closed)."""
        sock = self.socket
        if not isinstance(sock, ssl.SSLSocket) or self._tls_done:
            return True
        sock.settimeout(max(0.01, min(self.server.head_seconds, self.server.timeout)))
        try:
            sock.do_handshake()
        except ssl.SSLError as exc:
            if exc.reason == "HTTP_REQUEST":  # plain HTTP sent to the HTTPS port
                body = b"This gateway speaks only HTTPS on this port: use https://.\n"
                head = (
                    "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                    f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                with contextlib.suppress(OSError):
                    socket.socket.sendall(sock, head.encode("ascii") + body)
            log.debug("TLS handshake with %s failed: %s", self.remote_addr, exc)
            return False
        except OSError as exc:  # timed out, reset
            log.debug("TLS handshake with %s failed: %s", self.remote_addr, exc)
            return False
        finally:
            sock.settimeout(self.server.timeout)
        self._tls_done = True
        return True

    def leave_guard(self) -> None:
        if self._guarded:
            self._guarded = False
            self.server.guard.leave(self.remote_addr or "")

    def _refuse(self) -> None:
        body = b"Too many requests from this address at once; try again in a moment.\n"
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            self.wfile.write(head.encode("ascii") + body)
            self.wfile.flush()
        except OSError as exc:
            log.debug("could not tell %s it was refused: %s", self.remote_addr, exc)

    def client_gone(self) -> bool:
        """True once the browser has closed the connection (nothing else arrives on it while
        a live stream is answered, so any readable byte means it has hung up)."""
        sock = self.socket
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            if isinstance(sock, ssl.SSLSocket):
                return True  # its close alert, or the end of the TCP stream
            return sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True


class _TLSAdapter(BuiltinSSLAdapter):
    """cheroot's TLS, with the handshake left to the worker thread (``_Connection``) instead
    of the thread that accepts connections."""

    def wrap(self, sock):
        tls = self.context.wrap_socket(sock, do_handshake_on_connect=False, server_side=True)
        return tls, {"wsgi.url_scheme": "https", "HTTPS": "on"}


class _Gateway(wsgi.Gateway_10):
    def get_environ(self) -> dict:
        env = super().get_environ()
        env[CLIENT_GONE] = self.req.conn.client_gone
        hub = self.req.server.hub
        if hub is not None and hub.alive():
            env[STREAM_HUB] = hub
        return env

    def respond(self) -> None:
        try:
            super().respond()
        except BaseException:
            stream = self.env.pop(HUB_STREAM, None)
            if stream is not None:
                self.req.server.hub.abandon(stream)
            raise
        stream = self.env.pop(HUB_STREAM, None)
        if stream is not None:
            self._hand_over(stream)

    def _hand_over(self, stream) -> None:
        """A live stream's head and first chunk are written: give its connection to the hub
        (which writes the rest and the end of the response) and let this thread go. The
        connection is not kept alive nor closed here (``linger``)."""
        req, hub = self.req, self.req.server.hub
        conn = req.conn
        if req.method != b"GET" or not req.sent_headers or not req.status.startswith(b"200"):
            hub.abandon(stream)
            return
        try:
            conn.wfile.flush()
        except OSError as exc:
            log.debug("a live stream's browser went away before the hand-over: %s", exc)
            hub.abandon(stream)
            return
        chunked = req.chunked_write
        req.chunked_write = False  # the hub ends the chunked body when the stream ends
        req.close_connection = True
        conn.linger = True
        conn.wfile.close()  # its hold on the socket; the socket itself stays open
        hub.attach(stream, conn.socket, chunked=chunked)


class _HotFirstQueue:
    """The queue between cheroot's accepting thread and its workers (``put``, ``get``,
    ``qsize`` of :class:`queue.Queue`, unbounded), except that a connection goes to the worker
    that became idle last rather than first. With a FIFO every one of the 74 workers takes
    turns, and each keeps the stack pages and allocator caches one page view touched; this way
    a quiet gateway runs its pages on the same few threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: collections.deque = collections.deque()
        self._waiting: list[list] = []  # [lock held until an item is handed over, the item]

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        with self._lock:
            if not self._waiting:
                self._items.append(item)
                return
            waiter = self._waiting.pop()  # the one that started waiting last
        waiter[1] = item
        waiter[0].release()

    def get(self):
        with self._lock:
            if self._items:
                return self._items.popleft()
            handed = threading.Lock()
            handed.acquire()
            waiter = [handed, None]
            self._waiting.append(waiter)
        handed.acquire()
        return waiter[1]

    def qsize(self) -> int:
        with self._lock:
            return len(self._items)


class _Server(wsgi.Server):
    """cheroot's WSGI server with the guards of this module's docstring."""

    ConnectionClass = _Connection

    def __init__(self, *args, per_address: int, head_seconds: float, body_seconds: float, **kw):
        super().__init__(*args, **kw)
        self.gateway = _Gateway
        self.requests._queue = _HotFirstQueue()  # before the pool starts its workers
        self.requests.get = self.requests._queue.get
        self.hub: StreamHub | None = None
        self.guard = AddressGuard(per_address)
        self.head_seconds = head_seconds
        self.body_seconds = body_seconds


class WebServer:
    """The web app on its own threads; ``url`` once started."""

    def __init__(
        self,
        services: Services,
        *,
        threads: int | None = None,
        per_address: int = PER_ADDRESS,
        head_seconds: float = HEAD_SECONDS,
        body_seconds: float = BODY_SECONDS,
        **app_config: object,
    ) -> None:
        self.services = services
        web = services.config.web
        return_large_blocks()
        self.app = create_app(services, **app_config)
        threads = threads or REQUEST_THREADS
        self.server = _Server(
            (web.bind, web.port),
            self.app,
            numthreads=threads,
            max=threads,
            server_name="gateway",
            shutdown_timeout=2,
            timeout=SOCKET_TIMEOUT,
            request_queue_size=64,
            per_address=per_address,
            head_seconds=head_seconds,
            body_seconds=body_seconds,
        )
        self.hub = StreamHub(services.events)
        self.server.hub = self.hub
        self.scheme = "http"
        if web.https:
            cert, key = web.tls_cert, web.tls_key
            if cert is None or key is None:
                cert = services.config.data_dir / "tls" / "gateway.crt"
                key = services.config.data_dir / "tls" / "gateway.key"
            if web.tls_self_signed and not (cert.exists() and key.exists()):
                self_signed(cert, key)
            for path, what in ((cert, "web.tls_cert"), (key, "web.tls_key")):
                if not path.is_file():
                    raise WebServerError(f"{what}: {path} does not exist")
            self.server.ssl_adapter = _TLSAdapter(str(cert), str(key))
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self.server.prepare()
        except OSError as exc:
            web = self.services.config.web
            raise WebServerError(f"cannot listen on {web.bind}:{web.port}: {exc}") from exc
        self.hub.start()
        self._thread = threading.Thread(target=self.server.serve, name="web", daemon=True)
        self._thread.start()
        log.info("web app on %s", self.url)

    @property
    def port(self) -> int:
        return int(self.server.bind_addr[1])

    @property
    def url(self) -> str:
        host = self.server.bind_addr[0]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        return f"{self.scheme}://{shown}:{self.port}"

    def stop(self) -> None:
        app_state(self.app).stopping.set()  # ends event streams served on a worker
        self.hub.stop()
        self.server.stop()
        if self._thread is not None:
            self._thread.join(5)
