"""SMS PDUs of 3GPP TS 23.040 as PDU mode of TS 27.005 carries them: encode SMS-SUBMIT (and, for
the simulator, SMS-DELIVER and SMS-STATUS-REPORT), decode all three.

Hex strings in and out are what ``AT+CMGS``, ``+CMT``, ``+CDS``, ``+CMGR`` and ``+CMGL`` carry:
an SMSC address field first (``00`` for "the one stored in the SIM"), then the TPDU. The length
that ``AT+CMGS=`` needs counts the TPDU only.

Every malformed input makes :func:`decode` raise :class:`~gateway.modem.errors.CodecError` with
the octet offset and field; nothing else escapes it, and it never loops on its input.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from . import text as smstext
from .errors import CodecError, MessageTooLong

# ---------------------------------------------------------------------------------------------
# Value types


@dataclass(frozen=True)
class Concat:
    """A concatenation header: this PDU is part ``seq`` of ``total`` of message ``reference``."""

    reference: int
    total: int
    seq: int
    bits: int = 8

    def to_json(self) -> dict:
        return {"ref": self.reference, "total": self.total, "seq": self.seq, "bits": self.bits}


@dataclass(frozen=True)
class SubmitPart:
    """One encoded SMS-SUBMIT: hex PDU with its SMSC field, and the TPDU length for AT+CMGS."""

    pdu: str
    length: int
    seq: int
    total: int
    reference: int | None
    text: str

    def to_json(self) -> dict:
        return {"pdu": self.pdu, "length": self.length}


@dataclass(frozen=True)
class _Common:
    smsc: str | None
    number: str
    text: str
    data: bytes | None
    encoding: str
    concat: Concat | None
    dcs: int
    pid: int
    message_class: int | None
    udh: list[tuple[int, bytes]]
    warnings: list[str]


def _udh_json(udh: list[tuple[int, bytes]]) -> list[dict]:
    return [{"iei": iei, "data": data.hex().upper()} for iei, data in udh]


def _ts_json(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


@dataclass(frozen=True)
class Deliver(_Common):
    """An SMS-DELIVER: a message received from ``number`` (the originating address)."""

    timestamp: datetime | None = None
    status_report_indication: bool = False
    more_messages: bool = False
    reply_path: bool = False
    message_waiting: dict[str, Any] | None = None
    type: str = field(default="deliver", init=False)

    def to_json(self) -> dict:
        return {
            "type": self.type,
            "smsc": self.smsc,
            "number": self.number,
            "text": self.text,
            "timestamp": _ts_json(self.timestamp),
            "concat": self.concat.to_json() if self.concat else None,
            "status": None,
            "reference": None,
            "encoding": self.encoding,
            "data": self.data.hex().upper() if self.data is not None else None,
            "dcs": self.dcs,
            "pid": self.pid,
            "class": self.message_class,
            "udh": _udh_json(self.udh),
            "message_waiting": self.message_waiting,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Submit(_Common):
    """An SMS-SUBMIT: a message to ``number`` (the destination); ``reference`` is its TP-MR."""

    reference: int = 0
    status_report_request: bool = False
    reject_duplicates: bool = False
    validity: int | str | None = None
    type: str = field(default="submit", init=False)

    def to_json(self) -> dict:
        return {
            "type": self.type,
            "smsc": self.smsc,
            "number": self.number,
            "text": self.text,
            "timestamp": None,
            "concat": self.concat.to_json() if self.concat else None,
            "status": None,
            "reference": self.reference,
            "encoding": self.encoding,
            "data": self.data.hex().upper() if self.data is not None else None,
            "dcs": self.dcs,
            "pid": self.pid,
            "class": self.message_class,
            "udh": _udh_json(self.udh),
            "status_report_request": self.status_report_request,
            "reject_duplicates": self.reject_duplicates,
            "validity": self.validity,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class StatusReport:
    """An SMS-STATUS-REPORT for the part whose TP-MR was ``reference``, sent to ``number``."""

    smsc: str | None
    number: str
    reference: int
    timestamp: datetime | None
    discharge_time: datetime | None
    status: int
    status_meaning: str
    status_category: str
    warnings: list[str]
    type: str = field(default="status-report", init=False)

    @property
    def delivered(self) -> bool:
        return self.status_category == "delivered"

    def to_json(self) -> dict:
        return {
            "type": self.type,
            "smsc": self.smsc,
            "number": self.number,
            "text": None,
            "timestamp": _ts_json(self.timestamp),
            "discharge_time": _ts_json(self.discharge_time),
            "concat": None,
            "status": self.status,
            "status_meaning": self.status_meaning,
            "status_category": self.status_category,
            "reference": self.reference,
            "warnings": list(self.warnings),
        }


# ---------------------------------------------------------------------------------------------
# Status of a status report (TS 23.040 9.2.3.15)

_STATUS_MEANINGS = {
    0x00: "received by the recipient",
    0x01: "forwarded, delivery not confirmed",
    0x02: "replaced by the service centre",
    0x20: "congestion, still trying",
    0x21: "recipient busy, still trying",
    0x22: "no response from recipient, still trying",
    0x23: "service rejected, still trying",
    0x24: "quality of service not available, still trying",
    0x25: "error in recipient, still trying",
    0x40: "remote procedure error",
    0x41: "incompatible destination",
    0x42: "connection rejected by recipient",
    0x43: "not obtainable",
    0x44: "quality of service not available",
    0x45: "no interworking available",
    0x46: "validity period expired",
    0x47: "deleted by the sender",
    0x48: "deleted by the service centre",
    0x49: "message does not exist",
    0x60: "congestion, no longer trying",
    0x61: "recipient busy, no longer trying",
    0x62: "no response from recipient, no longer trying",
    0x63: "service rejected, no longer trying",
    0x64: "quality of service not available, no longer trying",
    0x65: "error in recipient, no longer trying",
}


def status_meaning(status: int) -> tuple[str, str]:
    """(category, meaning) of a TP-ST value; category is delivered, pending or failed."""
    if status < 0x20:
        category = "delivered"
        default = "delivered (service centre specific)" if status >= 0x10 else "delivered"
    elif status < 0x40:
        category = "pending"
        default = "temporary error, still trying"
    elif status < 0x60:
        category = "failed"
        default = "permanent error"
    elif status < 0x80:
        category = "failed"
        default = "temporary error, no longer trying"
    else:
        # TS 23.040: reserved values are treated as "service rejected".
        category = "failed"
        default = "reserved status, treated as service rejected"
    return category, _STATUS_MEANINGS.get(status, default)


# ---------------------------------------------------------------------------------------------
# Addresses

_NUMBER_SEPARATORS = " -.()/\u00a0"

TOA_INTERNATIONAL = 0x91
TOA_UNKNOWN = 0x81
TOA_NATIONAL = 0xA1
TOA_ALPHANUMERIC = 0xD0


# Semi-octets through C-level string functions: digits as hex, then each octet's nibbles swapped.
_SEPARATORS = str.maketrans("", "", _NUMBER_SEPARATORS)
_DIALLABLE = re.compile(r"[0-9*#]{1,20}")
_DIGITS_TO_HEX = str.maketrans("*#abc", "ABCDE")
_SWAP_NIBBLES = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))


_PLAIN_NUMBER = re.compile(r"\+?[0-9]{1,20}")


def _swap_digits(number: str) -> bytes:
    digits = number if number.isdigit() else number.translate(_DIGITS_TO_HEX)
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits).translate(_SWAP_NIBBLES)


def address_digits(number: str) -> tuple[str, int]:
    """Digits and type-of-address for a phone number written by a person.

    Spaces, dashes, dots, slashes and brackets are dropped; a leading ``+`` or ``00`` would both
    be international, but only ``+`` is taken as such (``00`` may be a national trunk prefix).
    Raises CodecError for anything that is not a number.
    """
    raw = number.strip()
    if raw.startswith("+"):
        # "+44 (0)20 ..." shows a trunk prefix that is not dialled after the country code.
        raw = raw.replace("(0)", "")
    cleaned = raw.translate(_SEPARATORS)
    toa = TOA_UNKNOWN
    if cleaned.startswith("+"):
        toa = TOA_INTERNATIONAL
        cleaned = cleaned[1:]
    if _DIALLABLE.fullmatch(cleaned) is None:
        raise CodecError("number", f"{number!r} is not a phone number (digits, optional +)")
    return cleaned, toa


def encode_address(number: str, *, toa: int | None = None) -> bytes:
    """A TP-DA/TP-OA field: length in semi-octets, type of address, then the digits.

    Letters make an alphanumeric address (type 0xD0, the text packed as GSM-7; its length is the
    number of semi-octets actually used, ceil(7n/4) for n characters).
    """
    if _PLAIN_NUMBER.fullmatch(number):  # the usual case, a number as the store keeps it
        digits = number.lstrip("+")
        default_toa = TOA_INTERNATIONAL if number[0] == "+" else TOA_UNKNOWN
        return bytes([len(digits), default_toa if toa is None else toa]) + _swap_digits(digits)
    cleaned = number.strip().translate(_SEPARATORS)
    is_numeric = cleaned.lstrip("+").isdigit() and cleaned.count("+") <= 1
    if not is_numeric:
        if not number or len(number) > 11:
            raise CodecError("number", f"alphanumeric address {number!r} must be 1-11 characters")
        septets = smstext.encode_gsm7(number)
        if len(septets) > 11:
            raise CodecError("number", f"alphanumeric address {number!r} is too long")
        packed = smstext.pack_septets(septets)
        semi_octets = (len(septets) * 7 + 3) // 4
        return bytes([semi_octets, TOA_ALPHANUMERIC]) + packed
    digits, default_toa = address_digits(number)
    return bytes([len(digits), toa if toa is not None else default_toa]) + _swap_digits(digits)


def encode_smsc(smsc: str | None) -> bytes:
    """The SMSC field in front of a PDU: ``00`` (use the SIM's) or length, type, digits."""
    if not smsc:
        return b"\x00"
    digits, toa = address_digits(smsc)
    body = bytes([toa]) + _swap_digits(digits)
    return bytes([len(body)]) + body


# Nibble values written as hex digits -> the digits of TS 23.040 9.1.2.3; F is filler (also
# tolerated where the specification does not put one) and is dropped.
_HEX_TO_DIGITS = str.maketrans({"a": "*", "b": "#", "c": "a", "d": "b", "e": "c", "f": None})


def _decode_digits(data: bytes, count: int) -> str:
    return data.translate(_SWAP_NIBBLES).hex().translate(_HEX_TO_DIGITS)[:count]


def _format_number(digits: str, toa: int) -> str:
    ton = (toa >> 4) & 0x07
    return "+" + digits if ton == 1 and digits else digits


# ---------------------------------------------------------------------------------------------
# Validity period (relative format, TS 23.040 9.2.3.12.1)


def validity_octet(minutes: int) -> int:
    """The relative TP-VP value for at least ``minutes``: rounded up, never shorter than asked."""
    if minutes <= 0:
        raise CodecError("validity", f"must be a positive number of minutes, not {minutes}")
    if minutes <= 12 * 60:
        return max(0, -(-minutes // 5) - 1)
    if minutes <= 24 * 60:
        return 143 + -(-(minutes - 12 * 60) // 30)
    day = 24 * 60
    if minutes <= 30 * day:
        return max(168, 166 + -(-minutes // day))
    week = 7 * day
    if minutes <= 63 * week:
        return max(197, 192 + -(-minutes // week))
    raise CodecError(
        "validity", f"{minutes} minutes is longer than the longest validity period (63 weeks)"
    )


def validity_minutes(octet: int) -> int:
    """How many minutes a relative TP-VP value stands for."""
    if octet <= 143:
        return (octet + 1) * 5
    if octet <= 167:
        return 12 * 60 + (octet - 143) * 30
    if octet <= 196:
        return (octet - 166) * 24 * 60
    return (octet - 192) * 7 * 24 * 60


# ---------------------------------------------------------------------------------------------
# Timestamps


# Every time zone a timestamp can carry (TS 23.040 9.2.3.11: up to 18 hours either way).
_ZONES = {q: timezone(timedelta(minutes=15 * q)) for q in range(-18 * 4, 18 * 4 + 1)}


def _decode_timestamp(raw: bytes, where: str, warnings: list[str]) -> datetime | None:
    try:
        digits = raw[:6].translate(_SWAP_NIBBLES).hex()  # yymmddhhmmss, semi-octets swapped
        if not digits.isdigit():
            raise ValueError("not BCD")
        tz = raw[6]
        if (tz >> 4) > 9:
            raise ValueError("not BCD")
        quarters = (tz & 0x07) * 10 + (tz >> 4)
        if quarters > 18 * 4:
            raise ValueError("time zone out of range")
        return datetime(
            2000 + int(digits[0:2]),
            int(digits[2:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            tzinfo=_ZONES[-quarters if tz & 0x08 else quarters],
        )
    except ValueError as exc:
        warnings.append(f"{where}: timestamp {raw.hex().upper()} is not a valid time ({exc})")
        return None


def _encode_timestamp(ts: datetime) -> bytes:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    offset = ts.utcoffset() or timedelta(0)
    quarters = int(abs(offset.total_seconds()) // 900)

    def swap(v: int) -> int:
        return (v % 10) << 4 | (v // 10)

    tz = swap(quarters) | (0x08 if offset < timedelta(0) else 0)
    return bytes(
        swap(v) for v in (ts.year % 100, ts.month, ts.day, ts.hour, ts.minute, ts.second)
    ) + bytes([tz])


# ---------------------------------------------------------------------------------------------
# Data coding scheme (TS 23.038 section 4)


@dataclass(frozen=True)
class Dcs:
    """What a TP-DCS octet says: alphabet, message class, compression, message waiting."""

    encoding: str
    message_class: int | None = None
    compressed: bool = False
    message_waiting: dict[str, Any] | None = None


_MWI_TYPES = ("voicemail", "fax", "email", "other")


_ALPHABETS = (smstext.GSM7, smstext.DATA8, smstext.UCS2, smstext.GSM7)  # 11 is reserved


def parse_dcs(dcs: int) -> Dcs:
    """Read any TP-DCS value; reserved values fall back to GSM-7 as the specification says."""
    group = dcs >> 4
    if group <= 0x7:  # general data coding (00xx) and automatic deletion (01xx)
        encoding = _ALPHABETS[(dcs >> 2) & 0x03]
        cls = dcs & 0x03 if dcs & 0x10 else None
        return Dcs(encoding, cls, compressed=bool(dcs & 0x20))
    if group in (0xC, 0xD, 0xE):
        mwi = {
            "store": group != 0xC,
            "active": bool(dcs & 0x08),
            "kind": _MWI_TYPES[dcs & 0x03],
        }
        return Dcs(smstext.UCS2 if group == 0xE else smstext.GSM7, None, message_waiting=mwi)
    if group == 0xF:
        return Dcs(smstext.DATA8 if dcs & 0x04 else smstext.GSM7, dcs & 0x03)
    return Dcs(smstext.GSM7)  # 1000-1011: reserved coding groups


def make_dcs(encoding: str, *, flash: bool = False) -> int:
    """The TP-DCS for an outgoing message: general group, class 0 when ``flash``."""
    alphabet = {smstext.GSM7: 0, smstext.DATA8: 1, smstext.UCS2: 2}[encoding]
    return (alphabet << 2) | (0x10 if flash else 0)


# ---------------------------------------------------------------------------------------------
# Reading


class _Reader:
    def __init__(self, data: bytes, base: int) -> None:
        self.data = data
        self.pos = 0
        self.base = base  # octet offset of data[0] in the whole PDU, for messages

    def where(self, what: str) -> str:
        return f"octet {self.base + self.pos} ({what})"

    def byte(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise CodecError(self.where(what), "the PDU ends here")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            have = len(self.data) - self.pos
            raise CodecError(self.where(what), f"needs {n} octets, only {have} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk


def _read_address(r: _Reader, what: str) -> str:
    length = r.byte(f"{what} length")
    toa = r.byte(f"{what} type")
    if length > 40:
        raise CodecError(r.where(what), f"address length {length} semi-octets is impossible")
    raw = r.take((length + 1) // 2, what)
    if (toa >> 4) & 0x07 == 5:  # alphanumeric, GSM-7 packed
        septets = smstext.unpack_septets(raw, length * 4 // 7)
        return smstext.decode_gsm7(septets)
    return _format_number(_decode_digits(raw, length), toa)


def _read_smsc(r: _Reader) -> str | None:
    length = r.byte("SMSC length")
    if length == 0:
        return None
    if length > 12:
        raise CodecError(r.where("SMSC"), f"SMSC length {length} octets is impossible")
    toa = r.byte("SMSC type")
    raw = r.take(length - 1, "SMSC address")
    return _format_number(_decode_digits(raw, 2 * (length - 1)), toa) or None


def _parse_udh(udh: bytes, where: str, warnings: list[str]) -> list[tuple[int, bytes]]:
    elements: list[tuple[int, bytes]] = []
    i = 0
    while i < len(udh):
        if i + 2 > len(udh):
            raise CodecError(where, f"user data header element at {i} is cut short")
        iei, length = udh[i], udh[i + 1]
        if i + 2 + length > len(udh):
            raise CodecError(
                where, f"user data header element 0x{iei:02X} says {length} octets, runs past"
            )
        elements.append((iei, bytes(udh[i + 2 : i + 2 + length])))
        i += 2 + length
    return elements


def _concat_of(elements: list[tuple[int, bytes]], warnings: list[str]) -> Concat | None:
    for iei, data in elements:
        if iei == 0x00 and len(data) == 3:
            ref, total, seq = data
        elif iei == 0x08 and len(data) == 4:
            ref, total, seq = (data[0] << 8) | data[1], data[2], data[3]
        else:
            continue
        if total == 0 or seq == 0 or seq > total:
            warnings.append(f"concatenation header part {seq} of {total} is invalid; ignored")
            return None
        return Concat(ref, total, seq, 8 if iei == 0x00 else 16)
    return None


def _shift_tables(elements: list[tuple[int, bytes]]) -> tuple[int, int]:
    locking = shift = 0
    for iei, data in elements:
        if iei == 0x24 and len(data) == 1:
            shift = data[0]
        elif iei == 0x25 and len(data) == 1:
            locking = data[0]
    return locking, shift


def _read_user_data(
    r: _Reader, udhi: bool, dcs: Dcs, warnings: list[str]
) -> tuple[str, bytes | None, list[tuple[int, bytes]]]:
    udl = r.byte("TP-UDL")
    where = r.where("TP-UD")
    if dcs.encoding == smstext.GSM7 and not dcs.compressed:
        if udl > 160:
            raise CodecError(where, f"TP-UDL {udl} septets is more than 160")
        octets = (udl * 7 + 7) // 8
    else:
        if udl > 140:
            raise CodecError(where, f"TP-UDL {udl} octets is more than 140")
        octets = udl
    ud = r.take(octets, "TP-UD")
    trailing = r.rest()
    if trailing:
        warnings.append(f"{len(trailing)} octets after the user data ignored")
    elements: list[tuple[int, bytes]] = []
    header_octets = 0
    if udhi:
        if not ud:
            raise CodecError(where, "the header flag is set but there is no user data")
        udhl = ud[0]
        header_octets = udhl + 1
        if header_octets > len(ud):
            raise CodecError(where, f"user data header length {udhl} runs past the user data")
        elements = _parse_udh(ud[1:header_octets], where, warnings)
    if dcs.encoding == smstext.GSM7 and not dcs.compressed:
        header_septets = (header_octets * 8 + 6) // 7
        count = udl - header_septets
        if count < 0:
            raise CodecError(where, f"TP-UDL {udl} septets is shorter than the header")
        fill = header_septets * 7 - header_octets * 8
        septets = smstext.unpack_septet_bytes(ud[header_octets:], count, fill)
        locking, shift = _shift_tables(elements)
        return (
            smstext.decode_gsm7(septets, locking=locking, shift=shift, warnings=warnings),
            None,
            elements,
        )
    body = ud[header_octets:]
    if dcs.compressed:
        warnings.append("compressed user data (TS 23.042) is not decompressed")
        return "", bytes(body), elements
    if dcs.encoding == smstext.UCS2:
        return _decode_ucs2(body, warnings), None, elements
    return "", bytes(body), elements


def _decode_ucs2(body: bytes, warnings: list[str]) -> str:
    if len(body) % 2:
        warnings.append("UCS-2 user data has an odd number of octets; the last one is dropped")
        body = body[:-1]
    # UTF-16BE joins surrogate pairs; a lone surrogate becomes U+FFFD instead of an error.
    decoded = body.decode("utf-16-be", errors="replace")
    if "\ufffd" in decoded and b"\xff\xfd" not in body:
        warnings.append("UCS-2 user data has a lone surrogate, shown as U+FFFD")
    return decoded


def _hex_to_bytes(pdu_hex: str) -> bytes:
    if not isinstance(pdu_hex, str):
        raise CodecError("PDU", f"expected a hex string, got {type(pdu_hex).__name__}")
    cleaned = pdu_hex.strip()
    if len(cleaned) % 2:
        raise CodecError("PDU", f"odd number of hex digits ({len(cleaned)})")
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise CodecError("PDU", f"not hexadecimal: {exc}") from exc


def decode(pdu_hex: str, *, smsc: bool = True) -> Deliver | Submit | StatusReport:
    """Decode one PDU in hex. ``smsc=False`` when it starts at the first TPDU octet.

    Raises CodecError (only) when the PDU is malformed; oddities a phone would tolerate are
    decoded and listed in ``warnings``.
    """
    data = _hex_to_bytes(pdu_hex)
    if not data:
        raise CodecError("PDU", "empty")
    r = _Reader(data, 0)
    smsc_number = _read_smsc(r) if smsc else None
    first = r.byte("first octet")
    mti = first & 0x03
    warnings: list[str] = []
    try:
        if mti == 0x00:
            return _decode_deliver(r, first, smsc_number, warnings)
        if mti == 0x01:
            return _decode_submit(r, first, smsc_number, warnings)
        if mti == 0x02:
            return _decode_status_report(r, first, smsc_number, warnings)
    except CodecError:
        raise
    except (ValueError, IndexError, KeyError, OverflowError) as exc:  # pragma: no cover - guard
        raise CodecError(r.where("decoding"), f"internal decoder error: {exc!r}") from exc
    raise CodecError("octet 0 (first octet)", f"message type {mti} is reserved")


def _decode_deliver(r: _Reader, first: int, smsc: str | None, warnings: list[str]) -> Deliver:
    number = _read_address(r, "TP-OA")
    pid = r.byte("TP-PID")
    dcs_octet = r.byte("TP-DCS")
    ts = _decode_timestamp(r.take(7, "TP-SCTS"), r.where("TP-SCTS"), warnings)
    dcs = parse_dcs(dcs_octet)
    text, data, udh = _read_user_data(r, bool(first & 0x40), dcs, warnings)
    return Deliver(
        smsc=smsc,
        number=number,
        text=text,
        data=data,
        encoding=dcs.encoding,
        concat=_concat_of(udh, warnings),
        dcs=dcs_octet,
        pid=pid,
        message_class=dcs.message_class,
        udh=udh,
        warnings=warnings,
        timestamp=ts,
        status_report_indication=bool(first & 0x20),
        more_messages=not (first & 0x04),
        reply_path=bool(first & 0x80),
        message_waiting=dcs.message_waiting,
    )


def _decode_submit(r: _Reader, first: int, smsc: str | None, warnings: list[str]) -> Submit:
    mr = r.byte("TP-MR")
    number = _read_address(r, "TP-DA")
    pid = r.byte("TP-PID")
    dcs_octet = r.byte("TP-DCS")
    vpf = (first >> 3) & 0x03
    validity: int | str | None = None
    if vpf == 0x02:
        validity = validity_minutes(r.byte("TP-VP"))
    elif vpf in (0x01, 0x03):
        raw = r.take(7, "TP-VP")
        if vpf == 0x03:
            ts = _decode_timestamp(raw, r.where("TP-VP"), warnings)
            validity = ts.isoformat() if ts else None
        else:
            validity = "enhanced:" + raw.hex().upper()
    dcs = parse_dcs(dcs_octet)
    text, data, udh = _read_user_data(r, bool(first & 0x40), dcs, warnings)
    return Submit(
        smsc=smsc,
        number=number,
        text=text,
        data=data,
        encoding=dcs.encoding,
        concat=_concat_of(udh, warnings),
        dcs=dcs_octet,
        pid=pid,
        message_class=dcs.message_class,
        udh=udh,
        warnings=warnings,
        reference=mr,
        status_report_request=bool(first & 0x20),
        reject_duplicates=bool(first & 0x04),
        validity=validity,
    )


def _decode_status_report(
    r: _Reader, first: int, smsc: str | None, warnings: list[str]
) -> StatusReport:
    mr = r.byte("TP-MR")
    number = _read_address(r, "TP-RA")
    scts = _decode_timestamp(r.take(7, "TP-SCTS"), r.where("TP-SCTS"), warnings)
    dt = _decode_timestamp(r.take(7, "TP-DT"), r.where("TP-DT"), warnings)
    status = r.byte("TP-ST")
    # TP-PI and what it announces (PID, DCS, user data) are optional and carry nothing a
    # gateway uses; they are not read, so a truncated tail there cannot fail the report.
    category, meaning = status_meaning(status)
    return StatusReport(
        smsc=smsc,
        number=number,
        reference=mr,
        timestamp=scts,
        discharge_time=dt,
        status=status,
        status_meaning=meaning,
        status_category=category,
        warnings=warnings,
    )


# ---------------------------------------------------------------------------------------------
# Writing


def _user_data(
    payload: str | bytes,
    encoding: str,
    udh: bytes,
    *,
    locking: int = 0,
    shift: int = 0,
) -> tuple[int, bytes]:
    """(TP-UDL, TP-UD) for one part, with the header ``udh`` (its UDHL octet included)."""
    if encoding == smstext.GSM7:
        assert isinstance(payload, str)
        septets = smstext.encode_gsm7(payload, locking=locking, shift=shift)
        header_septets = (len(udh) * 8 + 6) // 7
        fill = header_septets * 7 - len(udh) * 8
        # The fill bits that align the text to a septet boundary after the header are the
        # zero low bits of the first text octet.
        body = smstext.pack_septets(septets, fill)
        return header_septets + len(septets), udh + body
    if encoding == smstext.UCS2:
        assert isinstance(payload, str)
        body = payload.encode("utf-16-be")
    else:
        body = bytes(payload)
    return len(udh) + len(body), udh + body


def _concat_udh(reference: int, total: int, seq: int, ref16: bool) -> bytes:
    if ref16:
        return bytes([0x08, 4, reference >> 8, reference & 0xFF, total, seq])
    return bytes([0x00, 3, reference, total, seq])


def _shift_udh(locking: int, shift: int) -> bytes:
    out = b""
    if shift:
        out += bytes([0x24, 1, shift])
    if locking:
        out += bytes([0x25, 1, locking])
    return out


def _with_udhl(elements: bytes) -> bytes:
    return bytes([len(elements)]) + elements if elements else b""


def _segments(
    payload: str | bytes, encoding: str, ref16: bool, max_parts: int, locking: int, shift: int
) -> tuple[str, list[str] | list[bytes]]:
    if isinstance(payload, bytes | bytearray):
        data = bytes(payload)
        single = smstext.capacity(smstext.DATA8, 0)
        if len(data) <= single:
            chunks = [data]
        else:
            cap = smstext.capacity(
                smstext.DATA8, smstext.CONCAT16_UDH_OCTETS if ref16 else smstext.CONCAT8_UDH_OCTETS
            )
            chunks = [data[i : i + cap] for i in range(0, len(data), cap)]
        if len(chunks) > max_parts:
            raise MessageTooLong(len(chunks), len(data), smstext.DATA8, max_parts)
        return smstext.DATA8, chunks
    return smstext.segments_to_send(
        payload, encoding=encoding, ref16=ref16, max_parts=max_parts, locking=locking, shift=shift
    )


def _new_reference(ref16: bool) -> int:
    return secrets.randbelow(0x10000 if ref16 else 0x100)


def encode_submit(
    number: str,
    text: str | bytes,
    *,
    smsc: str | None = None,
    status_report: bool = False,
    validity_minutes: int | None = None,
    reject_duplicates: bool = False,
    flash: bool = False,
    encoding: str = "auto",
    ref16: bool = False,
    reference: int | None = None,
    max_parts: int = smstext.DEFAULT_MAX_PARTS,
    message_reference: int = 0,
    locking: int = 0,
    shift: int = 0,
) -> list[SubmitPart]:
    """Encode a message to ``number`` as one SMS-SUBMIT per part.

    ``text`` as bytes is sent as 8-bit data. ``reference`` is the concatenation reference
    (8-bit, or 16-bit with ``ref16``); None picks a random one, but a sender that must not repeat
    references for a recipient passes one from :class:`gateway.modem.refs.ReferenceAllocator`.
    ``locking``/``shift`` select national language tables (TS 23.038 annex A) for GSM-7.
    Raises CodecError for a bad number, validity or encoding, MessageTooLong past ``max_parts``.
    """
    da = encode_address(number)
    if da[1] == TOA_ALPHANUMERIC:
        raise CodecError("number", f"{number!r} is not a phone number; cannot send to it")
    sca = encode_smsc(smsc)
    vp = b"" if validity_minutes is None else bytes([validity_octet(validity_minutes)])
    enc, segments = _segments(text, encoding, ref16, max_parts, locking, shift)
    total = len(segments)
    if total > 1:
        if reference is None:
            reference = _new_reference(ref16)
        limit = 0xFFFF if ref16 else 0xFF
        if not 0 <= reference <= limit:
            raise CodecError("reference", f"{reference} is not a {16 if ref16 else 8}-bit value")
    national = _shift_udh(locking, shift) if enc == smstext.GSM7 else b""
    dcs = make_dcs(enc, flash=flash)
    first = 0x01
    if total > 1 or national:
        first |= 0x40  # TP-UDHI: every part has a header
    if status_report:
        first |= 0x20
    if vp:
        first |= 0x10  # TP-VPF = relative
    if reject_duplicates:
        first |= 0x04
    # Everything before TP-UDL is the same in every part.
    head = bytes([first, message_reference & 0xFF]) + da + bytes([0x00, dcs]) + vp
    sca_hex = sca.hex().upper()
    parts = []
    for seq, segment in enumerate(segments, start=1):
        elements = national
        if total > 1:
            assert reference is not None
            elements = _concat_udh(reference, total, seq, ref16) + national
        udl, ud = _user_data(segment, enc, _with_udhl(elements), locking=locking, shift=shift)
        tpdu = head + bytes([udl]) + ud
        parts.append(
            SubmitPart(
                pdu=sca_hex + tpdu.hex().upper(),
                length=len(tpdu),
                seq=seq,
                total=total,
                reference=reference if total > 1 else None,
                text=segment if isinstance(segment, str) else segment.hex().upper(),
            )
        )
    return parts


def encode_deliver(
    sender: str,
    text: str | bytes,
    *,
    timestamp: datetime | None = None,
    smsc: str | None = "+10000000000",
    encoding: str = "auto",
    ref16: bool = False,
    reference: int | None = None,
    status_report_indication: bool = False,
    max_parts: int = 255,
    flash: bool = False,
) -> list[str]:
    """SMS-DELIVER PDUs in hex (with SMSC field), one per part, as a network hands them to a
    modem. ``sender`` may be alphanumeric. Used by the simulator and by tests."""
    oa = encode_address(sender)
    sca = encode_smsc(smsc)
    ts = _encode_timestamp(timestamp or datetime.now(UTC))
    enc, segments = _segments(text, encoding, ref16, max_parts, 0, 0)
    total = len(segments)
    if total > 1 and reference is None:
        reference = _new_reference(ref16)
    dcs = make_dcs(enc, flash=flash)
    out = []
    for seq, segment in enumerate(segments, start=1):
        udh = b""
        if total > 1:
            assert reference is not None
            udh = _with_udhl(_concat_udh(reference, total, seq, ref16))
        udl, ud = _user_data(segment, enc, udh)
        first = 0x04  # TP-MMS: no more messages waiting in the service centre
        if udh:
            first |= 0x40
        if status_report_indication:
            first |= 0x20
        tpdu = bytes([first]) + oa + bytes([0x00, dcs]) + ts + bytes([udl]) + ud
        out.append((sca + tpdu).hex().upper())
    return out


def encode_status_report(
    recipient: str,
    message_reference: int,
    status: int,
    *,
    submitted: datetime,
    discharged: datetime,
    smsc: str | None = "+10000000000",
) -> str:
    """An SMS-STATUS-REPORT in hex (with SMSC field), as a network returns it to the sender."""
    first = 0x02 | 0x04  # TP-MMS: no more messages
    tpdu = (
        bytes([first, message_reference & 0xFF])
        + encode_address(recipient)
        + _encode_timestamp(submitted)
        + _encode_timestamp(discharged)
        + bytes([status & 0xFF])
    )
    return (encode_smsc(smsc) + tpdu).hex().upper()
