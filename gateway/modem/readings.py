"""What a modem tells: who it is, what its message memory holds and how full it is, what a
send or a USSD request gave back; and the pure parsers of the answers that carry them."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import pdu as pdumod
from .at import split_args
from .errors import CodecError

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class UssdReply:
    """The network's answer to a USSD request: ``status`` 0 done, 1 more input expected, 2 ended
    by the network, 4 not supported, 5 timed out; ``text`` decoded."""

    status: int | None
    text: str | None
    dcs: int | None


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


def parse_storage_usage(port: str, lines: Sequence[str]) -> StorageUsage | None:
    """The memories of an ``AT+CPMS?`` answer (read/delete, write/send, receive); None when the
    answer has none."""
    values = [line[6:].strip() for line in lines if line.upper().startswith("+CPMS:")]
    fields = split_args(values[0]) if values else []
    mems: list[MemoryUsage] = []
    for i in range(0, len(fields) - 2, 3):
        try:
            mems.append(MemoryUsage(fields[i].upper(), int(fields[i + 1]), int(fields[i + 2])))
        except ValueError:
            break
    if not mems:
        return None
    return StorageUsage(
        mems[0], mems[1] if len(mems) > 1 else None, mems[2] if len(mems) > 2 else None
    )
