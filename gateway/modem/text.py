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

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate, chain
from operator import or_

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
# The default tables in forms the C-level string functions take: a str.translate map from a
# character to its septets written as code points, a pattern that finds a character outside
# GSM-7, and the characters that cost an escape.
_DEFAULT_TRANSLATE = {ord(ch): "".join(map(chr, code)) for ch, code in _DEFAULT_REVERSE.items()}
_NOT_DEFAULT_GSM7 = re.compile("[^" + "".join(map(re.escape, _DEFAULT_REVERSE)) + "]")
_DEFAULT_EXTENSION = tuple(ch for ch, code in _DEFAULT_REVERSE.items() if len(code) == 2)
_BITS7 = [format(i, "07b") for i in range(128)]
_LANES_FROM = 64  # septets; below this a shift per septet is cheaper than the lanes' set-up
_DEFAULT_DECODE = dict(enumerate(DEFAULT_LOCKING))
_LOW7 = bytes(b & 0x7F for b in range(256))
_SHR = [bytes(b >> s for b in range(256)) for s in range(8)]  # b >> s
_SHL7 = [bytes((b << k) & 0x7F for b in range(256)) for k in range(8)]  # (b << k) & 0x7F


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
    if locking == 0 and shift == 0:
        return _NOT_DEFAULT_GSM7.search(text) is None
    return set(text) <= _reverse_for(locking, shift).keys()


def _not_gsm7(text: str, table: dict[str, tuple[int, ...]]) -> CodecError:
    pos, ch = next((pos, ch) for pos, ch in enumerate(text) if ch not in table)
    return CodecError(
        f"character {pos}", f"{ch!r} (U+{ord(ch):04X}) is not in the GSM 7-bit alphabet"
    )


def encode_gsm7(text: str, *, locking: int = 0, shift: int = 0) -> list[int]:
    """Turn text into septets (escapes included); raises CodecError on a character with none."""
    if locking == 0 and shift == 0:
        if _NOT_DEFAULT_GSM7.search(text) is not None:
            raise _not_gsm7(text, _DEFAULT_REVERSE)
        return list(text.translate(_DEFAULT_TRANSLATE).encode("ascii"))
    table = _reverse_for(locking, shift)
    try:
        return list(chain.from_iterable(map(table.__getitem__, text)))
    except KeyError:
        raise _not_gsm7(text, table) from None


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
    if isinstance(septets, bytes | bytearray):
        raw = bytes(septets)
    else:
        try:
            raw = bytes(septets)
        except ValueError:  # a value above 255: only its low seven bits count
            raw = bytes(s & 0x7F for s in septets)
    if not raw.isascii():
        raw = raw.translate(_LOW7)
    if b"\x1b" not in raw and (lock_table is DEFAULT_LOCKING or UNDEFINED not in lock_table):
        # The common case, no escapes and nothing undefined: one C-level table lookup.
        table = _DEFAULT_DECODE if lock_table is DEFAULT_LOCKING else dict(enumerate(lock_table))
        return raw.decode("ascii").translate(table)
    septets = raw
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
    # Build one integer with the first septet in the lowest bits (from its binary digits, last
    # septet first), then write it little-endian.
    if septets and max(septets) > 0x7F:
        septets = [s & 0x7F for s in septets]
    value = int("".join(map(_BITS7.__getitem__, reversed(septets))) or "0", 2)
    nbits = fill_bits + 7 * len(septets)
    return (value << fill_bits).to_bytes((nbits + 7) // 8, "little")


def unpack_septet_bytes(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """Like :func:`unpack_septets`, as one byte per septet (what :func:`decode_gsm7` reads
    fastest)."""
    if count <= _LANES_FROM:
        return bytes(unpack_septets(data, count, fill_bits))
    need = (7 * count + fill_bits + 7) // 8
    raw = bytes(data[:need]).ljust(need, b"\0")  # missing bits read as zero
    if fill_bits:
        raw = (int.from_bytes(raw, "little") >> fill_bits).to_bytes(need, "little")
    # Eight septets fill seven octets; septet k of each group is made of the top k bits of
    # octet k-1 and the low 7-k bits of octet k. Each of the eight lanes is computed for all
    # groups at once with bytes.translate and map, then the lanes are interleaved.
    groups = -(-count // 8)
    n = groups * 7
    raw = raw.ljust(n, b"\0")
    lanes = [raw[k:n:7] for k in range(7)]
    out = bytearray(groups * 8)
    out[0::8] = lanes[0].translate(_SHL7[0])
    for k in range(1, 7):
        out[k::8] = bytes(
            map(or_, lanes[k - 1].translate(_SHR[8 - k]), lanes[k].translate(_SHL7[k]))
        )
    out[7::8] = lanes[6].translate(_SHR[1])
    return bytes(out[:count])


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """Read ``count`` septets from ``data``, skipping ``fill_bits`` leading bits.

    The caller checks that ``data`` is long enough; missing bits read as zero.
    """
    if count > _LANES_FROM:
        return list(unpack_septet_bytes(data, count, fill_bits))
    value = int.from_bytes(data[: (7 * count + fill_bits + 7) // 8], "little") >> fill_bits
    return [(value >> (7 * i)) & 0x7F for i in range(max(count, 0))]


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


def _costs(text: str, encoding: str, *, locking: int = 0, shift: int = 0) -> dict[str, int]:
    """What each distinct character of ``text`` costs in ``encoding`` (CodecError if it has none).

    Working per distinct character keeps counting and splitting fast on long texts.
    """
    chars = set(text)
    if encoding == GSM7:
        table = _reverse_for(locking, shift)
        if not chars <= table.keys():
            raise _not_gsm7(text, table)
        return {ch: len(table[ch]) for ch in chars}
    if not text or max(text) <= "\uffff":
        return dict.fromkeys(chars, 1)
    return {ch: 2 if ord(ch) > 0xFFFF else 1 for ch in chars}


@lru_cache(maxsize=4096)
def _joins_cluster(ch: str) -> bool:
    # Memoised: a pure function of one character, asked once per distinct character of a text.
    return _is_extend(ch) or _is_regional(ch)


def _segment(text: str, cap: int, costs: dict[str, int]) -> list[str]:
    if any(map(_joins_cluster, costs)):
        return _segment_clusters(text, cap, costs)
    # No character that joins a cluster: every character is a cluster of its own, except CR LF.
    # Find each cut by bisecting the running total of costs (or by counting, when all cost 1).
    uniform = max(costs.values()) == 1
    totals = [] if uniform else list(accumulate(map(costs.__getitem__, text)))
    parts: list[str] = []
    start = 0
    base = 0
    while True:
        end = start + cap if uniform else bisect_right(totals, base + cap, lo=start)
        if end >= len(text):
            parts.append(text[start:])
            return parts
        if end - 1 > start and text[end - 1] == "\r" and text[end] == "\n":
            end -= 1  # CR LF moves whole
        parts.append(text[start:end])
        base = 0 if uniform else totals[end - 1]
        start = end


def _segment_clusters(text: str, cap: int, costs: dict[str, int]) -> list[str]:
    cost = costs.__getitem__
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for cluster in clusters(text):
        size = sum(map(cost, cluster))
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


def _units(text: str, encoding: str, locking: int, shift: int) -> int:
    """Total units of ``text``; CodecError when ``encoding`` cannot carry it."""
    if encoding == UCS2:
        return _utf16_length(text)
    if locking == 0 and shift == 0:
        if _NOT_DEFAULT_GSM7.search(text) is not None:
            raise _not_gsm7(text, _DEFAULT_REVERSE)
        return len(text) + sum(map(text.count, _DEFAULT_EXTENSION))
    return sum(map(_costs(text, encoding, locking=locking, shift=shift).__getitem__, text))


def _plan(
    text: str, encoding: str, ref16: bool, locking: int, shift: int
) -> tuple[list[str], int, int, int]:
    """(segments, units, capacity of the last part, units of the last part)."""
    national = _shift_udh_octets(locking, shift) if encoding == GSM7 else 0
    units = _units(text, encoding, locking, shift)
    single = capacity(encoding, national + (1 if national else 0))
    if units <= single:
        return [text], units, single, units
    concat = CONCAT16_UDH_OCTETS if ref16 else CONCAT8_UDH_OCTETS
    cap = capacity(encoding, concat + national)
    costs = _costs(text, encoding, locking=locking, shift=shift)
    segments = _segment(text, cap, costs)
    return segments, units, cap, sum(map(costs.__getitem__, segments[-1]))


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
    return _plan(text, encoding, ref16, locking, shift)[:3]


def _resolve_encoding(text: str, encoding: str, max_parts: int, locking: int, shift: int) -> str:
    if encoding not in ("auto", GSM7, UCS2):
        raise CodecError("encoding", f"unknown encoding {encoding!r}; use auto, gsm7 or ucs2")
    if max_parts < 1:
        raise CodecError("max_parts", f"must be at least 1, not {max_parts}")
    if encoding == "auto":
        encoding = choose_encoding(text, locking=locking, shift=shift)
    return encoding  # a text the encoding cannot carry is refused by _units, naming the character


def split(
    text: str, *, encoding: str = "auto", ref16: bool = False, locking: int = 0, shift: int = 0
) -> list[str]:
    """The text of each part, in order; joined they give back ``text``."""
    encoding = _resolve_encoding(text, encoding, DEFAULT_MAX_PARTS, locking, shift)
    return _plan(text, encoding, ref16, locking, shift)[0]


def segments_to_send(
    text: str,
    *,
    encoding: str = "auto",
    ref16: bool = False,
    max_parts: int = DEFAULT_MAX_PARTS,
    locking: int = 0,
    shift: int = 0,
) -> tuple[str, list[str]]:
    """(encoding, parts) of a text about to be sent: what :func:`analyze` decides, without the
    report. Raises CodecError for a text the encoding cannot carry, MessageTooLong past
    ``max_parts``."""
    encoding = _resolve_encoding(text, encoding, max_parts, locking, shift)
    segments, units = _plan(text, encoding, ref16, locking, shift)[:2]
    if len(segments) > max_parts:
        raise MessageTooLong(len(segments), units, encoding, max_parts)
    return encoding, segments


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


def _utf16_length(text: str) -> int:
    """UTF-16 units of ``text``.

    A lone surrogate (JSON can carry "\\ud83d") is no character and has no UTF-16 form; it is
    refused here rather than let the encoder fail later with a UnicodeEncodeError.
    """
    try:
        return len(text.encode("utf-16-le")) // 2
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
    encoding = _resolve_encoding(text, encoding, max_parts, locking, shift)
    segments, units, cap, last_units = _plan(text, encoding, ref16, locking, shift)
    forced: list[UnicodeChar] = []
    suggestion = None
    if encoding == UCS2:
        # One look-alike lookup per distinct character, not per character.
        replacements = {ch: lookalike(ch) for ch in set(text) if ch not in _DEFAULT_REVERSE}
        forced = [
            UnicodeChar(ch, pos, replacements[ch])
            for pos, ch in enumerate(text)
            if ch in replacements
        ]
        if any(rep is not None for rep in replacements.values()):
            suggestion = "".join(
                ch if replacements.get(ch) is None else replacements[ch] for ch in text
            )
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
