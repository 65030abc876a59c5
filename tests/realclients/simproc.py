"""`gateway sim` run as a process for the real third-party clients, and its control API.

One simulator process serves one modem of every family per client (families in the order of
FAMILIES, then again for the next client) and one handset per modem; the tests drive handsets
and read their inboxes through the control API (JSON over HTTP on loopback), as any tool would.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

FAMILIES = ("huawei", "simcom", "quectel", "sierra", "ublox", "generic")
# One set of modems each, so that they all run side by side.
CLIENTS = ("gammu-info", "gammu-sms", "smsd")
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class SimModemInfo:
    """One modem as `gateway sim` announced it, and the handset set aside to talk to it."""

    family: str
    port: str
    imei: str
    number: str
    handset: str


class SimProcess:
    """A running `gateway sim` and its control API."""

    def __init__(self, proc: subprocess.Popen[str], log: IO[str]) -> None:
        self.proc = proc
        self.log = log
        self.control = ""
        self._modems: list[dict[str, Any]] = []

    def wait_started(self) -> None:
        """Read the announcement lines up to the control URL."""
        deadline = time.monotonic() + START_TIMEOUT
        assert self.proc.stdout is not None
        while not self.control:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            if not ready:
                raise RuntimeError(f"gateway sim did not start within {START_TIMEOUT} s")
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"gateway sim exited with {self.proc.wait()}")
            obj = json.loads(line)
            if "control" in obj:
                self.control = obj["control"]
            elif "imei" in obj:
                self._modems.append(obj)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 10 s."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def modem(self, client: str, family: str) -> SimModemInfo:
        """The modem of ``family`` reserved for ``client``, with its handset."""
        index = CLIENTS.index(client) * len(FAMILIES) + FAMILIES.index(family)
        m = self._modems[index]
        assert m["family"] == family, m
        return SimModemInfo(family, m["port"], m["imei"], m["number"], f"+1555123{index + 1:04d}")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.control + path, timeout=10) as resp:
            return json.load(resp)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.control + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.load(resp)

    def inbox(self, handset: str) -> list[dict[str, Any]]:
        return self.get(f"/handsets/{handset}/inbox")

    def text_modem(self, handset: str, modem: SimModemInfo, text: str) -> None:
        """The handset texts the modem."""
        self.post(f"/handsets/{handset}/send", {"to": modem.number, "text": text})

    def stored(self, modem: SimModemInfo) -> list[dict[str, Any]]:
        return self.get(f"/modems/{modem.imei}/stored")


def wait_until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll ``check`` (every 0.1 s) until it returns something true; AssertionError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {value!r})")
        time.sleep(0.1)


def start_sim(base: Path) -> SimProcess:
    """`gateway sim` with a modem of every family for each client in ``base``, status reports
    after the simulator's default (realistic) delay; RuntimeError if it does not come up."""
    count = len(FAMILIES) * len(CLIENTS)
    log = open(base / "sim.log", "w")  # noqa: SIM115 - closed by SimProcess.stop
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.commands.sim",
            "--modems",
            str(count),
            "--handsets",
            str(count),
            "--family",
            ",".join(FAMILIES),
            "--dir",
            str(base),
            "--seed",
            "9",
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    sim = SimProcess(proc, log)
    try:
        sim.wait_started()
    except RuntimeError:
        sim.stop()
        raise
    return sim
