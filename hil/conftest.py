"""What the hardware-in-the-loop suite runs against: a simulated modem and handset (the default,
so it runs in every test run), or a real modem and a phone when ``GATEWAY_HIL_PORT`` is set.

Environment (all optional; see docs/hil.md):

- ``GATEWAY_HIL_PORT``: the modem's AT port, e.g. ``/dev/serial/by-id/usb-HUAWEI_...-if00-port0``;
- ``GATEWAY_HIL_PEER``: a phone number in E.164 that receives our texts and can text back;
  without it, tests that send to or need a text from the peer are skipped (on hardware only);
- ``GATEWAY_HIL_PIN``: the SIM PIN, entered once (never retried);
- ``GATEWAY_HIL_BAUD`` (default 115200) and ``GATEWAY_HIL_RTSCTS=1`` for a UART modem;
- ``GATEWAY_HIL_WAIT``: seconds to wait for the peer's texts and for status reports on
  hardware (default 300);
- ``GATEWAY_HIL_SIM_FAMILY``: the simulated family when no port is given (default huawei).

The suite talks to the modem only through the gateway's own :class:`ModemManager` and
:class:`Modem`, exactly as the daemon does.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from gateway.modem import pdu as pdumod
from gateway.modem.device import Modem, ModemSettings
from gateway.modem.errors import CodecError
from gateway.modem.manager import ModemManager, ModemSpec, ModemStatus
from gateway.sim import Handset, Network, SimModem

log = logging.getLogger("hil")

SIM_PEER = "+15551230001"
SIM_WAIT = 10.0
MODEM_ID = "hil"

Decoded = pdumod.Deliver | pdumod.Submit | pdumod.StatusReport


@dataclass
class Target:
    """The modem under test and the peer at the other end."""

    config: pytest.Config
    port: str
    settings: ModemSettings
    peer: str | None
    wait: float  # how long to wait for the peer's texts and for status reports
    sim: SimModem | None = None
    handset: Handset | None = None
    own_number: str | None = None

    @property
    def real(self) -> bool:
        return self.sim is None

    def say(self, text: str) -> None:
        """Tell the person at the bench something (shown even while pytest captures output)."""
        capman = self.config.pluginmanager.getplugin("capturemanager")
        reporter = self.config.pluginmanager.getplugin("terminalreporter")
        if capman is None or reporter is None:
            print(text)
            return
        with capman.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(f">>> {text}", bold=True)

    def require_peer(self) -> str:
        """The peer's number; skips the test on hardware when none is configured."""
        if self.peer is None:
            pytest.skip(
                "needs a phone that receives and texts back: set GATEWAY_HIL_PEER to its number "
                "in E.164 (e.g. +447700900123)"
            )
        return self.peer

    def peer_texts(self, text: str) -> None:
        """Make the peer text ``text`` to the modem: the simulated handset does it; on
        hardware the operator is asked to."""
        if self.handset is not None and self.sim is not None:
            self.handset.send(to=self.sim.number, text=text)
            return
        number = self.own_number or "its SIM's number (AT+CNUM does not know it)"
        self.say(
            f"From the phone {self.peer}, text exactly {text!r} to the modem on {self.port} "
            f"({number}). Waiting up to {self.wait:.0f} s."
        )

    def peer_got(self, text: str) -> None:
        """Check that the peer received ``text`` (simulator), or ask the operator to look."""
        if self.handset is not None:
            got = self.handset.wait_for_message(
                timeout=self.wait, predicate=lambda m: m.text == text
            )
            assert got is not None and got.text == text
            return
        self.say(f"The phone {self.peer} should now show: {text!r}")


@dataclass
class Inbox:
    """The manager's on_pdu and on_status: every PDU handed up, decoded; statuses."""

    say: Callable[[str], None]
    pdus: queue.Queue[tuple[str, Decoded | None, str]] = field(default_factory=queue.Queue)
    statuses: queue.Queue[ModemStatus] = field(default_factory=queue.Queue)
    refused: queue.Queue[str] = field(default_factory=queue.Queue)
    refuse: threading.Event = field(default_factory=threading.Event)

    def on_pdu(self, modem_id: str, pdu: str, source: str) -> None:
        try:
            decoded: Decoded | None = pdumod.decode(pdu, smsc=True)
        except CodecError as exc:
            log.warning("undecodable PDU from %s (%s): %s", source, exc, pdu)
            decoded = None
        if self.refuse.is_set():
            self.refused.put(pdu)
            raise RuntimeError("HIL: refusing this commit on purpose (storage sweep test)")
        self.pdus.put((pdu, decoded, source))

    def on_status(self, status: ModemStatus) -> None:
        self.statuses.put(status)

    def wait_for(self, pred: Callable[[Decoded, str], bool], timeout: float) -> tuple[Decoded, str]:
        """The next committed PDU that satisfies ``pred``; others are shown and dropped (on
        hardware they may be real messages: they were committed here, so print them)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no such message within {timeout:.0f} s")
            try:
                pdu, decoded, source = self.pdus.get(timeout=left)
            except queue.Empty:
                continue
            if decoded is not None and pred(decoded, source):
                return decoded, source
            self.say(f"(another message, committed and deleted from the SIM: {source} {pdu})")


@dataclass
class Gateway:
    """The modem under test, run by the gateway's ModemManager."""

    manager: ModemManager
    modem: Modem
    inbox: Inbox

    def status(self) -> ModemStatus:
        return self.manager.status(MODEM_ID)

    def wait_status(self, pred: Callable[[ModemStatus], bool], timeout: float) -> ModemStatus:
        """Wait until the modem's status satisfies ``pred``; re-checked on every on_status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if pred(status):
                return status
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"status not reached within {timeout:.0f} s: {status}")
            try:
                self.inbox.statuses.get(timeout=left)
            except queue.Empty:
                continue


def _settings_from_env() -> ModemSettings:
    return ModemSettings(
        baudrate=int(os.environ.get("GATEWAY_HIL_BAUD", "115200")),
        rtscts=os.environ.get("GATEWAY_HIL_RTSCTS", "") in ("1", "yes", "true"),
        pin=os.environ.get("GATEWAY_HIL_PIN") or None,
    )


@pytest.fixture(scope="session")
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    port = os.environ.get("GATEWAY_HIL_PORT")
    if port:
        yield Target(
            request.config,
            port,
            _settings_from_env(),
            peer=os.environ.get("GATEWAY_HIL_PEER") or None,
            wait=float(os.environ.get("GATEWAY_HIL_WAIT", "300")),
        )
        return
    family = os.environ.get("GATEWAY_HIL_SIM_FAMILY", "huawei")
    with Network(tmp_path_factory.mktemp("hil-sim"), seed=7, reorder_probability=0.5) as net:
        sim = net.add_modem(family, boot_time=0.05)
        handset = net.add_handset(SIM_PEER)
        settings = ModemSettings(
            command_timeout=3.0, retry_delay=0.05, startup_timeout=10.0, reset_timeout=10.0
        )
        yield Target(
            request.config,
            sim.port,
            settings,
            peer=SIM_PEER,
            wait=SIM_WAIT,
            sim=sim,
            handset=handset,
            own_number=sim.number,
        )


@pytest.fixture(scope="session")
def gateway(target: Target) -> Iterator[Gateway]:
    """The modem under the gateway's ModemManager, up (start-up done) for the whole session."""
    inbox = Inbox(target.say)
    ups: queue.Queue[Modem] = queue.Queue()
    failures: queue.Queue[str] = queue.Queue()

    def on_status(status: ModemStatus) -> None:
        inbox.on_status(status)
        if status.state == "failed":
            failures.put(status.last_error or "failed")

    manager = ModemManager(
        [ModemSpec(MODEM_ID, port=target.port, label="HIL", settings=target.settings)],
        scan=[],
        on_pdu=inbox.on_pdu,
        on_up=lambda _id, modem: ups.put(modem),
        on_status=on_status,
    )
    manager.start()
    try:
        start_wait = 20.0 if target.sim else max(60.0, target.settings.startup_timeout * 2)
        try:
            modem = ups.get(timeout=start_wait)
        except queue.Empty:
            status = manager.status(MODEM_ID)
            reason = failures.get_nowait() if not failures.empty() else status.last_error
            pytest.fail(
                f"the modem on {target.port} did not come up in {start_wait:.0f} s: "
                f"{status.state}, {reason}"
            )
        gw = Gateway(manager, modem, inbox)
        # The start-up sweep ends with a storage reading.
        gw.wait_status(lambda s: s.storage is not None, start_wait)
        ident = gw.status().identity
        if ident is not None and target.own_number is None:
            target.own_number = ident.number
        yield gw
    finally:
        manager.stop()


@pytest.fixture
def tag() -> str:
    """A short random tag that tells this test's messages from any other."""
    return os.urandom(3).hex()
