"""Gammu 1.42 (Debian's `gammu`) against one simulated modem: the session the tests check.

Each step is one `gammu` call with its own gammurc and `textall` log (what Gammu sent and got),
so a failure can show exactly where the exchange went wrong.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .simproc import SimModemInfo, SimProcess, wait_until

GAMMU = shutil.which("gammu")
CALL_TIMEOUT = 60.0

SINGLE = "Hello from gammu, {family}"
LONG_LENGTH = 400  # three GSM 7-bit parts
UNICODE = "Ünïcödé from gammu 😀 {family}"
INCOMING = "A text for gammu to list, {family}"


def long_text(family: str) -> str:
    """LONG_LENGTH characters of GSM 7-bit text, different for each family."""
    text = "".join(f"part of a long text for {family} number {i:03d}. " for i in range(20))
    return text[:LONG_LENGTH]


@dataclass
class Step:
    """One gammu call: its arguments, exit status, output and log."""

    args: list[str]
    returncode: int
    output: str
    log: Path

    def explain(self) -> str:
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        return (
            f"gammu {' '.join(self.args)} exited {self.returncode}\n"
            f"--- output ---\n{self.output}\n--- end of {self.log} ---\n{tail}"
        )


@dataclass
class GammuSession:
    """Gammu against one modem: :meth:`play_info` (identify, networkinfo, monitor, getallsms)
    or :meth:`play_sms` (three sendsms and getussd, then the handset's inbox). Two modems of a
    family play the halves side by side: each Gammu call spends seconds in Gammu's own pauses."""

    sim: SimProcess
    modem: SimModemInfo
    folder: Path
    steps: dict[str, Step] = field(default_factory=dict)
    inbox: list[dict] = field(default_factory=list)
    error: str | None = None

    def run(self, name: str, *args: str) -> Step:
        assert GAMMU is not None
        log = self.folder / f"{name}.log"
        rc = self.folder / f"{name}.gammurc"
        rc.write_text(
            f"[gammu]\ndevice = {self.modem.port}\nconnection = at\n"
            f"logfile = {log}\nlogformat = textall\n"
        )
        try:
            done = subprocess.run(
                [GAMMU, "-c", str(rc), *args],
                capture_output=True,
                text=True,
                timeout=CALL_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
            step = Step(list(args), done.returncode, done.stdout + done.stderr, log)
        except subprocess.TimeoutExpired:
            step = Step(list(args), -1, f"no answer within {CALL_TIMEOUT} s", log)
        self.steps[name] = step
        return step

    def play_info(self) -> GammuSession:
        family, handset = self.modem.family, self.modem.handset
        try:
            self.run("identify", "identify")
            self.run("networkinfo", "networkinfo")
            self.run("monitor", "monitor", "1")
            # Something in storage for getallsms (every family's AT+CNMI stores it at boot).
            self.sim.text_modem(handset, self.modem, INCOMING.format(family=family))
            wait_until(f"{family}: text stored", lambda: self.sim.stored(self.modem), 10)
            self.run("getallsms", "getallsms")
        except (OSError, AssertionError) as exc:  # every test of this family reports it
            self.error = f"{type(exc).__name__}: {exc}"
        return self

    def play_sms(self) -> GammuSession:
        family, handset = self.modem.family, self.modem.handset
        try:
            single = SINGLE.format(family=family)
            self.run("sendsms_single", "sendsms", "TEXT", handset, "-text", single)
            text = long_text(family)
            self.run(
                "sendsms_long", "sendsms", "TEXT", handset, "-len", str(len(text)), "-text", text
            )
            unicode = UNICODE.format(family=family)
            self.run(
                "sendsms_unicode", "sendsms", "TEXT", handset, "-unicode", "-textutf8", unicode
            )
            self.run("getussd", "getussd", "*100#")
            self.inbox = self.sim.inbox(handset)
        except (OSError, AssertionError) as exc:  # every test of this family reports it
            self.error = f"{type(exc).__name__}: {exc}"
        return self
