"""Typed events a :class:`~gateway.modem.device.Modem` hands to the layer above, and the parsers
that turn unsolicited result codes (and query answers of the same shape) into them.

Every event carries ``port`` so one consumer can serve several modems.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .at import PortGone, Urc, split_args

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Signal:
    """Signal strength from ``+CSQ`` (or Huawei ``^RSSI``): raw value, dBm and 0-4 bars.

    ``rssi`` 99 means "not known or not detectable": ``dbm`` is then None and ``bars`` 0.
    """

    rssi: int
    ber: int | None
    dbm: int | None
    bars: int


def signal_from_rssi(rssi: int, ber: int | None = None) -> Signal:
    """Convert a 27.007 ``<rssi>`` (0-31, 99) to dBm and bars.

    0 is -113 dBm or less, 31 is -51 dBm or more, 2 dB a step. Bars follow the usual handset
    thresholds: below -107 dBm none, then -107/-93/-83/-73 dBm for 1 to 4.
    """
    if rssi < 0 or rssi > 31:
        # 99 (unknown) and 100-191 (TD-SCDMA range some firmwares use) are reported as unknown.
        return Signal(rssi, ber, None, 0)
    dbm = -113 + 2 * rssi
    if dbm < -107:
        bars = 0
    elif dbm < -93:
        bars = 1
    elif dbm < -83:
        bars = 2
    elif dbm < -73:
        bars = 3
    else:
        bars = 4
    return Signal(rssi, ber, dbm, bars)


REGISTRATION_STATES = {
    0: "not registered, not searching",
    1: "registered, home network",
    2: "not registered, searching",
    3: "registration denied",
    4: "unknown",
    5: "registered, roaming",
    6: "registered for SMS only, home network",
    7: "registered for SMS only, roaming",
    8: "attached for emergency bearer services only",
    9: "registered for CSFB not preferred, home network",
    10: "registered for CSFB not preferred, roaming",
}
_REGISTERED = frozenset({1, 5, 6, 7, 9, 10})
_ROAMING = frozenset({5, 7, 10})


@dataclass(frozen=True)
class Registration:
    """Network registration of one domain: ``"CS"`` (+CREG), ``"PS"`` (+CGREG), ``"EPS"``
    (+CEREG). ``lac`` and ``cell_id`` are upper-case hex strings as the modem gave them (Huawei
    leaves them unquoted; others quote them); ``act`` is the access technology (0 GSM, 2 UTRAN,
    7 E-UTRAN) when shown."""

    domain: str
    status: int
    lac: str | None = None
    cell_id: str | None = None
    act: int | None = None

    @property
    def registered(self) -> bool:
        return self.status in _REGISTERED

    @property
    def roaming(self) -> bool:
        return self.status in _ROAMING

    @property
    def status_text(self) -> str:
        return REGISTRATION_STATES.get(self.status, f"status {self.status}")


_DOMAINS = {"+CREG": "CS", "+CGREG": "PS", "+CEREG": "EPS", "+C5GREG": "5GS"}


def parse_registration(prefix: str, args: str, *, solicited: bool) -> Registration:
    """Parse ``+CREG``/``+CGREG``/``+CEREG`` arguments.

    The query answer starts with ``<n>`` (``+CREG: 0,1``); the unsolicited code does not
    (``+CREG: 1``). With ``n=2`` both carry location fields: ``+CREG: 2,1,"00C3","1A2B",7``
    answers a query, ``+CREG: 1,"00C3","1A2B",7`` is unsolicited. Raises ValueError when the
    status field is not a number.
    """
    fields = split_args(args)
    if solicited:
        fields = fields[1:]
    if not fields or not fields[0].strip().isdigit():
        raise ValueError(f"{prefix}: no registration status in {args!r}")
    status = int(fields[0])
    lac = _hex_field(fields[1]) if len(fields) > 1 else None
    cell = _hex_field(fields[2]) if len(fields) > 2 else None
    act = int(fields[3]) if len(fields) > 3 and fields[3].strip().isdigit() else None
    return Registration(_DOMAINS.get(prefix.upper(), prefix), status, lac, cell, act)


def _hex_field(value: str) -> str | None:
    value = value.strip().upper()
    if not value:
        return None
    try:
        int(value, 16)
    except ValueError:
        log.warning("location field %r is not hexadecimal; kept as given", value)
    return value


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class NewMessage:
    """A message was stored in ``storage`` at ``index`` (``+CMTI``). Read it, commit it, then
    delete it with ``Modem.delete(index, storage)``."""

    port: str
    storage: str
    index: int


@dataclass(frozen=True)
class DirectMessage:
    """A message routed straight to us (``+CMT``), not stored on the modem. When the modem's
    message service is phase 2+ (``AT+CSMS=1``) the Modem acknowledges it with ``AT+CNMA`` once
    the event handler has returned, so commit it inside the handler."""

    port: str
    pdu: str
    length: int | None


@dataclass(frozen=True)
class DirectStatusReport:
    """A status report routed straight to us (``+CDS``), PDU in hex with its SMSC field."""

    port: str
    pdu: str
    length: int | None


@dataclass(frozen=True)
class StatusReportStored:
    """A status report was stored in ``storage`` at ``index`` (``+CDSI``); read and delete it
    like a message."""

    port: str
    storage: str
    index: int


@dataclass(frozen=True)
class SignalChanged:
    """The modem reported its signal on its own (Huawei ``^RSSI``, Quectel ``+QIND: "csq"``)."""

    port: str
    signal: Signal


@dataclass(frozen=True)
class RegistrationChanged:
    """An unsolicited ``+CREG``/``+CGREG``/``+CEREG``."""

    port: str
    registration: Registration


@dataclass(frozen=True)
class StorageFull:
    """The message memory is full (Huawei ``^SMMEMFULL``, ``+CIEV`` smsfull, or found by a
    ``AT+CPMS?`` poll): new messages wait in the network until space is freed."""

    port: str
    storage: str | None


@dataclass(frozen=True)
class SmsReady:
    """SMS commands work from now on (SIMCom ``SMS Ready``/``SMS DONE``, Quectel ``+QIND: SMS
    DONE``)."""

    port: str
    source: str


@dataclass(frozen=True)
class SimStatus:
    """The SIM changed state on its own (``+CPIN: READY``, ``+CPIN: NOT READY``, ``^SIMST``)."""

    port: str
    state: str


@dataclass(frozen=True)
class ModemRestarted:
    """The modem announced a (re)boot (``RDY``): the Modem reconfigures it by itself."""

    port: str
    source: str


@dataclass(frozen=True)
class UssdReceived:
    """A network-initiated or late ``+CUSD`` (a reply to :meth:`Modem.ussd` is returned there)."""

    port: str
    status: int | None
    text: str | None
    dcs: int | None


@dataclass(frozen=True)
class IncomingCall:
    """``RING`` or ``+CLIP``; an SMS gateway only logs it (the modem hangs up by itself)."""

    port: str
    number: str | None


@dataclass(frozen=True)
class OtherUrc:
    """Any other unsolicited line, kept for logs and debugging."""

    port: str
    urc: Urc


@dataclass(frozen=True)
class ModemGone:
    """The port died (unplugged, serial error). The Modem is closed; open a new one later."""

    port: str
    error: PortGone


ModemEvent = (
    NewMessage
    | DirectMessage
    | DirectStatusReport
    | StatusReportStored
    | SignalChanged
    | RegistrationChanged
    | StorageFull
    | SmsReady
    | SimStatus
    | ModemRestarted
    | UssdReceived
    | IncomingCall
    | OtherUrc
    | ModemGone
)


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.lstrip("-").isdigit() else None


def parse_urc(port: str, urc: Urc) -> ModemEvent:
    """Turn one :class:`Urc` into an event; anything unknown or malformed becomes
    :class:`OtherUrc` (logged), never an exception."""
    try:
        event = _parse(port, urc)
    except (ValueError, IndexError) as exc:
        log.warning("%s: cannot parse %r: %s", port, urc.line, exc)
        return OtherUrc(port, urc)
    return event if event is not None else OtherUrc(port, urc)


def _parse(port: str, urc: Urc) -> ModemEvent | None:
    name, args = urc.name, urc.args
    fields = split_args(args) if args else []
    if name in ("+CMTI", "+CDSI"):
        storage, index = fields[0].upper(), _int(fields[1])
        if index is None:
            raise ValueError("index is not a number")
        cls = NewMessage if name == "+CMTI" else StatusReportStored
        return cls(port, storage, index)
    if name == "+CMT" and urc.pdu is not None:
        return DirectMessage(port, urc.pdu, _int(fields[-1]) if fields else None)
    if name == "+CDS" and urc.pdu is not None:
        return DirectStatusReport(port, urc.pdu, _int(fields[0]) if fields else None)
    if name in _DOMAINS:
        return RegistrationChanged(port, parse_registration(name, args, solicited=False))
    if name == "^RSSI":
        rssi = _int(fields[0])
        return SignalChanged(port, signal_from_rssi(rssi)) if rssi is not None else None
    if name == "+QIND":
        kind = fields[0].upper() if fields else ""
        if kind == "SMS DONE":
            return SmsReady(port, urc.line)
        if kind == "CSQ" and len(fields) > 1 and _int(fields[1]) is not None:
            return SignalChanged(port, signal_from_rssi(int(fields[1]), _int(fields[2])))
        if kind == "SMSFULL":
            return StorageFull(port, None)
        return None
    if name in ("SMS READY", "SMS DONE"):
        return SmsReady(port, urc.line)
    if name == "^SMMEMFULL":
        return StorageFull(port, fields[0].upper() if fields and fields[0] else None)
    if name == "+CIEV":
        # +CIEV: "SMSFULL",1 (SIMCom/Quectel named indicators).
        if fields and fields[0].upper() == "SMSFULL" and len(fields) > 1 and fields[1] == "1":
            return StorageFull(port, None)
        return None
    if name == "+CPIN":
        return SimStatus(port, args.strip())
    if name == "^SIMST":
        return SimStatus(port, f"^SIMST:{args.strip()}")
    if name == "RDY":
        return ModemRestarted(port, urc.line)
    if name == "+CUSD":
        status = _int(fields[0]) if fields else None
        text = fields[1] if len(fields) > 1 else None
        dcs = _int(fields[2]) if len(fields) > 2 else None
        return UssdReceived(port, status, text, dcs)
    if name == "RING":
        return IncomingCall(port, None)
    if name == "+CLIP":
        return IncomingCall(port, fields[0] if fields else None)
    return None
