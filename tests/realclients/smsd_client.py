"""smstools 3.1.21 (Debian's `smstools`, the `smsd` daemon) against one simulated modem: it sends
a file from its outgoing spool to a handset, and writes what a handset texts the modem to its
incoming folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .simproc import SimModemInfo, SimProcess, wait_until

SMSD = shutil.which("smsd") or ("/usr/sbin/smsd" if os.access("/usr/sbin/smsd", os.X_OK) else None)
WAIT = 40.0

OUTGOING = "Hello from smsd, {family}"
# The unicode text stays in the Basic Multilingual Plane: smsd 3.1.21 decodes UCS-2 without
# surrogate pairs and cuts an incoming text at its first emoji (a limit of smsd: the same PDU
# decodes whole in Gammu and in the gateway).
INCOMING = ("Plain text for smsd, {family}", "Ünïcödé for smsd ☺ Ω {family}")


@dataclass
class IncomingFile:
    """A message file smsd wrote: its headers and its text."""

    headers: dict[str, str]
    text: str


def read_message_file(path: Path) -> IncomingFile:
    """smsd's message file: ``Key: value`` lines, an empty line, the text."""
    head, _, text = path.read_bytes().decode("utf-8", errors="replace").partition("\n\n")
    headers = {}
    for line in head.splitlines():
        key, _, value = line.partition(":")
        headers[key.strip()] = value.strip()
    return IncomingFile(headers, text)


@dataclass
class SmsdSession:
    """smsd on one modem (:meth:`play`): the outcome of its send and of its receive."""

    sim: SimProcess
    modem: SimModemInfo
    folder: Path
    inbox: list[dict] = field(default_factory=list)
    sent_files: list[str] = field(default_factory=list)
    failed_files: list[str] = field(default_factory=list)
    incoming: list[IncomingFile] = field(default_factory=list)
    error: str | None = None

    def spool(self, name: str) -> Path:
        return self.folder / name

    def config(self) -> Path:
        for name in ("outgoing", "checked", "incoming", "failed", "sent"):
            self.spool(name).mkdir(exist_ok=True)
        conf = self.folder / "smsd.conf"
        conf.write_text(
            "devices = GSM1\n"
            + "".join(
                f"{name} = {self.spool(name)}\n"
                for name in ("outgoing", "checked", "incoming", "failed", "sent")
            )
            + f"logfile = {self.folder / 'smsd.log'}\n"
            f"infofile = {self.folder / 'smsd.working'}\n"
            f"pidfile = {self.folder / 'smsd.pid'}\n"
            "loglevel = 7\n"
            "delaytime = 1\n"
            "delaytime_mainprocess = 1\n"
            "receive_before_send = no\n"
            "decode_unicode_text = yes\n"
            "incoming_utf8 = yes\n"
            "\n[GSM1]\n"
            f"device = {self.modem.port}\n"
            "incoming = yes\n"
            "baudrate = 115200\n"
        )
        return conf

    def log_tail(self) -> str:
        log = self.folder / "smsd.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"

    def play(self) -> SmsdSession:
        assert SMSD is not None
        family, handset = self.modem.family, self.modem.handset
        conf = self.config()
        digits = handset.lstrip("+")
        (self.spool("outgoing") / "to-handset").write_text(
            f"To: {digits}\n\n{OUTGOING.format(family=family)}\n"
        )
        out = open(self.folder / "smsd.out", "w")  # noqa: SIM115 - closed below
        # Its own session: smsd forks a child per modem, and both go with the group.
        proc = subprocess.Popen(
            [SMSD, "-t", "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until(
                f"{family}: smsd sent its outgoing file",
                lambda: list(self.spool("sent").iterdir()) or list(self.spool("failed").iterdir()),
                WAIT,
            )
            wait_until(f"{family}: the handset got it", lambda: self.sim.inbox(handset), WAIT)
            for text in INCOMING:
                self.sim.text_modem(handset, self.modem, text.format(family=family))
            wait_until(
                f"{family}: smsd wrote both texts to its incoming folder",
                lambda: len(list(self.spool("incoming").iterdir())) >= len(INCOMING),
                WAIT,
            )
        except (OSError, AssertionError) as exc:
            self.error = f"{type(exc).__name__}: {exc}\n--- smsd.log ---\n{self.log_tail()}"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            out.close()
        self.inbox = self.sim.inbox(handset)
        self.sent_files = sorted(p.name for p in self.spool("sent").iterdir())
        self.failed_files = sorted(p.name for p in self.spool("failed").iterdir())
        self.incoming = sorted(
            (read_message_file(p) for p in self.spool("incoming").iterdir()),
            key=lambda m: m.text,
        )
        return self
