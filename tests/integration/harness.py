"""The harness of the integration tests: a config with the simulator inside, and a running
in-process daemon with helpers that wait on the event bus (never on luck).

``make_config(directory, ...)`` writes a gateway.yaml with a ``simulator:`` section (three
modems, two short codes, two handsets) and short timings; ``Gateway(config)`` starts a Daemon
on it (web off unless asked).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.config import Config
from gateway.daemon import Daemon

SUPPORT = "55123"
ALERTS = "55999"
# Luhn-valid IMEIs (the simulator keeps them as given).
IMEI_A = "351234560000010"
IMEI_B = "351234560000028"
IMEI_C = "351234560000036"
NUM_A = "+15550100001"
NUM_B = "+15550100002"
NUM_C = "+15550100003"
ALICE = "+15551230001"
BOB = "+15551230002"

CONFIG = """\
data_dir: {data_dir}
default_region: US
web: {{bind: 127.0.0.1, port: 0}}
modems:
  - {{id: a, imei: "{imei_a}", label: "Support A"{extra_a}}}
  - {{id: b, imei: "{imei_b}", label: "Support B"{extra_b}}}
  - {{id: c, imei: "{imei_c}", label: "Alerts"{extra_c}}}
short_codes:
  - {{code: "{support}", name: Support, modems: [a, b], default_modem: a}}
  - {{code: "{alerts}", name: Alerts, modems: [c]}}
messages:
  retry_initial_seconds: 0.2
  retry_max_seconds: 1
  reassembly_timeout_minutes: 60
routing:
  sticky_grace_minutes: {grace}
retention:
  nightly_backups: 0
modem_manager:
  heartbeat_seconds: {heartbeat}
  sweep_seconds: {sweep}
  reconnect_max_seconds: 1
  command_timeout_seconds: {command_timeout}
simulator:
  seed: 7
  status_report_delay: 0
  modems:
    - {{imei: "{imei_a}", number: "{num_a}", family: generic, send_latency: {latency}}}
    - {{imei: "{imei_b}", number: "{num_b}", family: generic, send_latency: {latency}}}
    - {{imei: "{imei_c}", number: "{num_c}", family: generic, send_latency: {latency}}}
  handsets:
    - {{number: "{alice}", name: Alice}}
    - {{number: "{bob}", name: Bob}}
"""


def make_config(
    directory: Path,
    *,
    grace: float = 0.01,
    heartbeat: float = 1,
    command_timeout: float = 2,
    latency: float = 0.0,
    sweep: float = 2,
    modem_extra: dict[str, str] | None = None,
) -> Path:
    """Write ``directory/gateway.yaml`` (data in ``directory/data``) and return its path.
    ``modem_extra`` adds YAML flow keys to a modem, e.g. ``{"a": "status_reports: false"}``."""
    extra = {k: f", {v}" for k, v in (modem_extra or {}).items()}
    text = CONFIG.format(
        data_dir=directory / "data",
        imei_a=IMEI_A,
        imei_b=IMEI_B,
        imei_c=IMEI_C,
        num_a=NUM_A,
        num_b=NUM_B,
        num_c=NUM_C,
        alice=ALICE,
        bob=BOB,
        support=SUPPORT,
        alerts=ALERTS,
        grace=grace,
        heartbeat=heartbeat,
        command_timeout=command_timeout,
        latency=latency,
        sweep=sweep,
        extra_a=extra.get("a", ""),
        extra_b=extra.get("b", ""),
        extra_c=extra.get("c", ""),
    )
    path = directory / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def wait_until(
    sub: Any, check: Callable[[], Any], timeout: float = 8.0, what: str = "condition"
) -> Any:
    """Re-evaluate ``check`` after every event on ``sub`` (or every 0.2 s at most) until it
    returns something truthy; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        sub.get(timeout=min(left, 0.2))


class Gateway:
    """A running in-process daemon with helpers for the tests."""

    def __init__(self, config: Config, *, web: bool = False) -> None:
        self.config = config
        self.daemon = Daemon(config, web=web)
        self.sub = self.daemon.events.subscribe(maxsize=10000)
        self.daemon.start()

    @property
    def store(self):
        return self.daemon.store

    @property
    def net(self):
        return self.daemon.sim_network

    def message(self, message_id: int):
        return self.store.messages.get(message_id)

    def parts(self, message_id: int):
        return self.store.messages.parts(message_id)

    def wait_status(self, message_id: int, statuses: set[str] | str, timeout: float = 8.0) -> str:
        wanted = {statuses} if isinstance(statuses, str) else statuses

        def check():
            row = self.message(message_id)
            return row["status"] if row["status"] in wanted else None

        try:
            return wait_until(self.sub, check, timeout, f"message {message_id} in {wanted}")
        except AssertionError as exc:
            row = self.message(message_id)
            raise AssertionError(f"{exc}; it is {row['status']} ({row['error']})") from None

    def wait_up(self, *modem_ids: str, timeout: float = 8.0) -> None:
        manager = self.daemon.manager
        dispatcher = self.daemon.dispatcher
        wait_until(
            self.sub,
            lambda: all(
                manager.status(m).state == "up" and dispatcher.healthy(m) for m in modem_ids
            ),
            timeout,
            f"modems {modem_ids} up",
        )

    def wait_event(self, kind: str, timeout: float = 8.0, **match: Any):
        """The next event of ``kind`` whose data has ``match``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} event with {match} within {timeout}s")
            ev = self.sub.get(timeout=left)
            if (
                ev is not None
                and ev.kind == kind
                and all(ev.data.get(k) == v for k, v in match.items())
            ):
                return ev

    def stop(self) -> None:
        self.sub.close()
        self.daemon.stop()
