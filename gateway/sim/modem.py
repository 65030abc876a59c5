"""One simulated modem: a thread that serves a port (pty or serial device) byte for byte like the
hardware, holds a SIM (identity, PIN, storage) and takes part in the simulated network.

The machinery lives here (the thread, its timers, input framing, output with faults, delivery of
incoming messages, fault injection); the AT command set is an :class:`~.atcommands.AtCommands`
the modem holds (``modem.commands``), given the modem whose state it works on.

Threads: the modem thread alone touches the port and the AT state. Other threads (tests, the
network, the control API) call the public methods, which either take the modem lock for a quick
read or hand a function to the modem thread through its queue and wait for it to run.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import logging
import os
import queue
import random
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.modem import pdu as codec
from gateway.modem.errors import CodecError
from gateway.sim.atcommands import AtCommands, AtSettings, Reply, SubmittedPart
from gateway.sim.errors import FaultError, SimError
from gateway.sim.families import Family
from gateway.sim.port import DeviceEndpoint, Endpoint, PtyEndpoint
from gateway.sim.storage import REC_UNREAD, Storage, StoredPdu

if TYPE_CHECKING:
    from gateway.sim.network import Network

log = logging.getLogger(__name__)

FAULT_KINDS = (
    "hang",
    "unplug",
    "garbage",
    "cms_error",
    "no_network",
    "pin",
    "storage_full",
    "slow",
    "instant_reports",
)

# When an injected fault begins: now (the modem idle or not), or at a moment of the next send:
# - "send": the AT+CMGS line arrived; the modem has not answered it (mid-command);
# - "prompt": the "> " prompt went out; the PDU is being written;
# - "submitted": the network took the part; the +CMGS answer has not gone out yet;
# - "between_parts": the +CMGS answer of a part that is not the last of its message went out.
FAULT_MOMENTS = ("now", "send", "prompt", "submitted", "between_parts")

# Which parameters each fault accepts, with their defaults.
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "hang": {"duration": None},
    "unplug": {"duration": None},
    "garbage": {"probability": 0.3, "max_bytes": 8, "anywhere": False},
    "cms_error": {"probability": 1.0, "code": 500, "commands": ("CMGS",), "skip": 0, "count": None},
    "no_network": {},
    "pin": {"pin": None},
    "storage_full": {},
    "slow": {"send_latency": 2.0, "command_latency": 0.0},
    "instant_reports": {},
}

CTRL_Z = 0x1A
ESC = 0x1B
CALL_TIMEOUT = 5.0
RESET_GRACE = 0.05


@dataclass
class Delivery:
    """An incoming message or status report on its way into this modem."""

    kind: str  # "deliver" | "status-report"
    pdu: str  # hex with SMSC field
    on_delivered: Callable[[], None] | None = None


class SimModem:
    """A virtual USB GSM modem; create it with :meth:`Network.add_modem`.

    Public, read-only unless noted: ``port`` (the stable by-id symlink, or the serial device in
    device mode), ``device`` (the current /dev/pts/N, None while unplugged), ``family``,
    ``imei``, ``iccid``, ``imsi``, ``number``, ``pin``, ``puk``, ``pin_tries``, ``signal``,
    ``command_latency`` and ``send_latency`` (settable), ``sent`` (SubmittedPart list),
    ``history`` (the last command lines received), ``faults`` (active faults and parameters).
    """

    def __init__(
        self,
        network: Network,
        *,
        profile: Family,
        number: str,
        imei: str,
        iccid: str,
        imsi: str,
        pin: str | None,
        puk: str,
        storage_capacity: int,
        command_latency: float,
        send_latency: float,
        boot_time: float,
        reset_time: float,
        cnma_timeout: float,
        urc_pdu_gap: float,
        chatter_interval: float | None,
        signal: int,
        rng: random.Random,
        link: Path | None,
        device: str | None = None,
        baudrate: int = 115200,
    ) -> None:
        self.network = network
        self.profile = profile
        self.family = profile.name
        self.number = number
        self.imei = imei
        self.iccid = iccid
        self.imsi = imsi
        self.pin = pin
        self.puk = puk
        self.pin_tries = 3
        self.puk_tries = 10
        self.command_latency = command_latency
        self.send_latency = send_latency
        self.boot_time = boot_time
        self.reset_time = reset_time
        self.cnma_timeout = cnma_timeout
        self.urc_pdu_gap = urc_pdu_gap
        self.chatter_interval = chatter_interval
        self.signal = signal
        self.balance_cents = 1234
        self.rng = rng
        self.lac = rng.randrange(0x1000, 0xFFFF)
        self.cell_id = rng.randrange(0x100000, 0xFFFFFFF)
        self.storage = Storage(storage_capacity, profile.first_index)
        self.sent: list[SubmittedPart] = []
        self.history: collections.deque[str] = collections.deque(maxlen=1000)
        self.dropped_status_reports = 0
        self.faults: dict[str, dict[str, Any]] = {}
        self.armed: list[tuple[str, str, dict[str, Any]]] = []  # (moment, kind, params)
        self._link = link
        self._device_path = device
        self._baudrate = baudrate
        self.port = str(link) if link is not None else str(device)

        self._lock = threading.RLock()
        self._faults_changed = threading.Condition(self._lock)
        self._calls: queue.Queue[tuple[Callable[[], Any], threading.Event, list]] = queue.Queue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._endpoint: Endpoint | None = None
        self._last_device: str | None = None
        self._plugged = threading.Event()  # set while the port is present

        # Power and SIM state, and the input/output state of the serial line.
        self.at = AtSettings.boot(profile)
        self.commands = AtCommands(self)  # the AT command set, working on this modem
        self.cfun = 1
        self.sim_state = "READY"  # "READY" | "SIM PIN" | "SIM PUK"
        self.sms_ready = False
        self._powered = False
        self.boot_epoch = 0  # bumps on every boot, so stale boot timers do nothing
        self._reg_reported: int | None = None
        self._line = bytearray()
        self._backlog = bytearray()
        self._busy = False  # a response is being "computed" (latency); input waits
        self._prompt: dict[str, Any] | None = None  # set while waiting for a PDU after "> "
        self._deferred_urcs: list[str] = []  # URCs held while the line is reserved
        self._before_echo: list[str] = []  # Huawei: URCs that go out before the next echo
        self._in_response: list[str] = []  # test hook: URCs placed inside the next response
        self._held: collections.deque[Delivery] = collections.deque()
        self._awaiting_ack: Delivery | None = None
        self._ack_epoch = 0
        self._memfull_announced = False
        self._next_mr = rng.randrange(256)
        self._cms_matches = 0

    # ------------------------------------------------------------------------------------------
    # Life cycle

    def start(self) -> None:
        """Plug the modem in (open its port, boot) and start its thread."""
        self._plug()
        self._thread = threading.Thread(
            target=self._run, name=f"sim-modem-{self.imei}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and close the port (the link goes away)."""
        with self._lock:
            self._stopping = True
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            if self._endpoint is not None:
                self._endpoint.close()
                self._endpoint = None
            self._plugged.clear()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError as exc:
                log.debug("closing wake pipe: %s", exc)

    @property
    def device(self) -> str | None:
        """The device node the port currently points at (None while unplugged)."""
        ep = self._endpoint
        return ep.device if ep is not None else None

    @property
    def plugged(self) -> bool:
        return self._plugged.is_set()

    def wait_plugged(self, timeout: float = 5.0) -> bool:
        """Wait until the port is present (after a replug or a reset); True if it is."""
        return self._plugged.wait(timeout)

    def summary(self) -> dict[str, Any]:
        """What the control API shows for this modem."""
        with self._lock:
            return {
                "port": self.port,
                "device": self.device,
                "imei": self.imei,
                "iccid": self.iccid,
                "imsi": self.imsi,
                "number": self.number,
                "family": self.family,
                "plugged": self.plugged,
                "faults": {k: dict(v) for k, v in self.faults.items()},
                "armed": [{"kind": k, "when": w} for w, k, _ in self.armed],
                "stored": len(self.storage.snapshot()),
                "capacity": self.storage.sm.capacity,
            }

    # ------------------------------------------------------------------------------------------
    # Public controls (any thread)

    def set_fault(self, kind: str, when: str = "now", **params: Any) -> None:
        """Inject a fault, ``when`` one of FAULT_MOMENTS: now, or armed to begin at that moment
        of the next send (it then fires once; clear_fault also disarms it). Kinds and
        parameters (defaults in FAULT_PARAMS):

        - ``hang`` (duration=None): stop answering and drop input; back after ``duration`` s.
        - ``unplug`` (duration=None): the port disappears (the client sees EOF/EIO, the link is
          removed); it comes back under a new /dev/pts/N after ``duration`` s or on replug().
        - ``garbage`` (probability=0.3, max_bytes=8, anywhere=False): random bytes, 0xFF
          included, mixed into the output, between writes or (anywhere=True) inside them.
        - ``cms_error`` (probability=1.0, code=500, commands=("CMGS",), skip=0, count=None):
          the named SMS commands fail with ``+CMS ERROR: code`` (code=None: no number), after
          ``skip`` matching commands succeed, ``count`` times at most.
        - ``no_network``: registration lost; sends fail with +CMS ERROR: 331; incoming messages
          wait in the network until it is cleared.
        - ``pin`` (pin=None): the SIM asks for its PIN (the modem's, or ``pin``) again.
        - ``storage_full``: the storage takes no more messages (the family's memory-full habit).
        - ``slow`` (send_latency=2.0, command_latency=0.0): added latency per send / command.
        - ``instant_reports``: status reports for this modem's messages come back the instant
          the message is delivered, ignoring the network's delay (they can then land inside
          the client's next AT+CMGS exchange).
        """
        if kind not in FAULT_PARAMS:
            raise FaultError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        unknown = set(params) - set(FAULT_PARAMS[kind])
        if unknown:
            raise FaultError(
                f"fault {kind!r} takes {sorted(FAULT_PARAMS[kind]) or 'no parameters'}, "
                f"not {sorted(unknown)}"
            )
        if when not in FAULT_MOMENTS:
            raise FaultError(f"unknown moment {when!r}; known: {', '.join(FAULT_MOMENTS)}")
        values = {**FAULT_PARAMS[kind], **params}
        if kind == "cms_error" and isinstance(values["commands"], str):
            values["commands"] = (values["commands"],)
        if kind == "garbage" and not 0 <= float(values["probability"]) <= 1:
            raise FaultError("garbage probability must be between 0 and 1")
        if when == "now":
            self._call(lambda: self._apply_fault(kind, values))
        else:
            self._call(lambda: self.armed.append((when, kind, values)))

    def wait_fired(self, timeout: float = 5.0) -> bool:
        """Wait until no armed fault is left (each fired at its moment); True if so."""
        with self._faults_changed:
            return self._faults_changed.wait_for(lambda: not self.armed, timeout)

    def clear_fault(self, kind: str | None = None) -> None:
        """End one fault (or all of them); clearing ``unplug`` plugs the port back in."""
        if kind is not None and kind not in FAULT_PARAMS:
            raise FaultError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        self._call(lambda: self._clear_fault(kind))

    def unplug(self) -> None:
        """Pull the modem out (same as set_fault("unplug"))."""
        self.set_fault("unplug")

    def replug(self) -> None:
        """Plug the modem back in: a new pty, the link follows it, the modem boots."""
        self._call(lambda: self._clear_fault("unplug"))

    def wait_fault_cleared(self, kind: str, timeout: float = 5.0) -> bool:
        """Wait until fault ``kind`` is over (e.g. a hang with a duration); True if it is."""
        with self._faults_changed:
            return self._faults_changed.wait_for(lambda: kind not in self.faults, timeout)

    def stored(self) -> list[dict]:
        """What is in its storage now: memory, index, stat, kind and PDU of each message."""
        with self._lock:
            return self.storage.snapshot()

    def set_signal(self, rssi: int) -> None:
        """Change the signal (0-31, 99 unknown); Huawei reports it with ^RSSI."""
        self._call(lambda: self._set_signal(rssi))

    def inject_urc(self, text: str, *, where: str = "now") -> None:
        """Make the modem say ``text`` unsolicited: ``now`` (as soon as the line is free),
        ``before_echo`` (before the echo of the next command line), or ``in_response``
        (between the information lines and the final result of the next command that has any)."""
        if where not in ("now", "before_echo", "in_response"):
            raise ValueError(f"where must be now, before_echo or in_response, not {where!r}")

        def do() -> None:
            if where == "now":
                self.urc(text)
            elif where == "before_echo":
                self._before_echo.append(text)
            else:
                self._in_response.append(text)

        self._call(do)

    # Called by the network (any thread): messages and reports for this modem.

    def deliver(self, pdu: str, on_delivered: Callable[[], None] | None = None) -> None:
        """Hand an SMS-DELIVER to this modem (the network keeps it until the modem can take it)."""
        self._post(lambda: self._accept(Delivery("deliver", pdu, on_delivered)))

    def deliver_status_report(self, pdu: str) -> None:
        """Hand an SMS-STATUS-REPORT to this modem."""
        self._post(lambda: self._accept(Delivery("status-report", pdu)))

    # ------------------------------------------------------------------------------------------
    # Thread plumbing

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError as exc:  # closed while stopping
            log.debug("wake after close: %s", exc)

    def _post(self, fn: Callable[[], Any]) -> threading.Event:
        done = threading.Event()
        self._calls.put((fn, done, []))
        self._wake()
        return done

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the modem thread and wait for it (inline if the thread is not running)."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            with self._lock:
                return fn()
        done = threading.Event()
        box: list = []
        self._calls.put((fn, done, box))
        self._wake()
        if not done.wait(CALL_TIMEOUT):
            raise SimError(f"modem {self.imei} did not run a control call within {CALL_TIMEOUT}s")
        if box and isinstance(box[0], BaseException):
            raise box[0]
        return box[0] if box else None

    def _after(self, delay: float, fn: Callable[[], None]) -> None:
        """Run fn on the modem thread in ``delay`` seconds (modem thread only)."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), fn))

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                ep = self._endpoint
                timeout = None
                if self._timers:
                    timeout = max(0.0, self._timers[0][0] - time.monotonic())
            fds = [self._wake_r] + ([ep.fd] if ep is not None else [])
            try:
                readable, _, _ = select.select(fds, [], [], timeout)
            except (OSError, ValueError):
                readable = []  # the port was closed under select; the loop picks up the state
            with self._lock:
                if self._stopping:
                    return
                if self._wake_r in readable:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                self._run_calls()
                self._run_timers()
                if ep is not None and ep is self._endpoint and ep.fd in readable:
                    self._read_port(ep)

    def _run_calls(self) -> None:
        while True:
            try:
                fn, done, box = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                box.append(fn())
            except Exception as exc:  # handed back to the caller, who raises it
                box.append(exc)
                if not isinstance(exc, SimError | ValueError):
                    log.exception("modem %s: control call failed", self.imei)
            finally:
                done.set()

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            fn()

    def _read_port(self, ep: Endpoint) -> None:
        try:
            data = ep.read()
        except OSError as exc:
            log.warning("modem %s: reading %s failed: %s", self.imei, ep.device, exc)
            data = b""
        if data is None:
            return
        if data == b"":
            log.warning("modem %s: %s went away", self.imei, ep.device)
            self._unplug(None)
            return
        if "hang" in self.faults or not self._powered:
            return  # a hung or rebooting modem reads nothing
        self._backlog += data
        self._process_input()

    # ------------------------------------------------------------------------------------------
    # Input framing: command lines, and the PDU after the "> " prompt

    def _process_input(self) -> None:
        while self._backlog and not self._busy and self._endpoint is not None:
            byte = self._backlog[0]
            del self._backlog[0]
            if self._prompt is not None:
                if byte == CTRL_Z:
                    body = self._line.decode("latin-1")
                    self._line.clear()
                    self._finish_prompt(body)
                elif byte == ESC:
                    self._line.clear()
                    self._prompt = None
                    self._reply(Reply(final="OK"))
                else:
                    self._line.append(byte)
                continue
            if byte == 0x0D:
                line = self._line.decode("latin-1")
                self._line.clear()
                self._on_line(line)
            elif byte == 0x0A and not self._line:
                continue  # the LF of a CR LF line end
            elif byte in (0x08, 0x7F):
                if self._line:
                    self._line.pop()
            else:
                self._line.append(byte)

    def _on_line(self, raw: str) -> None:
        start = raw.upper().find("AT")
        if start < 0:
            if raw.strip():
                log.debug("modem %s: ignored line without AT: %r", self.imei, raw)
            return
        line = raw[start:]
        self.history.append(line)
        if line[:7].upper() == "AT+CMGS" and self._fire("send"):
            return  # hung or unplugged while the command was arriving: it is lost
        if self.at.echo:
            self._write(
                "".join(f"\r\n{u}\r\n" for u in self._before_echo) + line + self.profile.echo_suffix
            )
            self._before_echo.clear()
        elif self._before_echo:
            self._flush_before_echo()
        reply = self.commands.execute(line)
        self._reply(reply, latency=self._command_latency())

    def _finish_prompt(self, body: str) -> None:
        prompt = self._prompt
        self._prompt = None
        if self.at.echo:
            self._write(body)
        assert prompt is not None
        reply = self.commands.finish_send(prompt, body)
        latency = self._command_latency()
        if reply.final == "OK":
            latency += self.send_latency + float(self.faults.get("slow", {}).get("send_latency", 0))
            if self._fire("submitted"):
                return  # the network has the part; its answer never comes
            if self._part_of_more(body):
                reply.after.append(lambda: self._fire("between_parts"))
        self._reply(reply, latency=latency)

    def _part_of_more(self, body: str) -> bool:
        """Whether the PDU just sent is a part of a longer message, not its last."""
        if not any(w == "between_parts" for w, _, _ in self.armed):
            return False
        try:
            concat = codec.decode("".join(body.split())).concat
        except CodecError:
            return False
        return concat is not None and concat.seq < concat.total

    def _command_latency(self) -> float:
        return self.command_latency + float(self.faults.get("slow", {}).get("command_latency", 0))

    def _reply(self, reply: Reply, latency: float = 0.0) -> None:
        """Send a command's response now, or after ``latency`` with input paused meanwhile."""
        if latency > 0:
            self._busy = True
            epoch = self.boot_epoch

            def later() -> None:
                if epoch != self.boot_epoch:
                    return  # the modem was reset or unplugged meanwhile: the answer is lost
                self._busy = False
                self._emit_reply(reply)
                self._process_input()

            self._after(latency, later)
        else:
            self._emit_reply(reply)

    def _emit_reply(self, reply: Reply) -> None:
        v = self.at.verbose
        out = []
        for block in reply.blocks:
            out.append(
                ("\r\n" + "\r\n".join(block) + "\r\n") if v else "".join(f"{b}\r\n" for b in block)
            )
        if reply.blocks and self._in_response:
            out.extend(f"\r\n{u}\r\n" for u in self._in_response)
            self._in_response.clear()
        if reply.prompt:
            out.append("\r\n> ")
        elif reply.final is not None:
            out.append(f"\r\n{reply.final}\r\n" if v else self._numeric(reply.final))
        self._write("".join(out))
        if reply.prompt:
            self._prompt = reply.prompt
            if self._fire("prompt"):
                return
        for action in reply.after:
            action()
        if self._prompt is None:
            self._flush_deferred()

    @staticmethod
    def _numeric(final: str) -> str:
        codes = {"OK": "0", "ERROR": "4", "NO CARRIER": "3"}
        return codes[final] + "\r" if final in codes else final + "\r\n"

    # ------------------------------------------------------------------------------------------
    # Output: writes with faults, unsolicited result codes

    def _write(self, text: str) -> None:
        ep = self._endpoint
        if ep is None or "hang" in self.faults or not text:
            return
        data = text.encode("latin-1", errors="replace")
        garbage = self.faults.get("garbage")
        if garbage and self.rng.random() < float(garbage["probability"]):
            junk = bytes(
                self.rng.choice((0xFF, 0xFE, 0x00, 0x80, self.rng.randrange(256)))
                for _ in range(self.rng.randint(1, int(garbage["max_bytes"])))
            )
            at = self.rng.randrange(len(data) + 1) if garbage["anywhere"] else 0
            data = data[:at] + junk + data[at:]
        ep.write(data)

    def _line_reserved(self) -> bool:
        return self._busy or self.commands.executing or self._prompt is not None or bool(self._line)

    def urc(self, *lines: str) -> None:
        """Say something unsolicited; held while a command is running, as TS 27.005 mode 2 does."""
        self._urc_text("".join(f"\r\n{line}\r\n" for line in lines))

    def _urc_text(self, text: str) -> None:
        if not text:
            return
        if self._line_reserved():
            self._deferred_urcs.append(text)
        else:
            self._write(text)

    def _urc_with_pdu(self, header: str, pdu: str) -> None:
        """A two-line URC (+CMT, +CDS); ``urc_pdu_gap`` seconds between the lines if set."""
        if self._line_reserved() or self.urc_pdu_gap <= 0:
            self._urc_text(f"\r\n{header}\r\n{pdu}\r\n")
            return
        self._write(f"\r\n{header}\r\n")
        time.sleep(self.urc_pdu_gap)  # the modem itself pauses: that is the quirk simulated
        self._write(f"{pdu}\r\n")

    def _flush_deferred(self) -> None:
        if self._deferred_urcs and not self._line_reserved():
            text = "".join(self._deferred_urcs)
            self._deferred_urcs.clear()
            self._write(text)

    def _huawei_urc(self, line: str) -> None:
        """Huawei habit: a status URC waits a moment and often overtakes the next echo."""
        if not self.at.curc:
            return  # AT^CURC=0 silenced the periodic reports
        if not self.profile.urc_before_echo:
            self.urc(line)
            return
        self._before_echo.append(line)
        self._after(0.2, self._flush_before_echo)

    def _flush_before_echo(self) -> None:
        if self._before_echo:
            lines = list(self._before_echo)
            self._before_echo.clear()
            self.urc(*lines)

    def _set_signal(self, rssi: int) -> None:
        if not (0 <= rssi <= 31 or rssi == 99):
            raise ValueError(f"signal must be 0-31 or 99, not {rssi}")
        self.signal = rssi
        if self.profile.signal_urc and self.plugged:
            self._huawei_urc(self.profile.signal_urc.format(rssi=rssi))

    def _chatter(self, epoch: int) -> None:
        if epoch != self.boot_epoch or not self.chatter_interval:
            return
        for line in self.profile.chatter_urcs:
            self._huawei_urc(line.format(rssi=self.signal))
        self._after(self.chatter_interval, lambda: self._chatter(epoch))

    # ------------------------------------------------------------------------------------------
    # Power: plug, boot, reset, unplug

    def _plug(self) -> None:
        if self._endpoint is not None:
            return
        if self._link is not None:
            self._endpoint = PtyEndpoint(self._link, avoid=self._last_device)
        else:
            assert self._device_path is not None
            self._endpoint = DeviceEndpoint(self._device_path, self._baudrate)
        self._last_device = self._endpoint.device
        self._boot()
        self._plugged.set()  # after the boot URCs went out, for whoever waits to open it

    def _unplug(self, duration: float | None) -> None:
        # State first, then the close a client can see: whoever notices the EOF finds us gone.
        ep, self._endpoint = self._endpoint, None
        self._plugged.clear()
        if ep is not None:
            ep.close()
        self._power_down()
        if duration is not None:
            epoch = self.boot_epoch

            def back() -> None:
                if epoch == self.boot_epoch and "unplug" in self.faults:
                    self._clear_fault("unplug")

            self._after(float(duration), back)

    def _power_down(self) -> None:
        self.boot_epoch += 1
        self._powered = False
        self._line.clear()
        self._backlog.clear()
        self._busy = False
        self._prompt = None
        self._deferred_urcs.clear()
        self._before_echo.clear()
        self.sms_ready = False
        if self._awaiting_ack is not None:
            self._held.appendleft(self._awaiting_ack)  # the network will try again
            self._awaiting_ack = None
        self._reg_reported = None

    def _boot(self) -> None:
        """Power-on: fresh AT settings, boot URCs, SIM check, SMS ready after boot_time."""
        self.boot_epoch += 1
        epoch = self.boot_epoch
        self.at = AtSettings.boot(self.profile)
        self._powered = True
        self.cfun = 1
        self.sms_ready = False
        self._memfull_announced = False
        if ("pin" in self.faults or self.pin is not None) and self.sim_state == "READY":
            self.sim_state = "SIM PIN"  # a locked SIM asks again at every power-on
        self.urc(*self.profile.boot_urcs)
        if self.sim_state == "READY":
            self.on_sim_ready(epoch)
        else:
            self.urc(f"+CPIN: {self.sim_state}")
        self.update_registration()
        if self.chatter_interval and self.profile.chatter_urcs:
            self._after(self.chatter_interval, lambda: self._chatter(epoch))

    def on_sim_ready(self, epoch: int) -> None:
        """The SIM is ready (at boot, or once its PIN was entered in boot ``epoch``): say so,
        and the SMS service follows after ``boot_time``. Modem thread only."""
        self.urc(*self.profile.sim_ready_urcs)

        def ready() -> None:
            if epoch == self.boot_epoch and self.sim_state == "READY":
                self.sms_ready = True
                self.urc(*self.profile.sms_ready_urcs)
                self.retry_held()

        if self.boot_time > 0:
            self._after(self.boot_time, ready)
        else:
            ready()

    def reset(self, full: bool) -> None:
        """AT+CFUN=1,1 (modem thread): the modem restarts; USB families re-enumerate.

        It stops reading at once, and goes away RESET_GRACE seconds after its OK (a real one
        takes a moment too), so a client that reads promptly sees the OK before the EOF.
        """
        self._power_down()
        epoch = self.boot_epoch

        def go() -> None:
            if epoch != self.boot_epoch:
                return
            if self.profile.reset_reenumerates and self._link is not None:
                self._unplug(None)
                self._after(self.reset_time, self._plug)
            else:
                self._after(self.reset_time, self._boot)

        self._after(RESET_GRACE, go)

    # ------------------------------------------------------------------------------------------
    # Faults

    def _fire(self, moment: str) -> bool:
        """Begin the faults armed for this moment (modem thread). True when the modem is then
        hung or gone, so the caller stops handling the command."""
        fired = [(k, p) for w, k, p in self.armed if w == moment]
        if not fired:
            return False
        self.armed = [a for a in self.armed if a[0] != moment]
        for kind, params in fired:
            self._apply_fault(kind, params)
        self._faults_changed.notify_all()
        return "hang" in self.faults or self._endpoint is None

    def _apply_fault(self, kind: str, params: dict[str, Any]) -> None:
        self.faults[kind] = params
        log.info("modem %s: fault %s %s", self.imei, kind, params)
        if kind == "hang":
            self._line.clear()
            self._backlog.clear()
            self._prompt = None  # a hung modem forgets the message it was being given
            if params["duration"] is not None:
                self._after(float(params["duration"]), lambda: self._clear_fault("hang"))
        elif kind == "unplug":
            self._unplug(params["duration"])
        elif kind == "cms_error":
            self._cms_matches = 0
        elif kind == "pin":
            if params["pin"] is not None:
                self.pin = str(params["pin"])
            elif self.pin is None:
                self.pin = "1234"
            self.sim_state = "SIM PIN"
            self.pin_tries = 3
            self.sms_ready = False
            self.urc("+CPIN: SIM PIN")
        self.update_registration()

    def _clear_fault(self, kind: str | None) -> None:
        self.armed = [a for a in self.armed if kind is not None and a[1] != kind]
        kinds = list(self.faults) if kind is None else [kind]
        for k in kinds:
            params = self.faults.pop(k, None)
            if params is None:
                continue
            log.info("modem %s: fault %s cleared", self.imei, k)
            if k == "unplug":
                self._plug()
            elif k == "pin" and self.sim_state != "READY":
                self.sim_state = "READY"
                self.on_sim_ready(self.boot_epoch)
            elif k == "storage_full":
                self._memfull_announced = False
        self.update_registration()
        self.retry_held()
        self._faults_changed.notify_all()

    # ------------------------------------------------------------------------------------------
    # Network registration

    def registration_status(self) -> int:
        """<stat> of +CREG: 1 registered, 2 searching, 0 not registered (no SIM or radio)."""
        if self._endpoint is None or self.cfun != 1 or self.sim_state != "READY":
            return 0
        if "no_network" in self.faults:
            return 2
        return 1

    def update_registration(self) -> None:
        """Report a change of registration as +CREG/+CGREG/+CEREG, as each is enabled. Modem
        thread only."""
        stat = self.registration_status()
        if stat == self._reg_reported:
            return
        self._reg_reported = stat
        for name, n in (
            ("+CREG", self.at.creg),
            ("+CGREG", self.at.cgreg),
            ("+CEREG", self.at.cereg),
        ):
            if n:
                self.urc(f"{name}: {self.commands.registration_fields(stat, n, unsolicited=True)}")

    # ------------------------------------------------------------------------------------------
    # Incoming messages and status reports

    def _can_receive(self) -> bool:
        return (
            self._endpoint is not None
            and "hang" not in self.faults
            and self.registration_status() == 1
            and self.sms_ready
            and self._awaiting_ack is None
        )

    def _accept(self, item: Delivery) -> None:
        self._held.append(item)
        self.retry_held()

    def retry_held(self) -> None:
        """Deliver what waits (SMS service, storage or +CNMI not ready). Modem thread only."""
        while self._held and self._can_receive():
            item = self._held[0]
            if not self._take(item):
                return
            self._held.popleft()

    def _take(self, item: Delivery) -> bool:
        """Route one incoming item per AT+CNMI; False when it must wait (storage full)."""
        mt, ds = self.at.cnmi[1], self.at.cnmi[3]
        pdu_len = StoredPdu(item.pdu, REC_UNREAD, item.kind).tpdu_length
        if item.kind == "deliver" and mt in (2, 3):
            if self.at.cmgf == 1:
                header, body = self.commands.text_mode_cmt(item.pdu)
                self._urc_text(f"\r\n{header}\r\n{body}\r\n")
            else:
                self._urc_with_pdu(f"+CMT: {self.profile.cmt_alpha},{pdu_len}", item.pdu)
            self._expect_ack(item)
        elif item.kind == "status-report" and ds == 1:
            if self.at.cmgf == 1:
                self.urc(self.commands.text_mode_cds(item.pdu))
            else:
                self._urc_with_pdu(f"+CDS: {pdu_len}", item.pdu)
            self._expect_ack(item)
        elif item.kind == "status-report" and ds == 0:
            self.dropped_status_reports += 1
            log.info("modem %s: status report dropped (AT+CNMI ds=0)", self.imei)
        else:
            mem = self.at.cpms[2]
            view = self.storage.view(mem)
            index = None
            if "storage_full" not in self.faults:
                index = view.add(StoredPdu(item.pdu, REC_UNREAD, item.kind))
            if index is None:
                if not self._memfull_announced:
                    self._memfull_announced = True
                    log.info(
                        "modem %s: storage %s full; the network holds messages", self.imei, mem
                    )
                    if self.profile.memory_full_urc:
                        self.urc(self.profile.memory_full_urc)
                return False
            if item.kind == "status-report":
                self.urc(f'+CDSI: "{mem}",{index}')
            elif mt in (1, 2, 3):
                self.urc(f'+CMTI: "{mem}",{index}')
        if item.on_delivered is not None:
            item.on_delivered()
        return True

    def _expect_ack(self, item: Delivery) -> None:
        """With AT+CSMS=1 a routed +CMT/+CDS must be acknowledged with AT+CNMA in time."""
        if self.at.csms != 1:
            return
        self._awaiting_ack = item
        self._ack_epoch += 1
        epoch = self._ack_epoch
        delivered = item.on_delivered
        item.on_delivered = None  # reported once, even if the network has to try again

        def expire() -> None:
            if self._awaiting_ack is item and self._ack_epoch == epoch:
                log.warning(
                    "modem %s: no AT+CNMA within %ss; the network retries",
                    self.imei,
                    self.cnma_timeout,
                )
                self._awaiting_ack = None
                self._held.appendleft(item)
                self.retry_held()

        self._after(self.cnma_timeout, expire)
        if delivered is not None:
            delivered()

    def acknowledge(self, ok: bool) -> bool:
        """AT+CNMA (modem thread): False when nothing waits for an acknowledgement."""
        item = self._awaiting_ack
        if item is None:
            return False
        self._awaiting_ack = None
        if not ok:
            self._held.appendleft(item)
            self._after(1.0, self.retry_held)
        else:
            self._after(0, self.retry_held)
        return True

    def storage_changed(self) -> None:
        """After a delete (modem thread): room again, so held messages can come in."""
        self._memfull_announced = False
        self._after(0, self.retry_held)

    def consume_cms_fault(self, command: str) -> str | None:
        """The +CMS ERROR line a cms_error fault imposes on this command, if any."""
        fault = self.faults.get("cms_error")
        if not fault or command not in fault["commands"]:
            return None
        self._cms_matches += 1
        if self._cms_matches <= int(fault["skip"]):
            return None
        if fault["count"] is not None:
            if int(fault["count"]) <= 0:
                return None
            fault["count"] = int(fault["count"]) - 1
        if self.rng.random() >= float(fault["probability"]):
            return None
        code = fault["code"]
        return "+CMS ERROR" if code is None or code == "" else f"+CMS ERROR: {code}"

    def next_reference(self) -> int:
        """The TP-MR of the next SMS-SUBMIT (modem thread)."""
        mr = self._next_mr
        self._next_mr = (mr + 1) % 256
        return mr
