"""Text analysis and segmentation for SMS: which alphabet a text needs, how many parts it takes,
and where those parts begin and end.

These are the rules that the browser's character counter repeats in JavaScript
(``gateway/web/static/js/smscount.js``); both are checked against ``tests/vectors/count.json``.

- GSM-7 (TS 23.038 default alphabet) is chosen when every character is in the default table or
  its extension table; extension characters cost two septets (escape + code). Otherwise UCS-2,
  where a character costs one UTF-16 unit, or two for an astral character (a surrogate pair).
- One SMS holds 140 octets of user data. With a user data header (concatenation, shift tables)
  the rest holds ``(140 - header octets) * 8 // 7`` septets or ``(140 - header octets) // 2``
  UTF-16 units: 160/70 alone, 153/67 with an 8-bit concatenation reference, 152/66 with a 16-bit
  one.
- A part never ends between an escape and its character, nor inside a surrogate pair: both are
  one atomic *unit group* here. A grapheme cluster (an emoji with its skin tone, a flag, a ZWJ
  family, a letter with its combining accents) is moved whole to the next part when it does not
  fit in what is left of the current part but fits in a part of its own.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from .alphabets import (
    DEFAULT_LOCKING,
    DEFAULT_SINGLE_SHIFT,
    ESC,
    LOCKING_SHIFT,
    SINGLE_SHIFT,
    UNDEFINED,
)
from .errors import CodecError, MessageTooLong

GSM7 = "gsm7"
UCS2 = "ucs2"
DATA8 = "8bit"
ENCODINGS = (GSM7, UCS2)

USER_DATA_OCTETS = 140
CONCAT8_UDH_OCTETS = 6  # UDHL + IEI 00, length 3, ref, total, seq
CONCAT16_UDH_OCTETS = 7  # UDHL + IEI 08, length 4, ref(2), total, seq
SHIFT_IE_OCTETS = 3  # IEI 24/25, length 1, language
DEFAULT_MAX_PARTS = 10


def _reverse(locking: str, shift: dict[int, str]) -> dict[str, tuple[int, ...]]:
    table: dict[str, tuple[int, ...]] = {}
    for code, char in shift.items():
        table.setdefault(char, (0x1B, code))
    for code, char in enumerate(locking):
        if char not in (ESC, UNDEFINED):
            table[char] = (code,)  # the locking table wins over an escape for the same char
    return table


_DEFAULT_REVERSE = _reverse(DEFAULT_LOCKING, DEFAULT_SINGLE_SHIFT)


def _reverse_for(locking: int, shift: int) -> dict[str, tuple[int, ...]]:
    if locking == 0 and shift == 0:
        return _DEFAULT_REVERSE
    try:
        lock_table = LOCKING_SHIFT[locking]
        shift_table = SINGLE_SHIFT[shift]
    except KeyError as exc:
        raise CodecError("national language", f"no table for language id {exc.args[0]}") from exc
    return _reverse(lock_table, shift_table)


def gsm7_septets(char: str, *, locking: int = 0, shift: int = 0) -> tuple[int, ...] | None:
    """The septets that encode ``char`` in the given tables, or None when it has none."""
    return _reverse_for(locking, shift).get(char)


def is_gsm7(text: str, *, locking: int = 0, shift: int = 0) -> bool:
    """True when every character of ``text`` is in the GSM-7 tables."""
    table = _reverse_for(locking, shift)
    return all(ch in table for ch in text)


def encode_gsm7(text: str, *, locking: int = 0, shift: int = 0) -> list[int]:
    """Turn text into septets (escapes included); raises CodecError on a character with none."""
    table = _reverse_for(locking, shift)
    out: list[int] = []
    for pos, ch in enumerate(text):
        septets = table.get(ch)
        if septets is None:
            raise CodecError(
                f"character {pos}", f"{ch!r} (U+{ord(ch):04X}) is not in the GSM 7-bit alphabet"
            )
        out.extend(septets)
    return out


def decode_gsm7(
    septets: list[int] | bytes,
    *,
    locking: int = 0,
    shift: int = 0,
    warnings: list[str] | None = None,
) -> str:
    """Turn septets into text, leniently as TS 23.038 asks of a receiver.

    An escape followed by a code the single-shift table does not define shows the locking-table
    character for that code; an escape as the last septet, or two escapes in a row, shows a space.
    Each such oddity is appended to ``warnings`` when given.
    """
    lock_table = LOCKING_SHIFT.get(locking, DEFAULT_LOCKING)
    shift_table = SINGLE_SHIFT.get(shift, DEFAULT_SINGLE_SHIFT)
    out: list[str] = []
    i = 0
    n = len(septets)
    while i < n:
        code = septets[i] & 0x7F
        if code == 0x1B:
            if i + 1 >= n:
                out.append(" ")
                if warnings is not None:
                    warnings.append(f"septet {i}: escape as the last septet, shown as a space")
                break
            nxt = septets[i + 1] & 0x7F
            char = shift_table.get(nxt)
            if char is None:
                if nxt == 0x1B:
                    char = " "
                else:
                    char = lock_table[nxt]
                    if char == UNDEFINED:
                        char = " "
                if warnings is not None:
                    warnings.append(f"septet {i}: escape followed by undefined code 0x{nxt:02X}")
            out.append(char)
            i += 2
            continue
        char = lock_table[code]
        if char == UNDEFINED:
            char = " "
            if warnings is not None:
                warnings.append(f"septet {i}: code 0x{code:02X} undefined in this table")
        out.append(char)
        i += 1
    return "".join(out)


def pack_septets(septets: list[int], fill_bits: int = 0) -> bytes:
    """Pack septets into octets, least significant bit first, after ``fill_bits`` zero bits."""
    acc = 0
    nbits = fill_bits
    out = bytearray()
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """Read ``count`` septets from ``data``, skipping ``fill_bits`` leading bits.

    The caller checks that ``data`` is long enough; missing bits read as zero.
    """
    value = int.from_bytes(data, "little")
    value >>= fill_bits
    return [(value >> (7 * i)) & 0x7F for i in range(count)]


# ---------------------------------------------------------------------------------------------
# Grapheme clusters: a small, explicit rule set that the JavaScript counter repeats exactly
# (rather than Intl.Segmenter and a Python library, whose Unicode versions differ).

_ZWJ = "\u200d"


def _is_extend(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or cp == 0x200D
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
        or 0xFE00 <= cp <= 0xFE0F
    )


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def clusters(text: str) -> list[str]:
    """Split text into grapheme clusters by the rules above (CR LF; base + extenders;
    anything joined by ZWJ; regional-indicator pairs)."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        start = i
        ch = text[i]
        i += 1
        if ch == "\r" and i < n and text[i] == "\n":
            i += 1
        elif _is_regional(ch) and i < n and _is_regional(text[i]):
            i += 1
        if ch not in "\r\n":
            while i < n:
                if text[i - 1] == _ZWJ:
                    i += 1  # whatever follows a zero-width joiner belongs to the cluster
                elif _is_extend(text[i]):
                    i += 1
                else:
                    break
        out.append(text[start:i])
    return out


# ---------------------------------------------------------------------------------------------
# Capacity and segmentation


def capacity(encoding: str, udh_octets: int) -> int:
    """Units (septets, UTF-16 units or octets) left for text after a header of ``udh_octets``."""
    free = USER_DATA_OCTETS - udh_octets
    if encoding == GSM7:
        return free * 8 // 7
    if encoding == UCS2:
        return free // 2
    return free


def _utf16_units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def char_units(ch: str, encoding: str, *, locking: int = 0, shift: int = 0) -> int:
    """What one character costs in the given encoding."""
    if encoding == GSM7:
        septets = gsm7_septets(ch, locking=locking, shift=shift)
        if septets is None:
            raise CodecError("text", f"{ch!r} (U+{ord(ch):04X}) is not in the GSM 7-bit alphabet")
        return len(septets)
    return _utf16_units(ch)


def text_units(text: str, encoding: str, *, locking: int = 0, shift: int = 0) -> int:
    """Total units of ``text`` in ``encoding``."""
    if encoding == GSM7:
        return len(encode_gsm7(text, locking=locking, shift=shift))
    return sum(_utf16_units(ch) for ch in text)


def _segment(text: str, cap: int, cost) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for cluster in clusters(text):
        size = sum(cost(ch) for ch in cluster)
        if used + size <= cap:
            current.append(cluster)
            used += size
            continue
        if size <= cap:
            parts.append("".join(current))
            current, used = [cluster], size
            continue
        # A cluster longer than a whole part: split it between characters, never inside one.
        for ch in cluster:
            c = cost(ch)
            if used + c > cap:
                parts.append("".join(current))
                current, used = [], 0
            current.append(ch)
            used += c
    parts.append("".join(current))
    return parts


def choose_encoding(text: str, *, locking: int = 0, shift: int = 0) -> str:
    """GSM-7 when every character is in the tables, else UCS-2."""
    return GSM7 if is_gsm7(text, locking=locking, shift=shift) else UCS2


def _shift_udh_octets(locking: int, shift: int) -> int:
    return SHIFT_IE_OCTETS * ((locking != 0) + (shift != 0))


def plan(
    text: str,
    encoding: str,
    *,
    ref16: bool = False,
    locking: int = 0,
    shift: int = 0,
) -> tuple[list[str], int, int]:
    """Split text already known to fit ``encoding``: (segments, total units, capacity of a part).

    The capacity returned is that of the last part, which is what "remaining" is counted from.
    """
    if encoding == GSM7:
        national = _shift_udh_octets(locking, shift)

        def cost(ch: str) -> int:
            return char_units(ch, GSM7, locking=locking, shift=shift)
    else:
        national = 0
        cost = _utf16_units
    units = sum(cost(ch) for ch in text)
    single = capacity(encoding, national + (1 if national else 0))
    if units <= single:
        return [text], units, single
    concat = CONCAT16_UDH_OCTETS if ref16 else CONCAT8_UDH_OCTETS
    cap = capacity(encoding, concat + national)
    return _segment(text, cap, cost), units, cap


def split(
    text: str, *, encoding: str = "auto", ref16: bool = False, locking: int = 0, shift: int = 0
) -> list[str]:
    """The text of each part, in order; joined they give back ``text``."""
    if encoding == "auto":
        encoding = choose_encoding(text, locking=locking, shift=shift)
    return plan(text, encoding, ref16=ref16, locking=locking, shift=shift)[0]


# ---------------------------------------------------------------------------------------------
# Look-alike characters a user may accept replacing to stay in GSM-7.

_LOOKALIKES: dict[str, str] = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u00b4": "'",
    "`": "'",
    "\u2039": "'",
    "\u203a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u2022": "*",
    "\u00b7": ".",
    "\u00a0": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2004": " ",
    "\u2005": " ",
    "\u2006": " ",
    "\u2007": " ",
    "\u2008": " ",
    "\u2009": " ",
    "\u200a": " ",
    "\u202f": " ",
    "\u205f": " ",
    "\u3000": " ",
    "\t": " ",
    "\u200b": "",
    "\u200c": "",
    "\u2060": "",
    "\ufeff": "",
    "\u00ad": "",
    "\u2028": "\n",
    "\u2029": "\n",
    "\u00e7": "Ç",
    "\u2122": "TM",
    "\u00a9": "(c)",
    "\u00ae": "(R)",
}


def lookalike(ch: str) -> str | None:
    """A GSM-7 replacement for a character that has none, or None.

    Typographic punctuation and spaces map to their plain forms; an accented letter maps to its
    base letter when that is in GSM-7 (á → a), unless GSM-7 has the accented letter itself.
    """
    if ch in _DEFAULT_REVERSE:
        return None
    if ch in _LOOKALIKES:
        return _LOOKALIKES[ch]
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    if base and base != ch and all(c in _DEFAULT_REVERSE for c in base):
        return base
    return None


def transliterate(text: str) -> str:
    """Replace every character that has a GSM-7 look-alike; others are left as they are."""
    out = []
    for ch in text:
        rep = lookalike(ch)
        out.append(ch if rep is None else rep)
    return "".join(out)


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnicodeChar:
    """A character that forced UCS-2, its position (in code points) and its look-alike."""

    char: str
    position: int
    replacement: str | None

    def to_json(self) -> dict:
        return {
            "char": self.char,
            "position": self.position,
            "codepoint": f"U+{ord(self.char):04X}",
            "replacement": self.replacement,
        }


@dataclass(frozen=True)
class Analysis:
    """What a text costs as SMS: the numbers a counter shows and the parts a sender sends."""

    text: str
    encoding: str
    parts: int
    units: int
    remaining: int
    part_capacity: int
    segments: list[str]
    unicode_chars: list[UnicodeChar] = field(default_factory=list)
    suggestion: str | None = None
    max_parts: int = DEFAULT_MAX_PARTS

    @property
    def too_long(self) -> bool:
        return self.parts > self.max_parts

    def check(self) -> Analysis:
        """Return self, or raise MessageTooLong when the text needs more than max_parts."""
        if self.too_long:
            raise MessageTooLong(self.parts, self.units, self.encoding, self.max_parts)
        return self

    def to_json(self) -> dict:
        """The stable JSON shape of ``gateway sms count`` (documented in docs/cli.md)."""
        return {
            "encoding": self.encoding,
            "parts": self.parts,
            "units": self.units,
            "remaining": self.remaining,
            "part_capacity": self.part_capacity,
            "unicode_chars": [u.to_json() for u in self.unicode_chars],
            "suggestion": self.suggestion,
            "max_parts": self.max_parts,
            "too_long": self.too_long,
            "segments": list(self.segments),
        }


def _unicode_chars(text: str) -> Iterator[UnicodeChar]:
    for pos, ch in enumerate(text):
        if ch not in _DEFAULT_REVERSE:
            yield UnicodeChar(ch, pos, lookalike(ch))


def _check_utf16(text: str) -> None:
    # A lone surrogate (JSON can carry "\ud83d") is no character and has no UTF-16 form; say so
    # here rather than let the encoder fail later with a UnicodeEncodeError.
    try:
        text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise CodecError(
            f"character {exc.start}",
            f"U+{ord(text[exc.start]):04X} is a lone surrogate, not a character",
        ) from exc


def analyze(
    text: str,
    *,
    encoding: str = "auto",
    ref16: bool = False,
    max_parts: int = DEFAULT_MAX_PARTS,
    locking: int = 0,
    shift: int = 0,
) -> Analysis:
    """Count and split ``text`` as it would be sent (never raises for length; see ``check``).

    ``encoding`` is "auto", "gsm7" or "ucs2"; "gsm7" on a text with a character outside the
    tables raises CodecError naming the character.
    """
    if encoding not in ("auto", GSM7, UCS2):
        raise CodecError("encoding", f"unknown encoding {encoding!r}; use auto, gsm7 or ucs2")
    if max_parts < 1:
        raise CodecError("max_parts", f"must be at least 1, not {max_parts}")
    if encoding == "auto":
        encoding = choose_encoding(text, locking=locking, shift=shift)
    elif encoding == GSM7:
        encode_gsm7(text, locking=locking, shift=shift)  # raises, naming the first bad character
    if encoding == UCS2:
        _check_utf16(text)
    segments, units, cap = plan(text, encoding, ref16=ref16, locking=locking, shift=shift)
    last_units = text_units(segments[-1], encoding, locking=locking, shift=shift)
    forced = list(_unicode_chars(text)) if encoding == UCS2 else []
    suggestion = None
    if forced and any(u.replacement is not None for u in forced):
        suggestion = transliterate(text)
    return Analysis(
        text=text,
        encoding=encoding,
        parts=len(segments),
        units=units,
        remaining=cap - last_units,
        part_capacity=cap,
        segments=segments,
        unicode_chars=forced,
        suggestion=suggestion,
        max_parts=max_parts,
    )
