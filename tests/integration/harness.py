"""The harness of the integration tests: a config with the simulator inside, and a running
in-process daemon with helpers that wait on the event bus (never on luck).

``make_config(directory, ...)`` writes a gateway.yaml with a ``simulator:`` section (three
modems, two short codes, two handsets) and short timings; ``Gateway(config)`` starts a Daemon
on it (web off unless asked).
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.config import Config
from gateway.daemon import Daemon
from gateway.services import Services
from gateway.sim import Network
from gateway.store import Store

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
  failing_after: 3
  probe_seconds: {probe}
  probe_max_seconds: {probe_max}
retention:
  nightly_backups: 0
modem_manager:
  heartbeat_seconds: {heartbeat}
  sweep_seconds: {sweep}
  reconnect_max_seconds: 1
  command_timeout_seconds: {command_timeout}
  send_timeout_seconds: {send_timeout}
simulator:
  seed: 7
  status_report_delay: 0
  # The tests text many numbers of their own: a handset for each, unless a test says false.
  auto_handsets: {auto_handsets}
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
    send_timeout: float = 60,
    latency: float = 0.0,
    sweep: float = 2,
    probe: float = 0.3,
    probe_max: float = 2.0,
    modem_extra: dict[str, str] | None = None,
    auto_handsets: bool = True,
) -> Path:
    """Write ``directory/gateway.yaml`` (data in ``directory/data``) and return its path.
    ``modem_extra`` adds YAML flow keys to a modem, e.g. ``{"a": "status_reports: false"}``;
    ``auto_handsets`` false: a number no handset has fails as on a real network."""
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
        send_timeout=send_timeout,
        latency=latency,
        sweep=sweep,
        probe=probe,
        probe_max=probe_max,
        extra_a=extra.get("a", ""),
        extra_b=extra.get("b", ""),
        extra_c=extra.get("c", ""),
        auto_handsets="true" if auto_handsets else "false",
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
        self.sub = self.daemon.services.events.subscribe(maxsize=10000)
        self.daemon.start()

    @property
    def services(self) -> Services:
        return self.daemon.services

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def net(self) -> Network:
        simulator = self.services.simulator
        if simulator is None:
            raise AssertionError("this gateway's configuration has no simulator")
        return simulator.network

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
        manager = self.services.manager
        dispatcher = self.services.dispatcher
        assert manager is not None  # the daemon builds its services with the modems
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


# ---------------------------------------------------------------------------------------------
# Processes: `gateway sim` and `gateway run` as real processes (for tests that kill the daemon
# while the simulated network and its handsets live on in their own process).

REPO = Path(__file__).resolve().parents[2]


def poll(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    dead: Callable[[], str] | None = None,
) -> Any:
    """Poll ``check`` (a query of another process: no event to wait on) until it returns
    something truthy. ``dead()`` returns a non-empty reason when waiting is pointless (the
    process died): AssertionError with it at once, or naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        reason = dead() if dead is not None else ""
        if reason:
            raise AssertionError(f"while waiting for {what}: {reason}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class SimProcess:
    """``gateway sim`` in its own process: the modems' ptys, the handsets and the control API
    outlive any daemon the test kills. The HTTP client sends JSON with its content type."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "sim.log"
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "sim", "--dir", str(directory), *args],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        finally:
            log.close()
        self.modems: list[dict[str, Any]] = []
        self.handsets: list[str] = []
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()  # blocks until the simulator prints or exits
            if not line:
                raise AssertionError(
                    f"gateway sim exited with {self.proc.wait(10)}: {self.log_path.read_text()}"
                )
            item = json.loads(line)
            if "control" in item:
                self.url: str = item["control"]
                break
            if "imei" in item:
                self.modems.append(item)
            else:
                self.handsets.append(item["number"])

    def http(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        """One control API call; the decoded JSON answer, AssertionError on a non-2xx."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from None

    def text_from(self, handset: str, to: str, text: str) -> int:
        """The handset texts ``to``; returns the number of parts."""
        return int(
            self.http("POST", f"/handsets/{handset}/send", {"to": to, "text": text})["parts"]
        )

    def inbox(self, handset: str) -> list[dict[str, Any]]:
        return self.http("GET", f"/handsets/{handset}/inbox")

    def stored(self, imei: str) -> list[dict[str, Any]]:
        return self.http("GET", f"/modems/{imei}/stored")

    def dead(self) -> str:
        """Why the simulator cannot be used any more ('' while it runs)."""
        if self.proc.poll() is None:
            return ""
        return (
            f"gateway sim exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_sim_config(path: Path, data_dir: Path, port: int, modems: list[dict[str, Any]]) -> Path:
    """A configuration for ``gateway run`` over a :class:`SimProcess`'s modems (``m0``,
    ``m1``, ...), all serving short code 55123, web on 127.0.0.1:``port``, no nightly backup,
    no modem scan; written to ``path``."""
    ids = ", ".join(f"m{i}" for i in range(len(modems)))
    lines = [
        f"data_dir: {data_dir}",
        "default_region: US",
        f"web: {{bind: 127.0.0.1, port: {port}}}",
        "modems:",
        *[
            f'  - {{id: m{i}, imei: "{m["imei"]}", port: "{m["port"]}"}}'
            for i, m in enumerate(modems)
        ],
        "short_codes:",
        f'  - {{code: "55123", name: Support, modems: [{ids}]}}',
        "retention: {nightly_backups: 0}",
        "modem_manager: {scan: []}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def spawn_gateway(config: Path, log: Path, verbosity: str = "-v") -> subprocess.Popen:
    """``gateway -v run -c config`` in a new session, its output appended to ``log``
    (``verbosity="-vv"`` logs every AT command too)."""
    out = log.open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", verbosity, "run", "-c", str(config)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        out.close()


def read_rows(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    """Rows of a query on another process's store, read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()
