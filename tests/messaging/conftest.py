"""Fixtures for messaging tests: a store, a config with two short codes, fake modem links."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

from gateway.config import Config, RateLimit, parse_config
from gateway.modem.at import CmsError
from gateway.services import build_services
from gateway.store.times import now

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


def rate_limited(modem_id: str, **limits: int) -> Callable[[Config], Config]:
    """An ``adjust`` for World: the modem gets this rate limit (``per_minute=2``)."""

    def adjust(config: Config) -> Config:
        modems = tuple(
            dataclasses.replace(m, rate_limit=RateLimit(**limits)) if m.id == modem_id else m
            for m in config.modems
        )
        return dataclasses.replace(config, modems=modems)

    return adjust


def cms(code: int) -> CmsError:
    return CmsError("/dev/fake", "AT+CMGS=20", f"+CMS ERROR: {code}")


class World:
    """Store + bus + outbox + dispatcher + inbound, built as the daemon builds them
    (gateway.services), with fake modem links. ``adjust`` changes the parsed configuration
    (say, a modem's rate limit) before anything is built; ``clock`` is the dispatcher's."""

    def __init__(
        self,
        tmp_path,
        extra: str = "",
        *,
        adjust: Callable[[Config], Config] | None = None,
        clock: Callable[[], datetime] = now,
    ) -> None:
        config = parse_config(CONFIG.format(data_dir=tmp_path) + extra)
        self.config = adjust(config) if adjust is not None else config
        self.services = build_services(self.config, modems=False, clock=clock)
        self.store = self.services.store
        self.events = self.services.events
        self.sub = self.events.subscribe()
        self.dispatcher = self.services.dispatcher
        self.outbox = self.services.outbox
        self.inbound = self.services.inbound
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


def note_commits(
    world: World, monkeypatch: pytest.MonkeyPatch, note: Callable[[str], None]
) -> None:
    """Call ``note("commit")`` after each outermost store transaction that changed something
    (nested ``tx()`` blocks are one commit), on the thread that made it."""
    original = world.store.db.tx
    depth = threading.local()

    @contextlib.contextmanager
    def counted() -> Iterator:
        outer = not getattr(depth, "n", 0)
        depth.n = getattr(depth, "n", 0) + 1
        try:
            with original() as conn:
                before = conn.total_changes
                yield conn
                changed = conn.total_changes != before
        finally:
            depth.n -= 1
        if outer and changed:
            note("commit")

    monkeypatch.setattr(world.store.db, "tx", counted)


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    w = World(tmp_path)
    w.dispatcher.start()
    yield w
    w.close()
