"""The real WSGI server: plain HTTP, and HTTPS with a generated self-signed certificate."""

from __future__ import annotations

import shutil
import ssl
import threading
import urllib.request

import pytest

from gateway.config import parse_config
from gateway.services import Services, build_services
from gateway.web.server import WebServer, WebServerError


def _ctx(tmp_path, web_yaml: str) -> Services:
    config = parse_config(f"data_dir: {tmp_path}\nweb:\n{web_yaml}", base_dir=tmp_path)
    return build_services(config, modems=False)


def test_http_serves_the_login_page(tmp_path) -> None:
    ctx = _ctx(tmp_path, "  port: 0\n")
    server = WebServer(ctx)
    server.start()
    try:
        with urllib.request.urlopen(f"{server.url}/login", timeout=5) as resp:
            assert resp.status == 200 and b"Log in" in resp.read()
    finally:
        server.stop()
        ctx.store.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_with_a_generated_self_signed_certificate(tmp_path) -> None:
    ctx = _ctx(tmp_path, "  port: 0\n  tls_self_signed: true\n")
    server = WebServer(ctx)
    server.start()
    try:
        assert server.url.startswith("https://")
        key = tmp_path / "tls" / "gateway.key"
        assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
        tls = ssl.create_default_context(cafile=str(tmp_path / "tls" / "gateway.crt"))
        tls.check_hostname = False
        with urllib.request.urlopen(f"{server.url}/login", timeout=5, context=tls) as resp:
            assert resp.status == 200
            assert "Secure" in resp.headers["Set-Cookie"]  # the session cookie never goes in clear
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(server.url.replace("https", "http") + "/login", timeout=5)
    finally:
        server.stop()
        ctx.store.close()


def test_missing_certificate_is_a_clear_error(tmp_path) -> None:
    ctx = _ctx(
        tmp_path,
        f"  port: 0\n  tls_cert: {tmp_path}/nope.crt\n  tls_key: {tmp_path}/nope.key\n",
    )
    with pytest.raises(WebServerError, match=r"web\.tls_cert"):
        WebServer(ctx)
    ctx.store.close()


def _switches(thread) -> int:
    with open(f"/proc/self/task/{thread.native_id}/status") as f:
        line = next(x for x in f if x.startswith("voluntary_ctxt_switches"))
    return int(line.split()[1])


def test_a_quiet_server_answers_on_the_same_few_threads(tmp_path) -> None:
    """Pages one after another go to the worker that became idle last, not to each of the
    pool's threads in turn (each thread that ever ran a page keeps its stack's pages and its
    allocator's caches). Observed as which workers ever woke up."""
    ctx = _ctx(tmp_path, "  port: 0\n")
    server = WebServer(ctx, threads=20)
    others = set(threading.enumerate())  # earlier tests' servers may still be ending
    server.start()
    try:
        workers = [
            t for t in threading.enumerate() if t.name.startswith("CP Server") and t not in others
        ]
        assert len(workers) == 20
        before = {t: _switches(t) for t in workers}
        for _ in range(30):
            with urllib.request.urlopen(f"{server.url}/login", timeout=5) as resp:
                assert resp.status == 200
                resp.read()
        woke = [t for t in workers if _switches(t) > before[t]]
        assert len(woke) <= 3, f"{len(woke)} of 20 workers ran the 30 pages"
    finally:
        server.stop()
        ctx.store.close()
