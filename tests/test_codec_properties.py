"""Property tests of the codec over arbitrary Unicode, astral characters included.

encode -> decode -> reassemble gives back the text; no part exceeds its size; no escape pair or
surrogate pair is split; a part is only cut where the next unit group would not fit.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.modem import pdu, text
from gateway.modem.alphabets import DEFAULT_LOCKING, DEFAULT_SINGLE_SHIFT, LOCKING_SHIFT, UNDEFINED
from gateway.modem.errors import CodecError

# Per-test settings (not a global profile, which would change other modules' tests).
fast = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GSM_CHARS = [c for c in DEFAULT_LOCKING if c != "\x1b"] + list(DEFAULT_SINGLE_SHIFT.values())
# Characters that make interesting boundaries: emoji with modifiers, flags, ZWJ, combining marks.
TRICKY = ["😀", "👍", "\U0001f3fd", "🇩", "🇪", "\u200d", "\u0301", "\ufe0f", "Ж", "€", "\r", "\n"]

any_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),  # lone surrogates are not text
    max_size=400,
)
gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=700)
mixed_text = st.text(
    alphabet=st.one_of(st.sampled_from(GSM_CHARS), st.sampled_from(TRICKY)), max_size=500
)
long_text = st.text(
    alphabet=st.one_of(st.sampled_from(GSM_CHARS), st.sampled_from(TRICKY)),
    min_size=140,
    max_size=700,
)
# A filler up to just before a part boundary, then tricky characters that may straddle it.
boundary_text = st.builds(
    lambda fill, n, tail: fill * n + tail,
    st.sampled_from(["a", "Ж", "€"]),
    st.integers(60, 160),
    st.text(alphabet=st.sampled_from(TRICKY + GSM_CHARS[:10]), min_size=1, max_size=20),
)
texts = st.one_of(any_text, gsm_text, mixed_text, long_text, boundary_text)


def _tpdu(hex_pdu: str) -> bytes:
    raw = bytes.fromhex(hex_pdu)
    return raw[raw[0] + 1 :]


def _user_data(tpdu: bytes, *, submit: bool) -> tuple[int, int, bytes]:
    """(DCS, UDL, UD) of a SUBMIT without VP or a DELIVER."""
    pos = 2 if submit else 1
    pos += 2 + (tpdu[pos] + 1) // 2  # address
    dcs = tpdu[pos + 1]
    pos += 2 + (0 if submit else 7)
    return dcs, tpdu[pos], tpdu[pos + 1 :]


def _check_part(hex_pdu: str, *, submit: bool) -> None:
    """Size limits, and no pair split at the end of the part."""
    dcs, udl, ud = _user_data(_tpdu(hex_pdu), submit=submit)
    assert len(ud) <= 140
    udh_octets = ud[0] + 1 if _tpdu(hex_pdu)[0] & 0x40 else 0
    if dcs & 0x0C == 0:  # GSM-7: UDL counts septets
        assert udl <= 160
        assert len(ud) == (udl * 7 + 7) // 8
        header_septets = (udh_octets * 8 + 6) // 7
        fill = header_septets * 7 - udh_octets * 8
        septets = text.unpack_septets(ud[udh_octets:], udl - header_septets, fill)
        assert not septets or septets[-1] != 0x1B  # no escape left dangling
    else:
        assert udl == len(ud) <= 140
        body = ud[udh_octets:]
        if dcs & 0x0C == 0x08 and body:
            assert len(body) % 2 == 0
            last = int.from_bytes(body[-2:], "big")
            assert not 0xD800 <= last <= 0xDBFF  # no high surrogate left dangling
            first = int.from_bytes(body[:2], "big")
            assert not 0xDC00 <= first <= 0xDFFF  # no low surrogate starting a part


@fast
@given(texts, st.booleans())
def test_submit_round_trip(message: str, ref16: bool) -> None:
    parts = pdu.encode_submit("+447700900123", message, ref16=ref16, reference=7, max_parts=255)
    decoded = [pdu.decode(p.pdu) for p in parts]
    assert "".join(d.text for d in decoded) == message
    assert all(d.warnings == [] for d in decoded)
    for p, d in zip(parts, decoded, strict=True):
        _check_part(p.pdu, submit=True)
        assert p.length == len(_tpdu(p.pdu))
        assert d.text == p.text
        if len(parts) > 1:
            assert d.concat == pdu.Concat(7, len(parts), p.seq, 16 if ref16 else 8)
        else:
            assert d.concat is None


@fast
@given(texts, st.booleans())
def test_deliver_round_trip(message: str, ref16: bool) -> None:
    when = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=-5)))
    hexes = pdu.encode_deliver("+15551234567", message, timestamp=when, ref16=ref16)
    decoded = [pdu.decode(h) for h in hexes]
    assert "".join(d.text for d in decoded) == message
    for h, d in zip(hexes, decoded, strict=True):
        _check_part(h, submit=False)
        assert d.timestamp == when and d.number == "+15551234567"


@fast
@given(texts)
def test_forced_ucs2_round_trip(message: str) -> None:
    parts = pdu.encode_submit("+1", message, encoding="ucs2", max_parts=255, reference=1)
    assert "".join(pdu.decode(p.pdu).text for p in parts) == message


@fast
@given(texts, st.booleans())
def test_segments_join_fit_and_are_cut_only_when_needed(message: str, ref16: bool) -> None:
    a = text.analyze(message, ref16=ref16, max_parts=1000)
    assert "".join(a.segments) == message
    assert a.parts == len(a.segments) >= 1

    def cost(ch: str) -> int:
        return text.char_units(ch, a.encoding)

    sizes = [sum(cost(ch) for ch in seg) for seg in a.segments]
    assert sum(sizes) == a.units
    assert all(size <= a.part_capacity for size in sizes)
    assert a.remaining == a.part_capacity - sizes[-1]
    if a.parts == 1:
        assert a.units <= (160 if a.encoding == "gsm7" else 70)
        return
    assert a.part_capacity == {("gsm7", False): 153, ("gsm7", True): 152}.get(
        (a.encoding, ref16), 66 if ref16 else 67
    )
    # Where each part ends: a cluster boundary, unless the cluster is longer than a part; and
    # the part is only cut when what comes next would not fit in it.
    starts: dict[int, str] = {}
    pos = 0
    for cluster in text.clusters(message):
        starts[pos] = cluster
        pos += len(cluster)
    offset = 0
    for seg, size in zip(a.segments[:-1], sizes[:-1], strict=True):
        offset += len(seg)
        free = a.part_capacity - size
        if offset in starts:
            assert sum(cost(ch) for ch in starts[offset]) > free
        else:
            owner = max(p for p in starts if p < offset)
            assert sum(cost(ch) for ch in starts[owner]) > a.part_capacity
            assert cost(message[offset]) > free


@fast
@given(st.lists(st.integers(0, 127), max_size=200), st.integers(0, 6))
def test_septet_packing_round_trip(septets: list[int], fill: int) -> None:
    packed = text.pack_septets(septets, fill)
    assert len(packed) == (len(septets) * 7 + fill + 7) // 8
    assert text.unpack_septets(packed, len(septets), fill) == septets


@fast
@given(st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=300))
def test_gsm7_text_round_trip(message: str) -> None:
    assert text.decode_gsm7(text.encode_gsm7(message)) == message


@fast
@given(st.text(alphabet=st.sampled_from(GSM_CHARS), min_size=1, max_size=11))
def test_alphanumeric_sender_round_trip(name: str) -> None:
    try:
        field = pdu.encode_address(name)
    except CodecError:
        assume(False)  # too long with extension characters
    assume(field[1] == pdu.TOA_ALPHANUMERIC)
    assert pdu.decode(pdu.encode_deliver(name, "x")[0]).number == name


@fast
@given(st.sampled_from(["", "+"]), st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_number_round_trip(plus: str, digits: str) -> None:
    number = plus + digits
    (part,) = pdu.encode_submit(number, "x")
    assert pdu.decode(part.pdu).number == number


@fast
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    st.integers(-72, 72),
)
def test_timestamp_round_trip(when: datetime, quarters: int) -> None:
    when = when.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=15 * quarters)))
    decoded = pdu.decode(pdu.encode_deliver("+1", "x", timestamp=when)[0])
    assert decoded.timestamp == when
    assert decoded.timestamp.utcoffset() == when.utcoffset()


@fast
@given(st.binary(max_size=600), st.booleans())
def test_8bit_data_round_trip(data: bytes, ref16: bool) -> None:
    parts = pdu.encode_submit("+1", data, ref16=ref16, max_parts=255, reference=3)
    decoded = [pdu.decode(p.pdu) for p in parts]
    assert b"".join(d.data for d in decoded) == data
    for p in parts:
        _check_part(p.pdu, submit=True)


def _reference_unpack(data: bytes, count: int, fill: int) -> list[int]:
    value = int.from_bytes(data, "little") >> fill
    return [(value >> (7 * i)) & 0x7F for i in range(count)]


@fast
@given(st.binary(max_size=200), st.integers(0, 250), st.integers(0, 7))
def test_unpack_matches_a_plain_reference(data: bytes, count: int, fill: int) -> None:
    """The fast unpacker (lanes of bytes.translate) equals the obvious shift-and-mask one,
    including past the end of the data (missing bits read as zero)."""
    expected = _reference_unpack(data, count, fill)
    assert text.unpack_septets(data, count, fill) == expected
    assert text.unpack_septet_bytes(data, count, fill) == bytes(expected)


@fast
@given(st.lists(st.integers(0, 300), max_size=200), st.sampled_from([0, 1, 2, 3]))
def test_decode_gsm7_fast_and_slow_paths_agree(septets: list[int], locking: int) -> None:
    """Lists, bytes and values above 127 decode the same (only the low seven bits count)."""
    masked = [s & 0x7F for s in septets]
    as_list = text.decode_gsm7(septets, locking=locking)
    assert as_list == text.decode_gsm7(bytes(masked), locking=locking)
    table = LOCKING_SHIFT.get(locking, DEFAULT_LOCKING)
    if 0x1B not in masked:
        assert as_list == "".join(" " if table[s] == UNDEFINED else table[s] for s in masked)
