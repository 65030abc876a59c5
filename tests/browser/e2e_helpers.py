"""Helpers of the end-to-end browser tests (test_e2e_*.py) against the real demo daemon; the
fixtures that start it (``gateway_daemon``, ``logged_in_page``) are at the end of conftest.py."""

from __future__ import annotations

import time
from typing import Any

ADMIN = ("admin", "demo1234")
E2E_TIMEOUT_S = 10.0


class GatewayUnderTest:
    """The running demo daemon and what the end-to-end tests need to drive and inspect it."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.url: str = daemon.web_server.url.rstrip("/")
        self.store = daemon.services.store
        self.net = daemon.services.simulator.network
        config = daemon.config
        by_imei = {m.imei: m.number for m in config.simulator.modems}
        # modem id -> its SIM's number, so a test can say which number a handset heard from.
        self.modem_numbers: dict[str, str] = {m.id: by_imei[m.imei] for m in config.modems}
        self.short_code_modems: dict[str, list[str]] = {
            sc.code: list(sc.modems) for sc in config.short_codes
        }

    def profile(self, phone: str) -> Any:
        """The store's row of the demo profile with this number."""
        row = self.store.profiles.by_phone(phone)
        assert row is not None, f"the demo has no profile {phone}"
        return row

    def handset(self, phone: str) -> Any:
        """The simulated phone with this number; put on the network if the demo has none (the
        demo has one for each of its profiles; a test's own profiles need theirs)."""
        from gateway.sim.errors import UnknownHandset

        try:
            return self.net.handset(phone)
        except UnknownHandset:
            return self.net.add_handset(phone)


def wait_modems_up(daemon: Any, timeout: float) -> None:
    """Until every configured modem is up and routable (chat needs a healthy modem)."""
    ids = [m.id for m in daemon.config.modems]
    sub = daemon.services.events.subscribe()
    try:
        deadline = time.monotonic() + timeout
        while True:
            states = {m: daemon.services.manager.status(m).state for m in ids}
            if all(s == "up" and daemon.services.dispatcher.healthy(m) for m, s in states.items()):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"demo modems not up within {timeout}s: {states}")
            sub.get(timeout=min(left, 0.2))  # any event (modem.up, health) is a reason to look
    finally:
        sub.close()


def log_in(page: Any, base_url: str, user: str = ADMIN[0], password: str = ADMIN[1]) -> None:
    """Log in through the login form and wait for the home page."""
    page.goto(f"{base_url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/home")
