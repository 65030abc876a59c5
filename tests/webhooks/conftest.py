"""Fixtures for the webhook tests: a receiver on loopback that can be down, slow, up or
redirecting, and a poster that tells the test about every attempt."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from gateway.messaging import webhooks

from .receiver import Receiver

__all__ = ["Attempts", "Receiver", "World"]


class Attempts:
    """A poster around the real one that counts each attempt's outcome, for waiting on."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.cond = threading.Condition()

    def __call__(self, url: str, body: bytes, headers: dict, **timeouts: float):
        try:
            answer = webhooks.post(url, body, headers, **timeouts)
        except webhooks.DeliveryFailed as exc:
            self._note(f"failed: {exc}")
            raise
        self._note(f"answered {answer.status}")
        return answer

    def _note(self, outcome: str) -> None:
        with self.cond:
            self.outcomes.append(outcome)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[list[str]], bool], timeout: float = 15.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.outcomes), timeout):
                raise AssertionError(f"attempts so far: {self.outcomes}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


CONFIG = """
data_dir: {data_dir}
default_region: US
modems:
  - {{id: a, imei: "490154203237518"}}
  - {{id: c, imei: "353456789012347"}}
short_codes:
  - {{code: "55123", name: Support, modems: [a]}}
  - {{code: "55999", name: Alerts, modems: [c]}}
"""


class Link:
    """A modem link that takes every PDU at once."""

    def __init__(self) -> None:
        self.mr = 0
        self.lock = threading.Lock()

    def send_pdu(self, pdu: str, length: int) -> int:
        with self.lock:
            self.mr = (self.mr + 1) % 256
            return self.mr


class World:
    """The gateway's services without modems (the dispatcher sends through :class:`Link`),
    built as the daemon builds them, over ``tmp_path``; ``extra`` is appended to the YAML."""

    def __init__(self, tmp_path, extra: str = "", **build: object) -> None:
        from gateway.config import parse_config
        from gateway.services import build_services

        self.tmp_path = tmp_path
        self.config = parse_config(CONFIG.format(data_dir=tmp_path) + extra)
        self.services = build_services(self.config, modems=False, **build)
        self.store = self.services.store
        self.events = self.services.events
        self.sub = self.events.subscribe()
        self.dispatcher = self.services.dispatcher
        self.outbox = self.services.outbox

    def up(self, *names: str) -> None:
        for name in names:
            self.dispatcher.modem_up(name, Link())

    def wait_status(self, message_id: int, statuses: set[str], timeout: float = 5.0) -> str:
        """Wait (on the bus's events) until the message reaches one of ``statuses``."""
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
        self.services.webhooks.stop()
        self.dispatcher.stop()
        self.sub.close()
        self.store.close()
