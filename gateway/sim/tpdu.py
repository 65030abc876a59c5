"""Just enough TPDU handling for a network: read the routing fields of an SMS-SUBMIT and turn it
into the SMS-DELIVER the recipient gets, user data copied octet for octet.

The codec (``gateway.modem.pdu``) decodes texts; this module never looks inside the user data,
which is what a real SMSC does too: a part keeps its UDH (concatenation, language shifts), its DCS
and its 8-bit payload unchanged on the way through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.modem.alphabets import DEFAULT_LOCKING


class TpduError(ValueError):
    """The PDU written after AT+CMGS is not a well-formed SMS-SUBMIT."""


@dataclass(frozen=True)
class SubmitHeader:
    """The fields of an SMS-SUBMIT a network needs to route it."""

    first_octet: int
    reference: int  # TP-MR as written by the driver (the network answers with its own)
    destination: str  # "+E164" when the type of number is international, else the digits
    pid: int
    dcs: int
    udhi: bool
    status_report_request: bool
    user_data: bytes  # TP-UDL followed by TP-UD, unchanged
    tpdu_length: int


def encode_address_digits(number: str) -> tuple[int, int, bytes]:
    """(digit count, type of address, semi-octets) for a phone number like "+15551230001"."""
    toa = 0x91 if number.startswith("+") else 0x81
    digits = number.lstrip("+")
    if not digits.isdigit():
        raise TpduError(f"phone number {number!r} has characters other than digits")
    padded = digits + ("F" if len(digits) % 2 else "")
    semi = bytes.fromhex("".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2)))
    return len(digits), toa, semi


def encode_smsc(number: str | None) -> bytes:
    """The SMSC field that starts a PDU as the modem shows it ("00" when there is none)."""
    if not number:
        return b"\x00"
    _, toa, semi = encode_address_digits(number)
    return bytes([len(semi) + 1, toa]) + semi


def _bcd(value: int) -> int:
    return ((value % 10) << 4) | (value // 10)


def encode_scts(when: datetime) -> bytes:
    """A 7-octet service centre time stamp (swapped BCD, time zone in quarters of an hour)."""
    offset = when.utcoffset()
    quarters = int(offset.total_seconds() // 900) if offset is not None else 0
    tz = _bcd(abs(quarters))
    if quarters < 0:
        tz |= 0x08  # the sign bit sits in the swapped nibble
    fields = (when.year % 100, when.month, when.day, when.hour, when.minute, when.second)
    return bytes(_bcd(v) for v in fields) + bytes([tz])


def parse_submit(pdu_hex: str, *, smsc: bool = True) -> SubmitHeader:
    """Read the routing fields of an SMS-SUBMIT written after AT+CMGS (hex, SMSC field first)."""
    try:
        raw = bytes.fromhex(pdu_hex.strip())
    except ValueError as exc:
        raise TpduError(f"PDU is not hexadecimal: {exc}") from exc
    pos = 0
    try:
        if smsc:
            pos = 1 + raw[0]
        start = pos
        first = raw[pos]
        if first & 0x03 != 0x01:
            raise TpduError(f"first octet {first:02X} is not an SMS-SUBMIT (TP-MTI must be 01)")
        reference = raw[pos + 1]
        digits = raw[pos + 2]
        toa = raw[pos + 3]
        addr_octets = (digits + 1) // 2
        semi = raw[pos + 4 : pos + 4 + addr_octets].hex().upper()
        if len(semi) != addr_octets * 2:
            raise TpduError("destination address runs past the end of the PDU")
        number = "".join(semi[i + 1] + semi[i] for i in range(0, len(semi), 2))[:digits]
        if toa & 0x70 == 0x50:
            raise TpduError("destination address is alphanumeric; a handset cannot be one")
        destination = ("+" if toa & 0x70 == 0x10 else "") + number
        pos += 4 + addr_octets
        pid, dcs = raw[pos], raw[pos + 1]
        pos += 2
        vpf = (first >> 3) & 0x03
        pos += {0: 0, 2: 1, 1: 7, 3: 7}[vpf]
        udl = raw[pos]
        user_data = raw[pos:]
        # The user data must hold UDL septets (7-bit alphabet) or octets (8-bit, UCS-2).
        need = (udl * 7 + 7) // 8 if _is_septets(dcs) else udl
        if len(user_data) - 1 != need:
            raise TpduError(
                f"TP-UDL says {udl} but {len(user_data) - 1} octets of user data follow"
            )
    except IndexError as exc:
        raise TpduError("PDU ends before the SMS-SUBMIT is complete") from exc
    return SubmitHeader(
        first_octet=first,
        reference=reference,
        destination=destination,
        pid=pid,
        dcs=dcs,
        udhi=bool(first & 0x40),
        status_report_request=bool(first & 0x20),
        user_data=user_data,
        tpdu_length=len(raw) - start,
    )


def _is_septets(dcs: int) -> bool:
    """Whether TP-UDL counts septets (GSM 7-bit) for this data coding scheme (TS 23.038 4)."""
    group = dcs & 0xF0
    if group < 0x80:  # general data coding (00xx) and automatic deletion (01xx)
        return dcs & 0x0C == 0
    if group in (0xC0, 0xD0):  # message waiting, GSM 7-bit
        return True
    if group == 0xF0:  # data coding / message class: bit 2 picks 8-bit
        return not dcs & 0x04
    return group != 0xE0  # E0: message waiting, UCS-2


def submit_to_deliver(
    submit: SubmitHeader, sender: str, timestamp: datetime, smsc: str | None
) -> str:
    """The SMS-DELIVER (hex, with SMSC field) carrying ``submit``'s user data to its recipient."""
    first = 0x04  # TP-MTI 00 (deliver), TP-MMS: no more messages waiting
    if submit.udhi:
        first |= 0x40
    digits, toa, semi = encode_address_digits(sender)
    tpdu = (
        bytes([first, digits, toa])
        + semi
        + bytes([submit.pid, submit.dcs])
        + encode_scts(timestamp)
        + submit.user_data
    )
    return (encode_smsc(smsc) + tpdu).hex().upper()


def pack_gsm7(text: str) -> str:
    """Text packed as GSM 7-bit septets, in hex (Huawei's USSD strings); unknown characters -> ?."""
    septets = [DEFAULT_LOCKING.find(ch) if ch in DEFAULT_LOCKING else 0x3F for ch in text]
    value, bits, out = 0, 0, bytearray()
    for s in septets:
        value |= s << bits
        bits += 7
        while bits >= 8:
            out.append(value & 0xFF)
            value >>= 8
            bits -= 8
    if bits:
        out.append(value & 0xFF)
    return out.hex().upper()


def unpack_gsm7(hex_text: str) -> str:
    """The inverse of :func:`pack_gsm7`; raises ValueError on text that is not hex."""
    data = bytes.fromhex(hex_text)
    count = len(data) * 8 // 7
    value = int.from_bytes(data, "little")
    chars = [DEFAULT_LOCKING[(value >> (7 * i)) & 0x7F] for i in range(count)]
    # A trailing zero septet that only filled the last octet is padding, not '@'.
    if chars and chars[-1] == "@" and len(data) * 8 % 7 == 0 and count * 7 > 0:
        chars.pop()
    return "".join(chars)
