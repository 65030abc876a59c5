"""The Modem: one AT port of one physical modem, started up, queried and used to send and receive.

Built on a :class:`~gateway.modem.link.Link` (its settings and AT channel); the start-up
negotiation is :mod:`gateway.modem.startup`, what the modem tells is :mod:`gateway.modem.readings`.

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
from typing import Any

from . import pdu as pdumod
from . import text as smstext
from .at import (
    ATChannel,
    CmsError,
    CommandError,
    CommandTimeout,
    PortGone,
    Response,
    SerialLike,
    Urc,
    split_args,
)
from .link import (
    Link,
    ModemError,
    ModemSettings,
    SimBusy,
    SimCardError,
    SimPinRejected,
    SimPinRequired,
    SimPukRequired,
    SmsNotReady,
    UnexpectedAnswer,
)
from .quirks import Quirks, quirks_for
from .readings import (
    Identity,
    MemoryUsage,
    SentPart,
    StorageUsage,
    StoredMessage,
    Undecodable,
    UssdReply,
    decode_stored,
    parse_iccid,
    parse_listing,
    parse_read,
    parse_storage_usage,
)
from .startup import configure_indications, negotiate
from .urc import (
    DirectMessage,
    DirectStatusReport,
    ModemEvent,
    ModemGone,
    ModemRestarted,
    Registration,
    Signal,
    SmsReady,
    UssdReceived,
    parse_registration,
    parse_urc,
    signal_from_rssi,
)

# The driver's public face: the Modem, and the settings, errors and readings it deals in.
__all__ = [
    "Identity",
    "MemoryUsage",
    "Modem",
    "ModemError",
    "ModemSettings",
    "PartialSendError",
    "SentPart",
    "SimBusy",
    "SimCardError",
    "SimPinRejected",
    "SimPinRequired",
    "SimPukRequired",
    "SmsNotReady",
    "StorageUsage",
    "StoredMessage",
    "Undecodable",
    "UnexpectedAnswer",
    "UssdReply",
    "decode_stored",
    "parse_iccid",
    "parse_listing",
    "parse_read",
]

log = logging.getLogger(__name__)


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


_STOP = object()


class Modem:
    """One AT port of one physical modem. Thread-safe: every public method may be called from
    any thread; commands are serialised on the port.

    ``on_event`` receives each :data:`~gateway.modem.urc.ModemEvent` on the Modem's dispatch
    thread; without it events go to :attr:`events`. With a handler, a routed message (``+CMT``,
    ``+CDS``) under ``AT+CSMS=1`` is acknowledged after the handler returns (negatively if it
    raised); with the queue it is acknowledged as soon as it is queued. ``serial_factory``
    replaces pyserial (tests).
    """

    # send_pdu takes before_payload and while_waiting (the dispatcher's StagedLink).
    stages_sends = True

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
        self._urcs: queue.Queue[Any] = queue.Queue()
        self._link = Link(
            port,
            self.settings,
            lambda gen, item: self._urcs.put((gen, item)),
            serial_factory,
        )
        self.family = self.settings.family or "generic"
        self.quirks: Quirks = quirks_for(self.family)
        self.manufacturer: str | None = None
        self.model: str | None = None
        self.storage: str | None = None  # the memory selected for reading and deleting
        self.status_report_routing = "none"  # "direct" (+CDS), "stored" (+CDSI) or "none"
        self.message_service: int | None = None  # AT+CSMS <service>: 1 means +CNMA is needed
        self._dispatcher: threading.Thread | None = None
        self._op_lock = threading.RLock()  # compound operations (select memory + read, reset)
        self._resetting = False
        self._started = False
        self._gone: PortGone | None = None
        self._pin_rejected = False
        self._ussd_waiting = False
        self._ussd_replies: queue.Queue[UssdReceived] = queue.Queue()

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the port and run the start-up sequence. Raises :class:`PortGone`,
        :class:`SimCardError` and its kin, :class:`SmsNotReady` or an AT error; the port is
        closed again on failure."""
        self._link.closing.clear()
        self._gone = None
        self._link.sms_ready.clear()
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(
                target=self._dispatch_loop, name=f"modem-events {self.port}", daemon=True
            )
            self._dispatcher.start()
        try:
            self._link.open_channel()  # opened before: the old channel is closed first
            self._startup(time.monotonic() + self.settings.startup_timeout)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the port and stop the dispatch thread. Safe to call twice."""
        self._link.closing.set()
        self._started = False
        self._link.close_channel()
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

    @property
    def channel(self) -> ATChannel:
        """The AT channel in use (raises :class:`PortGone` when there is none)."""
        return self._link.channel

    def command(self, command: str, *, timeout: float | None = None) -> Response:
        """Send one raw AT command (diagnostics, the field CLI). Errors as the channel's."""
        return self.channel.command(command, timeout=timeout)

    def _startup(self, deadline: float) -> None:
        with self._op_lock:
            try:
                agreed = negotiate(self._link, deadline, pin_rejected=self._pin_rejected)
            except SimPinRejected:
                # Never entered again on this Modem: three wrong PINs lock the SIM into PUK.
                self._pin_rejected = True
                raise
            self.family = agreed.family
            self.quirks = agreed.quirks
            self.manufacturer = agreed.manufacturer
            self.model = agreed.model
            self.storage = agreed.storage
            self.status_report_routing = agreed.status_report_routing
            self.message_service = agreed.message_service
            self._started = True
        log.info(
            "%s: ready (%s %s, storage %s, status reports %s)",
            self.port,
            self.family,
            self.model or "?",
            self.storage,
            self.status_report_routing,
        )

    # -- identity and health ------------------------------------------------------------------

    def identify(self) -> Identity:
        """Manufacturer, model, firmware, IMEI, IMSI, ICCID and the SIM's own number."""
        with self._op_lock:
            imei_raw = self._link.ident_value("AT+CGSN", "+CGSN")
            imsi_raw = self._link.ident_value("AT+CIMI", "+CIMI")
            m_imei = re.search(r"\d{14,17}", imei_raw or "")
            m_imsi = re.search(r"\d{6,15}", imsi_raw or "")
            return Identity(
                family=self.family,
                manufacturer=self.manufacturer,
                model=self.model,
                firmware=self._link.ident_value("AT+CGMR", "+CGMR"),
                imei=m_imei.group(0) if m_imei else None,
                imsi=m_imsi.group(0) if m_imsi else None,
                iccid=self.iccid(),
                number=self.own_number(),
            )

    def iccid(self) -> str | None:
        """The SIM's ICCID, through the family's command or, failing that, EF_ICCID itself."""
        for command, prefix in self.quirks.iccid_commands:
            try:
                resp = self._link.retry_busy(command, lambda c=command: self.channel.command(c))
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

    def send_pdu(
        self,
        pdu_hex: str,
        length: int,
        *,
        before_payload: Callable[[], None] | None = None,
        while_waiting: Callable[[], None] | None = None,
    ) -> int:
        """Send one SMS-SUBMIT PDU (hex with its SMSC field; ``length`` counts the TPDU) and
        return the TP-MR of ``+CMGS: <mr>``. Never retried here: a retry could send it twice.

        ``before_payload`` runs after the ``AT+CMGS`` line and before the PDU goes out (when
        it raises, the message is abandoned with ESC: nothing was sent); ``while_waiting``
        once the PDU is out, while the network answers (see :meth:`ATChannel.send_with_prompt`).
        """
        if not re.fullmatch(r"[0-9A-Fa-f]+", pdu_hex or "") or len(pdu_hex) % 2:
            raise ValueError(f"{self.port}: the PDU is not an even-length hex string")
        if not 0 < length <= 176:
            raise ValueError(f"{self.port}: TPDU length {length} is outside 1..176")
        resp = self.channel.send_with_prompt(
            f"AT+CMGS={length}",
            pdu_hex.upper(),
            prompt_timeout=self.settings.prompt_timeout,
            timeout=self.settings.send_timeout,
            before_payload=before_payload,
            while_waiting=while_waiting,
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
            self._link.busy_command(f'AT+CPMS="{mem}"')
            self.storage = mem
        return mem

    def list_messages(self, storage: str | None = None) -> list[StoredMessage]:
        """Every entry of the memory (``AT+CMGL=4``: read and unread), raw, in modem order.

        Entries are returned even when their PDU is corrupt; decode each with
        :func:`decode_stored`. Reading does not delete anything.
        """
        with self._op_lock:
            mem = self._use_storage(storage)
            resp = self._link.busy_command("AT+CMGL=4")
        return parse_listing(mem, resp.lines)

    def read(self, index: int, storage: str | None = None) -> StoredMessage | None:
        """One entry (``AT+CMGR``), or None when the slot is empty (SIM800 answers a bare OK,
        others ``+CMS ERROR: 321``). Index 0 is valid on Qualcomm-based modems."""
        if index < 0:
            raise ValueError(f"{self.port}: message index {index} is negative")
        with self._op_lock:
            mem = self._use_storage(storage)
            try:
                resp = self._link.busy_command(f"AT+CMGR={index}")
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
            self._link.busy_command(f"AT+CMGD={index}")

    def storage_usage(self) -> StorageUsage:
        """``AT+CPMS?``: used and total of each memory, and whether the receive memory is full."""
        resp = self._link.busy_command("AT+CPMS?")
        usage = parse_storage_usage(self.port, resp.lines)
        if usage is None:
            raise UnexpectedAnswer(self.port, f"AT+CPMS? answer {resp.lines}")
        return usage

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
            self._link.sms_ready.clear()
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
                self._link.open_channel()
                self._startup(deadline)
                return
            except (PortGone, CommandTimeout) as exc:
                if time.monotonic() >= deadline:
                    raise PortGone(
                        self.port, None, f"the modem did not come back after a reset: {exc}"
                    ) from exc
                log.info("%s: not back yet after reset (%s)", self.port, exc)
                self._link.close_channel()
            if self._link.closing.wait(delay):
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
        if gen != self._link.generation:
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
            self._link.sms_ready.set()
        if isinstance(event, UssdReceived):
            if self._ussd_waiting:
                self._ussd_replies.put(event)
                return
            event = UssdReceived(
                self.port, event.status, self._decode_ussd(event.text, event.dcs), event.dcs
            )
        if isinstance(event, DirectMessage | DirectStatusReport):
            self._deliver_routed(event)
            return
        self._emit(event)
        if isinstance(event, ModemRestarted):
            self._after_restart()

    def _deliver_routed(self, event: DirectMessage | DirectStatusReport) -> None:
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
                    self.status_report_routing = configure_indications(self._link)
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
        self._link.sms_ready.clear()
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
