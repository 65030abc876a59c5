"""The Modem: one AT port of one physical modem, started up, queried and used to send and receive.

Built on :class:`~gateway.modem.at.ATChannel`. Start-up queries what the modem supports before
using it and falls back (echo off, verbose errors, SIM PIN entered at most once, PDU mode, message
storage, new-message indications preferring direct status reports). Family quirks come from
:mod:`gateway.modem.quirks` and are commented where they are handled.

Unsolicited codes become typed events (:mod:`gateway.modem.urc`) delivered on the Modem's own
dispatch thread, never the serial reader, so a handler may call the Modem back (read a message it
was told about). The Modem never deletes a message on its own: the layer above commits it first,
then calls :meth:`Modem.delete`.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from . import pdu as pdumod
from . import text as smstext
from .at import (
    ATChannel,
    CmeError,
    CmsError,
    CommandError,
    CommandTimeout,
    PortGone,
    Response,
    SerialLike,
    Urc,
    split_args,
)
from .errors import CodecError
from .quirks import Quirks, detect_family, quirks_for
from .urc import (
    DirectMessage,
    ModemEvent,
    ModemGone,
    ModemRestarted,
    Registration,
    Signal,
    SmsReady,
    StatusReport,
    UssdReceived,
    parse_registration,
    parse_urc,
    signal_from_rssi,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Settings, errors and values


@dataclass(frozen=True)
class ModemSettings:
    """How to drive one modem. Times are seconds.

    ``pin`` is entered at most once per Modem; after a rejection it is never tried again (three
    wrong PINs lock the SIM into PUK). ``storage`` forces a message memory (``"SM"``, ``"ME"``,
    ``"MT"``) instead of the family's preference. ``direct_messages`` routes new messages straight
    to us (``+CMT``) instead of storing them (``+CMTI``); the Modem then asks for phase 2+
    (``AT+CSMS=1``) so that each is acknowledged only after the handler returned.
    ``family`` forces a family (see :data:`gateway.modem.quirks.FAMILIES`) instead of detecting it.
    """

    baudrate: int = 115200
    rtscts: bool = False
    pin: str | None = None
    storage: str | None = None
    direct_messages: bool = False
    family: str | None = None
    command_timeout: float = 10.0
    prompt_timeout: float = 10.0
    send_timeout: float = 60.0
    ussd_timeout: float = 30.0
    startup_timeout: float = 30.0
    sms_ready_timeout: float = 45.0
    sim_busy_retries: int = 5
    retry_delay: float = 1.0
    reset_timeout: float = 90.0


class ModemError(Exception):
    """Base of the Modem's own errors; names the port."""

    def __init__(self, port: str, why: str) -> None:
        self.port = port
        self.why = why
        super().__init__(f"{port}: {why}")


class SimError(ModemError):
    """The SIM cannot be used (not inserted, failed, locked in a way we do not unlock)."""


class SimPinRequired(SimError):
    """The SIM asks for a PIN and none is configured."""


class SimPinRejected(SimError):
    """The configured PIN was refused. It is not tried again: fix the configuration."""


class SimPukRequired(SimError):
    """The SIM is PUK-locked (too many wrong PINs). Unlock it in a phone; we never guess."""


class SimBusy(SimError):
    """The SIM stayed busy (``+CME ERROR: 14``) through every bounded retry."""


class SmsNotReady(ModemError):
    """SMS commands kept failing: the modem never reported SMS ready in time."""


class UnexpectedAnswer(ModemError):
    """The modem answered OK but not in the shape the command promises."""


@dataclass(frozen=True)
class Identity:
    """Who the modem and its SIM are. Fields the modem would not tell are None."""

    family: str
    manufacturer: str | None
    model: str | None
    firmware: str | None
    imei: str | None
    imsi: str | None
    iccid: str | None
    number: str | None


@dataclass(frozen=True)
class StoredMessage:
    """One entry of the modem's message memory, raw: the PDU is decoded by the caller.

    ``status`` is the 27.005 PDU-mode ``<stat>`` (0 received unread, 1 received read, 2 stored
    unsent, 3 stored sent) or None when the modem left it out; ``length`` is the TPDU length.
    """

    storage: str
    index: int
    status: int | None
    length: int | None
    pdu: str | None

    def decode(self) -> pdumod.Deliver | pdumod.Submit | pdumod.StatusReport:
        """Decode the PDU; raises :class:`~gateway.modem.errors.CodecError` when it is corrupt."""
        if not self.pdu:
            raise CodecError(f"{self.storage} index {self.index}", "the modem gave no PDU line")
        # A PDU whose size equals <length> has no SMSC field (a few firmwares store it so).
        has_smsc = not (self.length is not None and len(self.pdu) == 2 * self.length)
        return pdumod.decode(self.pdu, smsc=has_smsc)


@dataclass(frozen=True)
class Undecodable:
    """A stored entry whose PDU could not be decoded. Keep ``stored.pdu`` as raw data and report
    it; never delete it unread."""

    stored: StoredMessage
    error: str


def decode_stored(
    msg: StoredMessage,
) -> pdumod.Deliver | pdumod.Submit | pdumod.StatusReport | Undecodable:
    """Decode a stored entry; a corrupt PDU gives :class:`Undecodable`, never an exception."""
    try:
        return msg.decode()
    except CodecError as exc:
        log.warning("%s index %d: undecodable PDU kept raw: %s", msg.storage, msg.index, exc)
        return Undecodable(msg, str(exc))


@dataclass(frozen=True)
class MemoryUsage:
    """One message memory as ``AT+CPMS?`` shows it."""

    storage: str
    used: int
    total: int

    @property
    def full(self) -> bool:
        return self.total > 0 and self.used >= self.total


@dataclass(frozen=True)
class StorageUsage:
    """The three memories of ``AT+CPMS``: read/delete, write/send, receive."""

    read: MemoryUsage
    write: MemoryUsage | None
    receive: MemoryUsage | None

    @property
    def full(self) -> bool:
        """True when new messages cannot be stored (SIM800 says nothing when this happens)."""
        target = self.receive or self.read
        return target.full


@dataclass(frozen=True)
class SentPart:
    """One part that the modem accepted, with the TP-MR it gave it."""

    seq: int
    total: int
    message_reference: int


class PartialSendError(ModemError):
    """Sending a multipart message stopped at ``failed`` (a SubmitPart); ``sent`` lists the parts
    that went out before, with their TP-MRs. ``__cause__`` is the modem's error."""

    def __init__(
        self, port: str, sent: list[SentPart], failed: pdumod.SubmitPart, cause: Exception
    ) -> None:
        self.sent = sent
        self.failed = failed
        self.cause = cause
        done = ", ".join(f"part {p.seq} (TP-MR {p.message_reference})" for p in sent) or "none"
        super().__init__(
            port, f"part {failed.seq} of {failed.total} failed ({cause}); sent before it: {done}"
        )


@dataclass(frozen=True)
class UssdReply:
    """The network's answer to a USSD request: ``status`` 0 done, 1 more input expected, 2 ended
    by the network, 4 not supported, 5 timed out; ``text`` decoded."""

    status: int | None
    text: str | None
    dcs: int | None


_STOP = object()


# ---------------------------------------------------------------------------------------------
# The Modem


class Modem:
    """One AT port of one physical modem. Thread-safe: every public method may be called from
    any thread; commands are serialised on the port.

    ``on_event`` receives each :data:`~gateway.modem.urc.ModemEvent` on the Modem's dispatch
    thread; without it events go to :attr:`events`. With a handler, a routed message (``+CMT``,
    ``+CDS``) under ``AT+CSMS=1`` is acknowledged after the handler returns (negatively if it
    raised); with the queue it is acknowledged as soon as it is queued. ``serial_factory``
    replaces pyserial (tests).
    """

    def __init__(
        self,
        port: str,
        settings: ModemSettings | None = None,
        *,
        on_event: Callable[[ModemEvent], None] | None = None,
        serial_factory: Callable[..., SerialLike] | None = None,
    ) -> None:
        self.port = port
        self.settings = settings or ModemSettings()
        self.events: queue.Queue[ModemEvent] = queue.Queue()
        self._on_event = on_event
        self._factory = serial_factory
        self.family = self.settings.family or "generic"
        self.quirks: Quirks = quirks_for(self.family)
        self.manufacturer: str | None = None
        self.model: str | None = None
        self.storage: str | None = None  # the memory selected for reading and deleting
        self.status_report_routing = "none"  # "direct" (+CDS), "stored" (+CDSI) or "none"
        self.message_service: int | None = None  # AT+CSMS <service>: 1 means +CNMA is needed
        self._channel: ATChannel | None = None
        self._generation = 0
        self._urcs: queue.Queue[Any] = queue.Queue()
        self._dispatcher: threading.Thread | None = None
        self._op_lock = threading.RLock()  # compound operations (select memory + read, reset)
        self._closing = threading.Event()
        self._sms_ready = threading.Event()
        self._resetting = False
        self._started = False
        self._gone: PortGone | None = None
        self._pin_rejected = False
        self._ussd_waiting = False
        self._ussd_replies: queue.Queue[UssdReceived] = queue.Queue()

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the port and run the start-up sequence. Raises :class:`PortGone`,
        :class:`SimError` and its kin, :class:`SmsNotReady` or an AT error; the port is closed
        again on failure."""
        if self._channel is not None:
            self._channel.close()  # opened before: never two channels on one port
        self._closing.clear()
        self._gone = None
        self._sms_ready.clear()
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(
                target=self._dispatch_loop, name=f"modem-events {self.port}", daemon=True
            )
            self._dispatcher.start()
        try:
            self._open_channel()
            self._startup(time.monotonic() + self.settings.startup_timeout)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the port and stop the dispatch thread. Safe to call twice."""
        self._closing.set()
        self._started = False
        if self._channel is not None:
            self._channel.close()
        dispatcher = self._dispatcher
        self._dispatcher = None
        if dispatcher is not None:
            self._urcs.put(_STOP)
            if dispatcher is not threading.current_thread():
                dispatcher.join(timeout=5)

    def __enter__(self) -> Modem:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        """True after a successful :meth:`open`, until :meth:`close` or the port dies."""
        return self._started and self._gone is None

    def _open_channel(self) -> None:
        self._generation += 1
        gen = self._generation
        self._channel = ATChannel(
            self.port,
            baudrate=self.settings.baudrate,
            rtscts=self.settings.rtscts,
            timeout=self.settings.command_timeout,
            on_urc=lambda item: self._urcs.put((gen, item)),
            serial_factory=self._factory,
        )
        self._channel.open()
        # The modem may be where a killed process left it: at the "> " prompt, or owing the
        # answer to that process's last command.
        self._channel.take_over()

    @property
    def channel(self) -> ATChannel:
        """The AT channel in use (raises :class:`PortGone` when there is none)."""
        if self._channel is None:
            raise PortGone(self.port, None, "the modem is not open")
        return self._channel

    def command(self, command: str, *, timeout: float | None = None) -> Response:
        """Send one raw AT command (diagnostics, the field CLI). Errors as the channel's."""
        return self.channel.command(command, timeout=timeout)

    # -- start-up -----------------------------------------------------------------------------

    def _startup(self, deadline: float) -> None:
        with self._op_lock:
            self._wait_for_at(deadline)
            # Echo off; the channel copes with echo either way, and with its return after a reset.
            self._try("ATE0")
            # Verbose errors (+CME ERROR: SIM busy) are easier to log; numeric as a fallback.
            if not self._try("AT+CMEE=2"):
                self._try("AT+CMEE=1")
            self._detect_family()
            self._unlock_sim()
            self._configure_sms()
            # Long alphanumeric operator names in AT+COPS?.
            self._try("AT+COPS=3,0")
            self._started = True
        log.info(
            "%s: ready (%s %s, storage %s, status reports %s)",
            self.port,
            self.family,
            self.model or "?",
            self.storage,
            self.status_report_routing,
        )

    def _try(self, command: str, timeout: float | None = None) -> Response | None:
        """Run a command whose failure is acceptable (a fallback follows); log the failure."""
        try:
            return self.channel.command(command, timeout=timeout)
        except CommandError as exc:
            log.info("%s: %s not supported here (%s)", self.port, command, exc.final)
            return None

    def _wait_for_at(self, deadline: float) -> None:
        """Poll with ``AT`` until the modem answers (it may still be booting)."""
        # A modem that is up answers AT in milliseconds; a booting one ignores it.
        poll = min(0.5, self.settings.command_timeout)
        while True:
            try:
                self.channel.command("AT", timeout=poll)
                return
            except CommandError:
                return  # it answers, even if oddly
            except CommandTimeout as exc:
                if self._closing.is_set():
                    # close() from another thread (shutdown) must not wait for the deadline.
                    raise PortGone(self.port, "AT", "closed while waiting for the modem") from exc
                if time.monotonic() >= deadline:
                    raise CommandTimeout(
                        self.port, "AT", "the modem does not answer AT commands"
                    ) from exc
                # A fresh channel: the booting modem owes us nothing, start clean.
                self.channel.close()
                self._open_channel()

    def _detect_family(self) -> None:
        self.manufacturer = self._ident_value("AT+CGMI", "+CGMI")
        self.model = self._ident_value("AT+CGMM", "+CGMM")
        if self.settings.family is None:
            self.family = detect_family(self.manufacturer or "", self.model or "")
        self.quirks = quirks_for(self.family)

    def _retry_busy(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying a bounded number of times with backoff while the SIM is busy
        (``+CME ERROR: 14`` / ``+CMS ERROR: 314``), typical for seconds after boot."""
        delay = self.settings.retry_delay
        for attempt in range(self.settings.sim_busy_retries + 1):
            try:
                return fn()
            except (CmeError, CmsError) as exc:
                busy = exc.code in (14, 314)
                if not busy or attempt >= self.settings.sim_busy_retries:
                    if busy:
                        raise SimBusy(
                            self.port,
                            f"SIM still busy after {attempt + 1} tries of {what}",
                        ) from exc
                    raise
                log.info("%s: SIM busy during %s; retry %d", self.port, what, attempt + 1)
            if self._closing.wait(delay):
                raise PortGone(self.port, what, "the modem is being closed")
            delay = min(delay * 2, self.settings.retry_delay * 8)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sim_state(self) -> str:
        def query() -> str:
            try:
                resp = self.channel.command("AT+CPIN?")
            except CmeError as exc:
                if exc.code == 10:
                    raise SimError(self.port, "no SIM card inserted") from exc
                if exc.code == 13:
                    raise SimError(self.port, "SIM failure (bad contact or dead card)") from exc
                raise
            values = resp.prefixed("+CPIN")
            if not values:
                raise UnexpectedAnswer(self.port, f"AT+CPIN? gave no +CPIN line: {resp.lines}")
            return values[0].strip().strip('"').upper()

        return self._retry_busy("AT+CPIN?", query)

    def _unlock_sim(self) -> None:
        state = self._sim_state()
        if state == "READY":
            return
        if state == "SIM PIN":
            if self._pin_rejected:
                raise SimPinRejected(
                    self.port, "the configured PIN was refused before; not trying it again"
                )
            pin = self.settings.pin
            if not pin:
                raise SimPinRequired(self.port, "the SIM asks for a PIN and none is configured")
            try:
                self.channel.command(f'AT+CPIN="{pin}"')
            except (CommandError, CommandTimeout) as exc:
                # Never enter it again, whatever the error: a second wrong PIN brings the SIM
                # closer to PUK, and a busy/timeout answer may still have counted as a try.
                self._pin_rejected = True
                raise SimPinRejected(
                    self.port, f"the SIM refused the configured PIN ({exc}); fix it in the config"
                ) from exc
            # The SIM takes a moment to become READY (it answers busy meanwhile).
            for _ in range(self.settings.sim_busy_retries + 1):
                state = self._sim_state()
                if state == "READY":
                    return
                if state != "SIM PIN":
                    break
                if self._closing.wait(self.settings.retry_delay):
                    raise PortGone(self.port, "AT+CPIN?", "the modem is being closed")
        if state == "SIM PUK":
            raise SimPukRequired(
                self.port, "the SIM needs its PUK (too many wrong PINs); unlock it in a phone"
            )
        raise SimError(self.port, f"SIM state is {state!r}; the gateway cannot unlock it")

    def _configure_sms(self) -> None:
        # A modem may boot in text mode (SIM800 with a saved profile), and SIM800/Quectel answer
        # ERROR to SMS commands until "SMS Ready" / "+QIND: SMS DONE": wait for it, bounded.
        # AT+CMGF is a local setting that SIM800 accepts early; AT+CPMS? needs the SMS service,
        # so it is the real gate before the storage fallbacks (which would take ERROR as "no").
        self._until_sms_ready("AT+CMGF=0")
        self._until_sms_ready("AT+CPMS?")
        self._select_storage()
        self._configure_message_service()
        self._configure_indications()

    def _until_sms_ready(self, command: str) -> Response:
        deadline = time.monotonic() + self.settings.sms_ready_timeout
        delay = self.settings.retry_delay
        while True:
            try:
                return self._retry_busy(command, lambda: self.channel.command(command))
            except (CommandError, SimBusy) as exc:
                if time.monotonic() >= deadline:
                    raise SmsNotReady(
                        self.port,
                        f"{command} still fails ({exc}) {self.settings.sms_ready_timeout:g} s "
                        "after start-up; the modem never reported SMS ready",
                    ) from exc
                log.info("%s: %s failed (%s); waiting for SMS ready", self.port, command, exc)
            # Wakes at once when SMS Ready arrives; otherwise retry after the delay anyway.
            self._sms_ready.wait(delay)
            if self._closing.is_set():
                raise PortGone(self.port, command, "the modem is being closed")
            delay = min(delay * 2, self.settings.retry_delay * 8)

    def _select_storage(self) -> None:
        supported: list[str] | None = None
        resp = self._try("AT+CPMS=?")
        if resp is not None and resp.prefixed("+CPMS"):
            groups = re.findall(r"\(([^)]*)\)", resp.prefixed("+CPMS")[0])
            if groups:
                supported = [m.strip().strip('"').upper() for m in groups[0].split(",")]
        wanted = list(self.quirks.storage_preference)
        if self.settings.storage:
            choice = self.settings.storage.upper()
            if supported is not None and choice not in supported:
                log.warning(
                    "%s: configured storage %s is not offered (%s); using the family's choice",
                    self.port,
                    choice,
                    ",".join(supported),
                )
            else:
                wanted = [choice]
        for mem in wanted:
            if supported is not None and mem not in supported:
                continue
            if self._try(f'AT+CPMS="{mem}","{mem}","{mem}"') is not None:
                self.storage = mem
                return
            # Some modems refuse to store received messages in a memory (<mem3>); read there.
            if self._try(f'AT+CPMS="{mem}","{mem}"') is not None:
                self.storage = mem
                return
        # Keep whatever the modem uses now, and learn what it is.
        usage = self.storage_usage()
        self.storage = usage.read.storage
        log.warning("%s: kept the modem's message storage %s", self.port, self.storage)

    def _configure_message_service(self) -> None:
        if self.settings.direct_messages:
            # Phase 2+: the modem waits for our AT+CNMA before acknowledging to the network, so
            # a message is acknowledged only once the handler has stored it.
            self._try("AT+CSMS=1")
        resp = self._try("AT+CSMS?")
        values = resp.prefixed("+CSMS") if resp else []
        fields = split_args(values[0]) if values else []
        self.message_service = int(fields[0]) if fields and fields[0].isdigit() else None

    def _configure_indications(self) -> None:
        mt = 2 if self.settings.direct_messages else 1
        allowed = self._cnmi_ranges()
        # Prefer status reports routed directly (+CDS, ds=1); fall back to stored (+CDSI, ds=2).
        # mode 2 buffers codes while the link is busy instead of dropping them (mode 1 drops).
        candidates = [(mode, mt, 0, ds, 0) for ds in (1, 2) for mode in (2, 1)] + [
            (2, mt, 0, 0, 0),
            (1, mt, 0, 0, 0),
        ]
        for cand in candidates:
            if allowed and not all(v in allowed[i] for i, v in enumerate(cand) if i < len(allowed)):
                continue
            if self._try("AT+CNMI=" + ",".join(str(v) for v in cand)) is not None:
                self.status_report_routing = {1: "direct", 2: "stored"}.get(cand[3], "none")
                return
        raise ModemError(self.port, "the modem accepts no AT+CNMI setting for new messages")

    def _cnmi_ranges(self) -> list[set[int]] | None:
        resp = self._try("AT+CNMI=?")
        if resp is None or not resp.prefixed("+CNMI"):
            return None
        ranges = []
        for group in re.findall(r"\(([^)]*)\)", resp.prefixed("+CNMI")[0]):
            values: set[int] = set()
            for part in group.split(","):
                part = part.strip()
                if "-" in part:
                    lo, _, hi = part.partition("-")
                    if lo.strip().isdigit() and hi.strip().isdigit():
                        values.update(range(int(lo), int(hi) + 1))
                elif part.isdigit():
                    values.add(int(part))
            ranges.append(values)
        return ranges or None

    # -- identity and health ------------------------------------------------------------------

    def _ident_value(self, command: str, prefix: str) -> str | None:
        try:
            resp = self._retry_busy(command, lambda: self.channel.command(command))
        except (CommandError, SimBusy) as exc:
            log.info("%s: %s gave no answer (%s)", self.port, command, exc)
            return None
        for line in resp.lines:
            value = line
            if value.upper().startswith(prefix.upper() + ":"):
                value = value[len(prefix) + 1 :]
            value = value.strip().strip('"').strip()
            # SIM800 prefixes its firmware with "Revision:".
            if value.lower().startswith("revision:"):
                value = value[len("revision:") :].strip()
            if value:
                return value
        return None

    def identify(self) -> Identity:
        """Manufacturer, model, firmware, IMEI, IMSI, ICCID and the SIM's own number."""
        with self._op_lock:
            imei_raw = self._ident_value("AT+CGSN", "+CGSN")
            imsi_raw = self._ident_value("AT+CIMI", "+CIMI")
            m_imei = re.search(r"\d{14,17}", imei_raw or "")
            m_imsi = re.search(r"\d{6,15}", imsi_raw or "")
            return Identity(
                family=self.family,
                manufacturer=self.manufacturer,
                model=self.model,
                firmware=self._ident_value("AT+CGMR", "+CGMR"),
                imei=m_imei.group(0) if m_imei else None,
                imsi=m_imsi.group(0) if m_imsi else None,
                iccid=self.iccid(),
                number=self.own_number(),
            )

    def iccid(self) -> str | None:
        """The SIM's ICCID, through the family's command or, failing that, EF_ICCID itself."""
        for command, prefix in self.quirks.iccid_commands:
            try:
                resp = self._retry_busy(command, lambda c=command: self.channel.command(c))
            except (CommandError, SimBusy) as exc:
                log.debug("%s: %s failed (%s)", self.port, command, exc)
                continue
            for line in resp.lines:
                value = parse_iccid(line, prefix)
                if value:
                    return value
        return None

    def own_number(self) -> str | None:
        """The number the SIM knows for itself (``AT+CNUM``); many SIMs leave it empty."""
        try:
            resp = self.channel.command("AT+CNUM")
        except CommandError:
            return None
        for value in resp.prefixed("+CNUM"):
            fields = split_args(value)
            if len(fields) > 1 and fields[1]:
                return fields[1]
        return None

    def signal(self) -> Signal:
        """``AT+CSQ`` as raw value, dBm and 0-4 bars (99: unknown, no bars)."""
        resp = self.channel.command("AT+CSQ")
        values = resp.prefixed("+CSQ")
        if not values:
            raise UnexpectedAnswer(self.port, f"AT+CSQ gave no +CSQ line: {resp.lines}")
        fields = split_args(values[0])
        try:
            rssi = int(fields[0])
            ber = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
        except ValueError as exc:
            raise UnexpectedAnswer(self.port, f"AT+CSQ answer {values[0]!r}") from exc
        return signal_from_rssi(rssi, ber)

    def registrations(self) -> list[Registration]:
        """Registration in each domain the modem reports (CS, PS, EPS); unsupported are left
        out (2G modems have no ``+CEREG``)."""
        out = []
        for prefix in ("+CREG", "+CGREG", "+CEREG"):
            try:
                resp = self.channel.command(f"AT{prefix}?")
            except CommandError:
                continue
            for value in resp.prefixed(prefix):
                try:
                    out.append(parse_registration(prefix, value, solicited=True))
                except ValueError as exc:
                    log.warning("%s: %s", self.port, exc)
        return out

    def registration(self) -> Registration:
        """The registration that matters for SMS: CS, or EPS/PS when CS is not registered
        (an LTE modem may send SMS over SGs while CREG says nothing useful)."""
        regs = self.registrations()
        if not regs:
            raise UnexpectedAnswer(self.port, "no registration status from CREG/CGREG/CEREG")
        for reg in regs:
            if reg.registered:
                return reg
        return regs[0]

    def operator(self) -> str | None:
        """The network's name (``AT+COPS?``), None when not registered."""
        resp = self.channel.command("AT+COPS?")
        for value in resp.prefixed("+COPS"):
            fields = split_args(value)
            if len(fields) > 2 and fields[2]:
                return fields[2]
        return None

    def ping(self) -> None:
        """A heartbeat: ``AT`` must answer (raises CommandTimeout or PortGone otherwise)."""
        self.channel.command("AT", timeout=min(5.0, self.settings.command_timeout))

    # -- sending ------------------------------------------------------------------------------

    def send_pdu(self, pdu_hex: str, length: int) -> int:
        """Send one SMS-SUBMIT PDU (hex with its SMSC field; ``length`` counts the TPDU) and
        return the TP-MR of ``+CMGS: <mr>``. Never retried here: a retry could send it twice."""
        if not re.fullmatch(r"[0-9A-Fa-f]+", pdu_hex or "") or len(pdu_hex) % 2:
            raise ValueError(f"{self.port}: the PDU is not an even-length hex string")
        if not 0 < length <= 176:
            raise ValueError(f"{self.port}: TPDU length {length} is outside 1..176")
        resp = self.channel.send_with_prompt(
            f"AT+CMGS={length}",
            pdu_hex.upper(),
            prompt_timeout=self.settings.prompt_timeout,
            timeout=self.settings.send_timeout,
        )
        values = resp.prefixed("+CMGS")
        fields = split_args(values[0]) if values else []
        if not fields or not fields[0].isdigit():
            raise UnexpectedAnswer(self.port, f"AT+CMGS answered OK without a TP-MR: {resp.lines}")
        return int(fields[0])

    def send_parts(self, parts: Sequence[pdumod.SubmitPart]) -> list[SentPart]:
        """Send every part in order. If one fails, raise :class:`PartialSendError` naming the
        parts that went out (with TP-MRs) and the one that failed; later parts are not sent."""
        sent: list[SentPart] = []
        for part in parts:
            try:
                mr = self.send_pdu(part.pdu, part.length)
            except (CommandError, CommandTimeout, PortGone, UnexpectedAnswer) as exc:
                raise PartialSendError(self.port, sent, part, exc) from exc
            sent.append(SentPart(part.seq, part.total, mr))
        return sent

    def send_text(
        self,
        number: str,
        text: str,
        *,
        status_report: bool,
        **encode_options: Any,
    ) -> list[SentPart]:
        """Encode ``text`` for ``number`` and send all parts. ``status_report`` has no default
        on purpose: it comes from configuration (operators may bill for reports)."""
        parts = pdumod.encode_submit(number, text, status_report=status_report, **encode_options)
        return self.send_parts(parts)

    # -- message memory -----------------------------------------------------------------------

    def _use_storage(self, storage: str | None) -> str:
        """Select ``storage`` for reading/deleting when it is not the current one (the memory in
        a +CMTI may differ from the one we selected)."""
        mem = (storage or self.storage or "SM").upper()
        if mem != self.storage:
            self._retry_busy("AT+CPMS", lambda: self.channel.command(f'AT+CPMS="{mem}"'))
            self.storage = mem
        return mem

    def list_messages(self, storage: str | None = None) -> list[StoredMessage]:
        """Every entry of the memory (``AT+CMGL=4``: read and unread), raw, in modem order.

        Entries are returned even when their PDU is corrupt; decode each with
        :func:`decode_stored`. Reading does not delete anything.
        """
        with self._op_lock:
            mem = self._use_storage(storage)
            resp = self._retry_busy("AT+CMGL=4", lambda: self.channel.command("AT+CMGL=4"))
        return parse_listing(mem, resp.lines)

    def read(self, index: int, storage: str | None = None) -> StoredMessage | None:
        """One entry (``AT+CMGR``), or None when the slot is empty (SIM800 answers a bare OK,
        others ``+CMS ERROR: 321``). Index 0 is valid on Qualcomm-based modems."""
        if index < 0:
            raise ValueError(f"{self.port}: message index {index} is negative")
        with self._op_lock:
            mem = self._use_storage(storage)
            try:
                resp = self._retry_busy(
                    f"AT+CMGR={index}", lambda: self.channel.command(f"AT+CMGR={index}")
                )
            except CmsError as exc:
                if exc.code == 321:
                    return None
                raise
        return parse_read(mem, index, resp.lines)

    def delete(self, index: int, storage: str | None = None) -> None:
        """Delete one entry (``AT+CMGD=<index>``). Call only after the message is committed.
        Delete-all forms (``AT+CMGD=1,4``) are never used."""
        if not isinstance(index, int) or index < 0:
            raise ValueError(f"{self.port}: message index {index!r} is not a valid index")
        with self._op_lock:
            self._use_storage(storage)
            self._retry_busy(f"AT+CMGD={index}", lambda: self.channel.command(f"AT+CMGD={index}"))

    def storage_usage(self) -> StorageUsage:
        """``AT+CPMS?``: used and total of each memory, and whether the receive memory is full."""
        resp = self._retry_busy("AT+CPMS?", lambda: self.channel.command("AT+CPMS?"))
        values = resp.prefixed("+CPMS")
        fields = split_args(values[0]) if values else []
        mems: list[MemoryUsage] = []
        for i in range(0, len(fields) - 2, 3):
            try:
                mems.append(MemoryUsage(fields[i].upper(), int(fields[i + 1]), int(fields[i + 2])))
            except ValueError:
                break
        if not mems:
            raise UnexpectedAnswer(self.port, f"AT+CPMS? answer {resp.lines}")
        return StorageUsage(
            mems[0], mems[1] if len(mems) > 1 else None, mems[2] if len(mems) > 2 else None
        )

    # -- USSD ---------------------------------------------------------------------------------

    def ussd(self, code: str, *, timeout: float | None = None) -> UssdReply:
        """Send a USSD request (``*100#``) and return the network's decoded answer."""
        if not re.fullmatch(r"[0-9*#+]{1,160}", code):
            raise ValueError(f"{self.port}: {code!r} is not a USSD code (digits, * and #)")
        wait = timeout or self.settings.ussd_timeout
        # Huawei sticks take and give the string as packed GSM 7-bit in hex.
        arg = (
            smstext.pack_septets(smstext.encode_gsm7(code)).hex().upper()
            if self.quirks.ussd_packed_hex
            else code
        )
        with self._op_lock:
            while not self._ussd_replies.empty():
                self._ussd_replies.get_nowait()
            self._ussd_waiting = True
            try:
                resp = self.channel.command(f'AT+CUSD=1,"{arg}",15', timeout=wait)
                values = resp.prefixed("+CUSD")
                if values:
                    raw = parse_urc(self.port, Urc("+CUSD", values[0], "+CUSD: " + values[0]))
                else:
                    try:
                        raw = self._ussd_replies.get(timeout=wait)
                    except queue.Empty:
                        raise CommandTimeout(
                            self.port, f"AT+CUSD {code}", f"no +CUSD answer in {wait:g} s"
                        ) from None
            finally:
                self._ussd_waiting = False
        assert isinstance(raw, UssdReceived)
        return UssdReply(raw.status, self._decode_ussd(raw.text, raw.dcs), raw.dcs)

    def _decode_ussd(self, text: str | None, dcs: int | None) -> str | None:
        if text is None:
            return None
        is_hex = bool(re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", text))
        alphabet = _ussd_alphabet(dcs)
        if is_hex and alphabet == "ucs2":
            try:
                return bytes.fromhex(text).decode("utf-16-be", errors="replace")
            except ValueError:
                return text
        if is_hex and alphabet == "gsm7" and self.quirks.ussd_packed_hex:
            data = bytes.fromhex(text)
            septets = smstext.unpack_septets(data, len(data) * 8 // 7)
            # 7 spare bits at the end hold CR (23.038 padding) or zeros: not text.
            if len(data) * 8 % 7 == 0 and septets and septets[-1] in (0x00, 0x0D):
                septets = septets[:-1]
            return smstext.decode_gsm7(septets)
        return text

    # -- reset --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Restart the modem (family command, else ``AT+CFUN=1,1``), close the port, reopen it
        when it comes back (USB modems re-enumerate) and run the start-up again."""
        with self._op_lock:
            self._resetting = True
            self._started = False
            self._sms_ready.clear()
            try:
                for command in self.quirks.reset_commands:
                    try:
                        self.channel.command(command, timeout=self.settings.command_timeout)
                        break
                    except (CommandTimeout, PortGone):
                        break  # it went down before answering: it is restarting
                    except CommandError:
                        log.info("%s: %s refused; trying the next reset", self.port, command)
                        continue
                else:
                    raise ModemError(self.port, "the modem accepted no reset command")
                self.channel.close()
                self._reopen(time.monotonic() + self.settings.reset_timeout)
            finally:
                self._resetting = False

    def _reopen(self, deadline: float) -> None:
        delay = self.settings.retry_delay
        while True:
            try:
                self._open_channel()
                self._startup(deadline)
                return
            except (PortGone, CommandTimeout) as exc:
                if time.monotonic() >= deadline:
                    raise PortGone(
                        self.port, None, f"the modem did not come back after a reset: {exc}"
                    ) from exc
                log.info("%s: not back yet after reset (%s)", self.port, exc)
                if self._channel is not None:
                    self._channel.close()
            if self._closing.wait(delay):
                raise PortGone(self.port, None, "closed while waiting for the modem to return")
            delay = min(delay * 2, self.settings.retry_delay * 8)

    # -- events -------------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while True:
            item = self._urcs.get()
            if item is _STOP:
                return
            gen, payload = item
            try:
                self._dispatch(gen, payload)
            except Exception:
                log.exception("%s: failed to handle %r", self.port, payload)

    def _dispatch(self, gen: int, item: Urc | PortGone) -> None:
        if gen != self._generation:
            log.debug("%s: dropping %r from a closed channel", self.port, item)
            return
        if isinstance(item, PortGone):
            if self._resetting:
                log.info("%s: port went away during reset, as expected", self.port)
                return
            self._gone = item
            self._started = False
            self._emit(ModemGone(self.port, item))
            return
        event = parse_urc(self.port, item)
        if isinstance(event, SmsReady):
            self._sms_ready.set()
        if isinstance(event, UssdReceived):
            if self._ussd_waiting:
                self._ussd_replies.put(event)
                return
            event = UssdReceived(
                self.port, event.status, self._decode_ussd(event.text, event.dcs), event.dcs
            )
        if isinstance(event, DirectMessage | StatusReport):
            self._deliver_routed(event)
            return
        self._emit(event)
        if isinstance(event, ModemRestarted):
            self._after_restart()

    def _deliver_routed(self, event: DirectMessage | StatusReport) -> None:
        handled = self._emit(event)
        if self.message_service != 1:
            return  # phase 2: the modem acknowledged it to the network by itself
        # Phase 2+: acknowledge only now that the handler has stored it; a negative ack makes
        # the network deliver it again later instead of losing it.
        command = "AT+CNMA" if handled else "AT+CNMA=2"
        try:
            self.channel.command(command)
        except (CommandError, CommandTimeout) as exc:
            # 27.005: an ME that gets no ack in time turns routing off (CNMI mt/ds to 0).
            log.warning("%s: %s failed (%s); restoring +CNMI", self.port, command, exc)
            try:
                with self._op_lock:
                    self._configure_indications()
            except (CommandError, CommandTimeout, ModemError) as exc2:
                log.error("%s: could not restore +CNMI: %s", self.port, exc2)
        except PortGone as exc:
            log.warning("%s: cannot acknowledge, port gone: %s", self.port, exc)

    def _after_restart(self) -> None:
        """The modem rebooted on its own (a SIM800 brown-out, a watchdog): echo is back on and
        PDU mode and indications are lost. Run the start-up again unless we caused it."""
        if self._resetting or not self._started:
            return
        log.warning("%s: modem restarted on its own; configuring it again", self.port)
        self._sms_ready.clear()
        # On its own thread: start-up waits for "SMS Ready", which this dispatch thread delivers.
        threading.Thread(
            target=self._reconfigure, name=f"modem-reconfigure {self.port}", daemon=True
        ).start()

    def _reconfigure(self) -> None:
        try:
            self._startup(time.monotonic() + self.settings.startup_timeout)
        except (ModemError, CommandError, CommandTimeout, PortGone) as exc:
            log.error("%s: reconfiguration after restart failed: %s", self.port, exc)

    def _emit(self, event: ModemEvent) -> bool:
        """Hand an event up; True when the handler returned normally."""
        if self._on_event is None:
            self.events.put(event)
            return True
        try:
            self._on_event(event)
        except Exception:
            log.exception("%s: the event handler failed on %r", self.port, event)
            return False
        return True


# ---------------------------------------------------------------------------------------------
# Parsers of answers (pure functions, tested directly)


def parse_iccid(line: str, prefix: str) -> str | None:
    """The ICCID in one answer line: ``+QCCID: 8944...``, ``^ICCID: 9844...`` (nibble-swapped),
    ``+CRSM: 144,0,"98..."`` (raw EF_ICCID), a bare ``8944...F``. None when there is none."""
    value = line.strip()
    if prefix and value.upper().startswith(prefix.upper() + ":"):
        value = value[len(prefix) + 1 :]
    elif ":" in value:
        value = value.split(":", 1)[1]
    if prefix == "+CRSM":
        fields = split_args(value)
        if len(fields) < 3 or fields[0] != "144":
            return None
        value = fields[2]
    value = value.strip().strip('"').strip().upper()
    if not re.fullmatch(r"[0-9A-F]{18,22}", value):
        return None
    # EF_ICCID stores BCD with swapped nibbles: every real ICCID starts with 89 (telecom), so a
    # value starting with 98 is still in storage order (Huawei ^ICCID, AT+CRSM).
    if value.startswith("98"):
        value = "".join(value[i + 1] + value[i] for i in range(0, len(value) - 1, 2))
    value = value.rstrip("F")
    return value if value.isdigit() else None


def parse_listing(storage: str, lines: Sequence[str]) -> list[StoredMessage]:
    """Pair each ``+CMGL: <index>,<stat>,[<alpha>],<length>`` header with the PDU line after it.

    A header with no PDU line, or a PDU that is garbage, still yields an entry (``pdu`` None or
    raw), so one corrupt message never hides the others.
    """
    out: list[StoredMessage] = []
    current: tuple[int, int | None, int | None] | None = None
    for line in lines:
        if line.upper().startswith("+CMGL:"):
            if current is not None:
                log.warning("%s index %d: listed without a PDU line", storage, current[0])
                out.append(StoredMessage(storage, current[0], current[1], current[2], None))
            fields = split_args(line[6:])
            index = _to_int(fields[0]) if fields else None
            if index is None:
                log.warning("unreadable +CMGL header %r skipped", line)
                current = None
                continue
            status = _to_int(fields[1]) if len(fields) > 1 else None
            length = _to_int(fields[-1]) if len(fields) > 2 else None
            current = (index, status, length)
        elif current is not None:
            out.append(StoredMessage(storage, current[0], current[1], current[2], line.strip()))
            current = None
        else:
            log.warning("%s: line %r in +CMGL listing without a header", storage, line)
    if current is not None:
        out.append(StoredMessage(storage, current[0], current[1], current[2], None))
    return out


def parse_read(storage: str, index: int, lines: Sequence[str]) -> StoredMessage | None:
    """Parse a ``+CMGR`` answer; None for an empty slot (a bare OK).

    Headers vary: ``+CMGR: 0,,29`` (27.005), ``+CMGR: 0,"",29`` (SIM800), ``+CMGR: 0,29``
    (Sierra), ``+CMGR: 24`` (length only), ``+CMGR: ,,92`` (status left out).
    """
    header = next((i for i, line in enumerate(lines) if line.upper().startswith("+CMGR:")), None)
    if header is None:
        return None
    fields = split_args(lines[header][6:])
    length = _to_int(fields[-1]) if fields else None
    status = _to_int(fields[0]) if len(fields) > 1 else None
    pdu = lines[header + 1].strip() if header + 1 < len(lines) else None
    return StoredMessage(storage, index, status, length, pdu or None)


def _to_int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


def _ussd_alphabet(dcs: int | None) -> str:
    """The alphabet of a USSD/CBS data coding scheme (TS 23.038 clause 5)."""
    if dcs is None:
        return "gsm7"
    if dcs == 0x11:
        return "ucs2"  # UCS2 preceded by a language
    group = dcs >> 4
    if group in (0x4, 0x5, 0x6, 0x7, 0x9):
        return {0: "gsm7", 1: "8bit", 2: "ucs2"}.get((dcs >> 2) & 0x03, "gsm7")
    if group == 0xF:
        return "8bit" if dcs & 0x04 else "gsm7"
    return "gsm7"
