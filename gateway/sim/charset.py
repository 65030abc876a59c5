"""The TE character set of AT+CSCS (TS 27.007 section 5.5): how a simulated modem writes and reads
text strings such as a USSD request and its answer (TS 27.007 section 7.15).

``IRA`` is plain ASCII; ``GSM`` is the GSM 7-bit default alphabet, one septet per byte;
``UCS2`` is UTF-16 big-endian written as hex digits, four per code unit (so an emoji, a
surrogate pair, takes eight).
"""

from __future__ import annotations

from gateway.modem.errors import CodecError
from gateway.modem.text import decode_gsm7, encode_gsm7

CHARSETS = ("IRA", "GSM", "UCS2")


class CharsetError(ValueError):
    """A string from the client is not valid in the character set it chose with AT+CSCS."""


def to_te(text: str, charset: str) -> str:
    """``text`` as the modem writes it to a client that chose ``charset``; a character the set
    does not have becomes ``?`` (what modems do)."""
    if charset == "UCS2":
        return text.encode("utf-16-be").hex().upper()
    if charset == "GSM":
        septets: list[int] = []
        for ch in text:
            try:
                septets += encode_gsm7(ch)
            except CodecError:
                septets.append(0x3F)
        return "".join(chr(s) for s in septets)
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)


def from_te(value: str, charset: str) -> str:
    """A string a client wrote in ``charset`` as text; CharsetError when it is not valid there."""
    if charset == "UCS2":
        if len(value) % 4:
            raise CharsetError(f"UCS2 string {value!r} is not a multiple of 4 hex digits")
        try:
            return bytes.fromhex(value).decode("utf-16-be")
        except ValueError as exc:
            raise CharsetError(f"UCS2 string {value!r} is not UTF-16 hex: {exc}") from None
    if charset == "GSM":
        if any(ord(ch) > 0x7F for ch in value):
            raise CharsetError(f"GSM string {value!r} has a byte above 0x7F")
        return decode_gsm7(bytes(ord(ch) for ch in value))
    return value
