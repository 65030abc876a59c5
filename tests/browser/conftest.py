"""Browser-test harness: Debian's headless Chromium driven by Playwright's sync API.

Fixtures:

- ``browser`` (session): one Chromium for the whole run, launched from ``/usr/bin/chromium``;
  Playwright never downloads a browser. Without Chromium (or Playwright) the browser tests are
  skipped with a message on a developer's machine and fail in CI (``CI=true``).
- ``page`` (function): a fresh context and page. Requests to any host but 127.0.0.1 are aborted
  and fail the test, as do uncaught page errors and console errors.
- ``static_server`` (session): base URL of a local HTTP server on 127.0.0.1 (a free port) serving
  ``/static/`` from ``gateway/web/static``, ``/pages/`` from ``tests/browser/pages`` and
  ``/emoji/picker.json`` from :func:`gateway.web.emoji_catalog.picker_data`. The Flask app will
  have its own fixture.
- ``artifacts_dir``: ``artifacts/screenshots/`` at the repository root (git-ignored).

Browser tests carry ``pytest.mark.browser`` (``-m "not browser"`` leaves them out).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from gateway.web import emoji_catalog

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOTS = {
    "/static/": REPO / "gateway" / "web" / "static",
    "/pages/": Path(__file__).resolve().parent / "pages",
}
TIMEOUT_MS = 5_000


def _unavailable(why: str) -> None:
    """Skip on a developer's machine; in CI a browser test that cannot run is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI=true: browser tests must run; ./run.sh test installs chromium)")
    pytest.skip(f"{why}; install it with `apt-get install chromium` to run the browser tests")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium for the whole session."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"Playwright's Python package is not installed ({exc})")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


class _Handler(SimpleHTTPRequestHandler):
    """Serves the mounts in ROOTS and the picker's JSON; nothing else."""

    picker_json: bytes = b""

    def translate_path(self, path: str) -> str:
        path = unquote(urlsplit(path).path)
        for prefix, root in ROOTS.items():
            if path.startswith(prefix):
                target = (root / path[len(prefix) :]).resolve()
                if target.is_relative_to(root):
                    return str(target)
        return str(REPO / "does-not-exist")

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/emoji/picker.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(self.picker_json)))
            self.end_headers()
            self.wfile.write(self.picker_json)
            return
        super().do_GET()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("static server: " + format, *args)


@pytest.fixture(scope="session")
def static_server() -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT``) of the local static server."""
    handler = type(
        "Handler",
        (_Handler,),
        {"picker_json": json.dumps(emoji_catalog.picker_data(), ensure_ascii=False).encode()},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="static-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh page; fails the test on an outside request, a page error or a console error."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []

    def route(route) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", None) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            problems.append(f"request to an outside host: {route.request.url}")
            route.abort()

    context.route("**/*", route)
    new_page = context.new_page()
    new_page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    new_page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    try:
        yield new_page
    finally:
        context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """``artifacts/screenshots/`` at the repository root, created empty-or-kept (git-ignored)."""
    path = REPO / "artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- End-to-end: the real daemon with the demo config (tests/browser/test_e2e_*.py) -------------
#
# One daemon for the whole session (starting one takes a second, and the modems must come up):
# the demo's profiles, conversations and simulated handsets, its web app on a free port of
# 127.0.0.1. Each test uses its own profiles, so the tests do not depend on their order.
# Helpers the tests import are in e2e_helpers.py.


@pytest.fixture(scope="session")
def gateway_daemon(tmp_path_factory) -> Iterator[object]:
    """The demo gateway (daemon + simulator + web app on 127.0.0.1:<free port>) for the session."""
    import dataclasses

    from argon2 import PasswordHasher
    from e2e_helpers import E2E_TIMEOUT_S, GatewayUnderTest, wait_modems_up

    from gateway.config import load_config
    from gateway.daemon import Daemon

    data_dir = tmp_path_factory.mktemp("e2e-gateway")
    config = load_config(REPO / "gateway" / "data" / "demo.yaml", data_dir=data_dir)
    config = dataclasses.replace(config, web=dataclasses.replace(config.web, port=0))
    daemon = Daemon(config, demo=True, web=True)
    with pytest.MonkeyPatch.context() as mp:
        # The seeded admin's hash at the cheapest valid cost, as tests/conftest.py does for
        # function-scoped users: a login then verifies in milliseconds, not most of a second.
        mp.setattr(
            "gateway.store.users.PasswordHasher",
            lambda **_real: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        )
        daemon.start()
    try:
        wait_modems_up(daemon, E2E_TIMEOUT_S)
        yield GatewayUnderTest(daemon)
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def admin_storage_state(browser, gateway_daemon) -> dict:
    """Cookies of one admin login, so that each test starts logged in without the form."""
    from e2e_helpers import log_in

    context = browser.new_context()
    try:
        page = context.new_page()
        log_in(page, gateway_daemon.url)
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def logged_in_page(page, admin_storage_state) -> object:
    """The ``page`` fixture (same checks: no outside request, no page or console error) with the
    demo admin's session cookie, on a 1280x800 screen."""
    page.context.add_cookies(admin_storage_state["cookies"])
    page.set_viewport_size({"width": 1280, "height": 800})
    return page
