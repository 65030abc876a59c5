"""Serving the web app: cheroot (pure Python, threaded, streams server-sent events as they are
written) on the configured address, over HTTPS when a certificate is configured or a
self-signed one is asked for."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from pathlib import Path

from cheroot import wsgi

from .app import create_app
from .context import GatewayContext

log = logging.getLogger(__name__)


class WebServerError(RuntimeError):
    """The web app cannot be served (address in use, certificate missing or unreadable)."""


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


class WebServer:
    """The web app on its own threads; ``url`` once started."""

    def __init__(self, ctx: GatewayContext, *, threads: int = 32, max_threads: int = 64) -> None:
        self.ctx = ctx
        web = ctx.config.web
        self.app = create_app(ctx)
        self.server = wsgi.Server(
            (web.bind, web.port),
            self.app,
            numthreads=threads,
            max=max_threads,
            server_name="gateway",
            shutdown_timeout=2,
        )
        self.scheme = "http"
        if web.https:
            cert, key = web.tls_cert, web.tls_key
            if cert is None or key is None:
                cert = ctx.config.data_dir / "tls" / "gateway.crt"
                key = ctx.config.data_dir / "tls" / "gateway.key"
            if web.tls_self_signed and not (cert.exists() and key.exists()):
                self_signed(cert, key)
            for path, what in ((cert, "web.tls_cert"), (key, "web.tls_key")):
                if not path.is_file():
                    raise WebServerError(f"{what}: {path} does not exist")
            from cheroot.ssl.builtin import BuiltinSSLAdapter

            self.server.ssl_adapter = BuiltinSSLAdapter(str(cert), str(key))
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self.server.prepare()
        except OSError as exc:
            web = self.ctx.config.web
            raise WebServerError(f"cannot listen on {web.bind}:{web.port}: {exc}") from exc
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
        self.app.extensions["gateway.stopping"].set()  # ends open event streams
        self.server.stop()
        if self._thread is not None:
            self._thread.join(5)
