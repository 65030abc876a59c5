"""Text analysis and segmentation (gateway.modem.text): the count vectors, GSM-7 packing, clusters,
look-alikes and the errors a user sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.modem import text
from gateway.modem.errors import CodecError, MessageTooLong

VECTORS = json.loads((Path(__file__).parent / "vectors" / "count.json").read_text("utf-8"))


def _vector_id(v: dict) -> str:
    return v["note"][:60]


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_count_vector(vector: dict) -> None:
    a = text.analyze(vector["text"], ref16=vector.get("ref16", False))
    assert a.encoding == vector["encoding"]
    assert a.parts == vector["parts"]
    assert a.units == vector["units"]
    assert a.remaining == vector["remaining"]
    assert a.segments == vector["segments"]
    if "suggestion" in vector:
        assert a.suggestion == vector["suggestion"]


def test_count_vectors_are_consistent() -> None:
    """The file itself: segments join to the text, one segment per part, 40+ entries."""
    assert 40 <= len(VECTORS) <= 100
    for v in VECTORS:
        assert set(v) >= {"text", "encoding", "parts", "units", "remaining", "segments", "note"}
        assert "".join(v["segments"]) == v["text"]
        assert len(v["segments"]) == v["parts"]
        assert v["encoding"] in ("gsm7", "ucs2")


# --- GSM-7 tables and packing -------------------------------------------------------------------

# Septets and packed octets of public examples (python-gsmmodem's test suite; TS 23.038 6.1.2.1).
PACKED = [
    ("123", "31D90C"),
    ("12345678", "31D98C56B3DD70"),
    ("Hello World!", "C8329BFD065DDF72363904"),
    ("hellohello", "E8329BFD4697D9EC37"),
    ("[{abc}]~", "1BDE0615168F37A98D6FD303"),
    ("{åΦΓΛΩΠΨΣΘ€}", "1BD44332A1542C174C6653DEA400"),
]


@pytest.mark.parametrize(("plain", "packed"), PACKED)
def test_pack_and_unpack_public_examples(plain: str, packed: str) -> None:
    septets = text.encode_gsm7(plain)
    assert text.pack_septets(septets).hex().upper() == packed
    assert text.decode_gsm7(text.unpack_septets(bytes.fromhex(packed), len(septets))) == plain


def test_extension_characters_cost_two_septets() -> None:
    for ch in "^{}\\[]~|€\f":
        assert text.gsm7_septets(ch) == (0x1B, text.gsm7_septets(ch)[1])
        assert text.char_units(ch, text.GSM7) == 2
        assert text.char_units(ch, text.UCS2) == 1


def test_default_alphabet_code_points() -> None:
    assert text.gsm7_septets("@") == (0x00,)
    assert text.gsm7_septets("$") == (0x02,)
    assert text.gsm7_septets("_") == (0x11,)
    assert text.gsm7_septets("¤") == (0x24,)
    assert text.gsm7_septets("§") == (0x5F,)
    assert text.gsm7_septets("Ç") == (0x09,)
    assert text.gsm7_septets("€") == (0x1B, 0x65)
    assert text.gsm7_septets("ç") is None
    assert text.gsm7_septets("`") is None
    assert text.is_gsm7("ΔΦΓΛΩΠΨΣΘΞ")
    assert not text.is_gsm7("α")


def test_pack_with_fill_bits_leaves_low_bits_zero() -> None:
    # One fill bit after a 6-octet header: "A" (0x41) shifted left by one.
    assert text.pack_septets([0x41], fill_bits=1) == bytes([0x82])
    assert text.unpack_septets(bytes([0x82]), 1, fill_bits=1) == [0x41]


def test_decode_is_lenient_as_ts_23_038_asks() -> None:
    warnings: list[str] = []
    # ESC + a code the extension table lacks shows the default-table character ('A').
    assert text.decode_gsm7([0x1B, 0x41], warnings=warnings) == "A"
    # ESC ESC and a trailing ESC show a space.
    assert text.decode_gsm7([0x1B, 0x1B], warnings=warnings) == " "
    assert text.decode_gsm7([0x61, 0x1B], warnings=warnings) == "a "
    assert len(warnings) == 3


def test_encode_gsm7_names_the_bad_character() -> None:
    with pytest.raises(CodecError) as info:
        text.encode_gsm7("ab😀")
    assert info.value.where == "character 2"
    assert "U+1F600" in info.value.why


# --- capacity and clusters ----------------------------------------------------------------------


def test_capacities() -> None:
    assert text.capacity(text.GSM7, 0) == 160
    assert text.capacity(text.GSM7, text.CONCAT8_UDH_OCTETS) == 153
    assert text.capacity(text.GSM7, text.CONCAT16_UDH_OCTETS) == 152
    assert text.capacity(text.UCS2, 0) == 70
    assert text.capacity(text.UCS2, text.CONCAT8_UDH_OCTETS) == 67
    assert text.capacity(text.UCS2, text.CONCAT16_UDH_OCTETS) == 66
    assert text.capacity(text.DATA8, text.CONCAT8_UDH_OCTETS) == 134


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("ab", ["a", "b"]),
        ("a\r\nb", ["a", "\r\n", "b"]),
        ("\n\r", ["\n", "\r"]),
        ("e\u0301x", ["e\u0301", "x"]),
        ("👍🏽!", ["👍🏽", "!"]),
        ("🇩🇪🇫🇷🇮", ["🇩🇪", "🇫🇷", "🇮"]),
        ("👨\u200d👩\u200d👧", ["👨\u200d👩\u200d👧"]),
        ("1\ufe0f\u20e3", ["1\ufe0f\u20e3"]),
        ("🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", None),
        ("", []),
    ],
)
def test_clusters(sample: str, expected: list[str] | None) -> None:
    got = text.clusters(sample)
    assert "".join(got) == sample
    if expected is None:  # a subdivision flag (tag characters) is one cluster
        assert got == [sample]
    else:
        assert got == expected


# --- analyze: reports and errors ----------------------------------------------------------------


def test_unicode_chars_and_suggestion() -> None:
    a = text.analyze("It’s “ok” — 😀")
    assert a.encoding == text.UCS2
    forced = [(u.char, u.position, u.replacement) for u in a.unicode_chars]
    assert forced == [
        ("’", 2, "'"),
        ("“", 5, '"'),
        ("”", 8, '"'),
        ("—", 10, "-"),
        ("😀", 12, None),
    ]
    assert a.suggestion == 'It\'s "ok" - 😀'
    assert a.to_json()["unicode_chars"][4]["codepoint"] == "U+1F600"


def test_no_suggestion_when_nothing_has_a_lookalike() -> None:
    a = text.analyze("Привет")
    assert a.suggestion is None
    assert [u.position for u in a.unicode_chars] == list(range(6))


def test_gsm7_text_reports_no_unicode_chars() -> None:
    a = text.analyze("plain {text} €")
    assert a.unicode_chars == []
    assert a.suggestion is None


def test_lookalikes() -> None:
    assert text.lookalike("ç") == "Ç"
    assert text.lookalike("á") == "a"
    assert text.lookalike("é") is None  # é is GSM-7 itself
    assert text.lookalike("…") == "..."
    assert text.lookalike("\u00a0") == " "
    assert text.lookalike("😀") is None
    assert text.transliterate("‘a’ – b…") == "'a' - b..."


def test_forced_encodings() -> None:
    assert text.analyze("abc", encoding="ucs2").units == 3
    assert text.analyze("€", encoding="ucs2").units == 1
    with pytest.raises(CodecError, match="U\\+0416"):
        text.analyze("Ж", encoding="gsm7")
    with pytest.raises(CodecError, match="unknown encoding"):
        text.analyze("a", encoding="latin1")
    with pytest.raises(CodecError, match="max_parts"):
        text.analyze("a", max_parts=0)


def test_max_parts_error_says_length_and_limit() -> None:
    a = text.analyze("a" * 1531)
    assert a.parts == 11 and a.too_long
    with pytest.raises(MessageTooLong) as info:
        a.check()
    message = str(info.value)
    assert "1531 septets" in message and "11 SMS parts" in message and "limit is 10" in message
    assert text.analyze("a" * 1530).check().parts == 10
    assert text.analyze("a" * 320, max_parts=2).too_long


def test_lone_surrogate_is_a_codec_error() -> None:
    """A lone surrogate (possible from JSON "\\ud83d") is not a character: a clear error."""
    with pytest.raises(CodecError) as info:
        text.analyze("ab\ud83d")
    assert info.value.where == "character 2"


def test_ref16_and_split() -> None:
    assert [len(s) for s in text.split("a" * 161, ref16=True)] == [152, 9]
    assert text.split("Ж" * 71, encoding="ucs2") == ["Ж" * 67, "Ж" * 4]
    assert text.split("abc", encoding="ucs2") == ["abc"]


def test_to_json_keys_are_stable() -> None:
    keys = set(text.analyze("hi").to_json())
    assert {"encoding", "parts", "units", "remaining", "unicode_chars"} <= keys
