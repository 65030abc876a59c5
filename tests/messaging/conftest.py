"""Fixtures for messaging tests: a store, a config with two short codes, fake modem links."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from gateway.config import parse_config
from gateway.messaging.dispatcher import Dispatcher
from gateway.messaging.events import EventBus
from gateway.messaging.inbound import Inbound
from gateway.messaging.outbound import Outbox
from gateway.modem.at import CmsError
from gateway.store import Store

CONFIG = """
data_dir: {data_dir}
default_region: US
modems:
  - {{id: a, imei: "490154203237518"}}
  - {{id: b, imei: "356938035643809"}}
  - {{id: c, imei: "353456789012347"}}
short_codes:
  - {{code: "55123", name: Support, modems: [a, b], default_modem: a}}
  - {{code: "55999", name: Alerts, modems: [c]}}
messages:
  retry_initial_seconds: 0.05
  retry_max_seconds: 0.2
  reassembly_timeout_minutes: 60
routing:
  sticky_grace_minutes: 30
"""


class FakeLink:
    """A modem link that records PDUs and can fail on chosen calls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []
        self.fail_on: dict[int, Exception] = {}  # call number (1-based) -> exception
        self.calls = 0
        self._mr = 0
        self.lock = threading.Lock()

    def send_pdu(self, pdu: str, length: int) -> int:
        with self.lock:
            self.calls += 1
            exc = self.fail_on.pop(self.calls, None)
            if exc is not None:
                raise exc
            self.sent.append(pdu)
            self._mr = (self._mr + 1) % 256
            return self._mr


def cms(code: int) -> CmsError:
    return CmsError("/dev/fake", "AT+CMGS=20", f"+CMS ERROR: {code}")


class World:
    """Store + bus + outbox + dispatcher + inbound, wired as the daemon wires them."""

    def __init__(self, tmp_path, extra: str = "") -> None:
        self.config = parse_config(CONFIG.format(data_dir=tmp_path) + extra)
        self.store = Store.open(tmp_path)
        self.events = EventBus()
        self.sub = self.events.subscribe()
        self.dispatcher = Dispatcher(self.config, self.store, self.events)
        self.outbox = Outbox(self.config, self.store, self.events, self.dispatcher.wake)
        self.inbound = Inbound(self.config, self.store, self.events, self.outbox)
        self.links = {m.id: FakeLink(m.id) for m in self.config.modems}

    def up(self, *names: str) -> None:
        for name in names:
            self.dispatcher.modem_up(name, self.links[name])

    def wait_status(self, message_id: int, statuses: set[str], timeout: float = 5.0) -> str:
        """Wait (on events) until the message reaches one of ``statuses``."""
        import time

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
        self.dispatcher.stop()
        self.sub.close()
        self.store.close()


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    w = World(tmp_path)
    w.dispatcher.start()
    yield w
    w.close()
