"""Checks of the GSM 7-bit tables in gateway.modem.alphabets against TS 23.038 annex A.

Structural tests run over every table; spot checks pin positions where the national tables
differ from the default alphabet, and the positions where published transcriptions of the
specification disagree (see the comments in alphabets.py).
"""

from __future__ import annotations

import unicodedata
from collections import Counter

import pytest

from gateway.modem.alphabets import (
    DEFAULT_LOCKING,
    DEFAULT_SINGLE_SHIFT,
    ESC,
    LANGUAGE_NAMES,
    LOCKING_SHIFT,
    SINGLE_SHIFT,
    UNDEFINED,
)

ALL_IDS = list(range(14))
INDIC_IDS = list(range(4, 14))  # Bengali .. Urdu share one layout
LOCKING_IDS = sorted(LOCKING_SHIFT)
# Control, unassigned, private-use and surrogate code points. (Format characters, Cf, are allowed:
# Urdu's single shift table holds U+0600 ARABIC NUMBER SIGN and U+0601 ARABIC SIGN SANAH.)
NOT_CHARACTERS = {"Cc", "Cn", "Co", "Cs"}

# Unicode block of the script of each Indic/Urdu language id.
SCRIPT_BLOCKS = {
    4: (0x0980, 0x09FF),  # Bengali
    5: (0x0A80, 0x0AFF),  # Gujarati
    6: (0x0900, 0x097F),  # Devanagari (Hindi)
    7: (0x0C80, 0x0CFF),  # Kannada
    8: (0x0D00, 0x0D7F),  # Malayalam
    9: (0x0B00, 0x0B7F),  # Oriya
    10: (0x0A00, 0x0A7F),  # Gurmukhi (Punjabi)
    11: (0x0B80, 0x0BFF),  # Tamil
    12: (0x0C00, 0x0C7F),  # Telugu
    13: (0x0600, 0x06FF),  # Arabic (Urdu)
}


def test_language_ids() -> None:
    assert set(SINGLE_SHIFT) == set(ALL_IDS)
    # Annex A has no Spanish locking-shift table.
    assert set(LOCKING_SHIFT) == set(ALL_IDS) - {2}
    assert set(LANGUAGE_NAMES) == set(ALL_IDS)
    assert LANGUAGE_NAMES[1] == "Turkish"
    assert LANGUAGE_NAMES[2] == "Spanish"
    assert LANGUAGE_NAMES[3] == "Portuguese"
    assert LANGUAGE_NAMES[13] == "Urdu"
    assert LOCKING_SHIFT[0] is DEFAULT_LOCKING
    assert SINGLE_SHIFT[0] is DEFAULT_SINGLE_SHIFT


@pytest.mark.parametrize("lang", LOCKING_IDS)
def test_locking_table_shape(lang: int) -> None:
    table = LOCKING_SHIFT[lang]
    assert isinstance(table, str)
    assert len(table) == 128
    assert table[0x1B] == ESC
    assert table.count(ESC) == 1
    # LF, CR and the space sit where they are in the default alphabet in every table.
    assert table[0x0A] == "\n"
    assert table[0x0D] == "\r"
    assert table[0x20] == " "
    assert table.count(" ") == 1
    for septet, char in enumerate(table):
        if septet in (0x0A, 0x0D, 0x1B) or char == UNDEFINED:
            continue
        assert unicodedata.category(char) not in NOT_CHARACTERS, f"0x{septet:02X}"


@pytest.mark.parametrize("lang", LOCKING_IDS)
def test_locking_table_has_no_duplicates(lang: int) -> None:
    counts = Counter(char for char in LOCKING_SHIFT[lang] if char != UNDEFINED)
    assert [char for char, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("lang", LOCKING_IDS)
def test_locking_table_keeps_digits_and_small_latin(lang: int) -> None:
    table = LOCKING_SHIFT[lang]
    assert table[0x30:0x3A] == "0123456789"
    assert table[0x61:0x7B] == "abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("lang", ALL_IDS)
def test_single_shift_table_shape(lang: int) -> None:
    table = SINGLE_SHIFT[lang]
    assert isinstance(table, dict)
    for septet, char in table.items():
        assert 0 <= septet < 128
        assert isinstance(char, str)
        assert len(char) == 1
        assert char not in (UNDEFINED, ESC)
        if septet != 0x0A:
            assert unicodedata.category(char) not in NOT_CHARACTERS, f"0x{septet:02X}"
    # 0x0A is the page break (form feed); CR2 (0x0D) and 0x1B are reserved, never characters.
    assert table[0x0A] == "\f"
    assert 0x0D not in table
    assert 0x1B not in table


@pytest.mark.parametrize("lang", ALL_IDS)
def test_single_shift_tables_contain_the_default_extension(lang: int) -> None:
    table = SINGLE_SHIFT[lang]
    for septet, char in DEFAULT_SINGLE_SHIFT.items():
        assert table.get(septet) == char, f"0x{septet:02X}"
    assert table[0x65] == "€"


@pytest.mark.parametrize("lang", [0, 1, 2, 3])
def test_latin_single_shift_tables_have_no_duplicates(lang: int) -> None:
    counts = Counter(SINGLE_SHIFT[lang].values())
    assert [char for char, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("lang", INDIC_IDS)
def test_indic_single_shift_duplicates_are_those_of_the_spec(lang: int) -> None:
    table = SINGLE_SHIFT[lang]
    duplicates = {
        char: sorted(s for s, c in table.items() if c == char)
        for char, n in Counter(table.values()).items()
        if n > 1
    }
    assert duplicates == {"*": [0x0B, 0x18], "¡": [0x13, 0x15]}


@pytest.mark.parametrize("lang", INDIC_IDS)
def test_indic_tables_stay_in_their_script(lang: int) -> None:
    low, high = SCRIPT_BLOCKS[lang]
    for septet, char in enumerate(LOCKING_SHIFT[lang]):
        if ord(char) >= 0x80 and char != UNDEFINED:
            assert low <= ord(char) <= high, f"locking 0x{septet:02X}: U+{ord(char):04X}"
    for septet, char in SINGLE_SHIFT[lang].items():
        if ord(char) < 0x0600 or char == "€" or char in "\u0964\u0965":
            continue  # Latin-1 symbols, the euro sign and the Devanagari dandas are shared
        assert low <= ord(char) <= high, f"single shift 0x{septet:02X}: U+{ord(char):04X}"


@pytest.mark.parametrize("lang", INDIC_IDS)
def test_indic_single_shift_common_layout(lang: int) -> None:
    table = SINGLE_SHIFT[lang]
    assert "".join(table[s] for s in range(0x00, 0x0A)) == "@£$¥¿\"¤%&'"
    assert "".join(table[s] for s in range(0x0B, 0x0D)) == "*+"
    assert "".join(table[s] for s in range(0x0E, 0x19)) == "-/<=>¡^¡_#*"
    assert "".join(table[s] for s in range(0x41, 0x5B)) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def test_turkish() -> None:
    locking = LOCKING_SHIFT[1]
    differs = {s: c for s, c in enumerate(locking) if c != DEFAULT_LOCKING[s]}
    assert differs == {
        0x04: "€",
        0x07: "ı",
        0x0B: "Ğ",
        0x0C: "ğ",
        0x1C: "Ş",
        0x1D: "ş",
        0x40: "İ",
        0x60: "ç",
    }
    extra = {s: c for s, c in SINGLE_SHIFT[1].items() if s not in DEFAULT_SINGLE_SHIFT}
    assert extra == {
        0x47: "Ğ",
        0x49: "İ",
        0x53: "Ş",
        0x63: "ç",
        0x67: "ğ",
        0x69: "ı",
        0x73: "ş",
    }


def test_spanish() -> None:
    extra = {s: c for s, c in SINGLE_SHIFT[2].items() if s not in DEFAULT_SINGLE_SHIFT}
    assert extra == {
        0x09: "ç",
        0x41: "Á",
        0x49: "Í",
        0x4F: "Ó",
        0x55: "Ú",
        0x61: "á",
        0x69: "í",
        0x6F: "ó",
        0x75: "ú",
    }


def test_portuguese_locking() -> None:
    locking = LOCKING_SHIFT[3]
    assert locking[0x00:0x10] == "@£$¥êéúíóç\nÔô\rÁá"
    assert locking[0x10:0x20] == "Δ_ªÇÀ∞^\\€Ó|\x1bÂâÊÉ"
    assert locking[0x24] == "º"
    assert locking[0x40] == "Í"
    assert locking[0x5B:0x60] == "ÃÕÚÜ§"
    assert locking[0x60] == "~"
    assert locking[0x7B:0x80] == "ãõ`üà"


def test_portuguese_single_shift() -> None:
    extra = {s: c for s, c in SINGLE_SHIFT[3].items() if s not in DEFAULT_SINGLE_SHIFT}
    assert extra == {
        0x05: "ê",
        0x09: "ç",
        0x0B: "Ô",
        0x0C: "ô",
        0x0E: "Á",
        0x0F: "á",
        0x12: "Φ",
        0x13: "Γ",
        0x15: "Ω",
        0x16: "Π",
        0x17: "Ψ",
        0x18: "Σ",
        0x19: "Θ",
        0x1F: "Ê",
        0x41: "À",
        0x49: "Í",
        0x4F: "Ó",
        0x55: "Ú",
        0x5B: "Ã",
        0x5C: "Õ",
        0x61: "Â",
        0x69: "í",
        0x6F: "ó",
        0x75: "ú",
        0x7B: "ã",
        0x7C: "õ",
        0x7F: "â",
    }


# (language id, septet, expected) in the locking-shift tables; UNDEFINED where annex A is empty.
LOCKING_SPOT_CHECKS = [
    (4, 0x00, "\u0981"),  # BENGALI SIGN CANDRABINDU
    (4, 0x0C, UNDEFINED),
    (4, 0x7F, "\u09f1"),  # BENGALI LETTER RA WITH LOWER DIAGONAL
    (5, 0x0C, "\u0a8d"),  # GUJARATI VOWEL CANDRA E
    (5, 0x7F, "\u0af1"),  # GUJARATI RUPEE SIGN
    (6, 0x15, "\u0915"),  # DEVANAGARI LETTER KA
    (6, 0x3C, "\u0929"),  # DEVANAGARI LETTER NNNA
    (6, 0x60, "\u0950"),  # DEVANAGARI OM
    (7, 0x00, UNDEFINED),
    (7, 0x24, "\u0ca1"),  # KANNADA LETTER DDA (the printed table repeats PA here: a typo)
    (7, 0x3D, "\u0caa"),  # KANNADA LETTER PA
    (8, 0x4E, UNDEFINED),
    (8, 0x7F, "\u0d79"),  # MALAYALAM DATE MARK
    (9, 0x00, "\u0b01"),  # ORIYA SIGN CANDRABINDU
    (9, 0x11, UNDEFINED),
    (10, 0x09, UNDEFINED),
    (10, 0x7F, "\u0a74"),  # GURMUKHI EK ONKAR
    (11, 0x11, UNDEFINED),  # some transcriptions print the unassigned U+0B91
    (11, 0x60, "\u0bd0"),  # TAMIL OM
    (11, 0x7F, "\u0bf9"),  # TAMIL RUPEE SIGN
    (12, 0x11, UNDEFINED),  # some transcriptions print the unassigned U+0C11
    (12, 0x60, "\u0c55"),  # TELUGU LENGTH MARK
    (13, 0x00, "\u0627"),  # ARABIC LETTER ALEF
    (13, 0x3F, "?"),
    (13, 0x7F, "\u0670"),  # ARABIC LETTER SUPERSCRIPT ALEF
]


@pytest.mark.parametrize(("lang", "septet", "expected"), LOCKING_SPOT_CHECKS)
def test_locking_spot_checks(lang: int, septet: int, expected: str) -> None:
    assert LOCKING_SHIFT[lang][septet] == expected


# (language id, septet, expected) in the single-shift tables; None where the septet is absent.
SINGLE_SHIFT_SPOT_CHECKS = [
    (4, 0x19, "\u09e6"),  # BENGALI DIGIT ZERO
    (4, 0x34, "\u09fa"),  # BENGALI ISSHAR
    (5, 0x19, "\u0964"),  # DEVANAGARI DANDA
    (5, 0x1C, "\u0ae6"),  # GUJARATI DIGIT ZERO
    (6, 0x1C, "\u0966"),  # DEVANAGARI DIGIT ZERO
    (6, 0x3A, "\u0971"),  # DEVANAGARI SIGN HIGH SPACING DOT
    (7, 0x2A, "\u0cf2"),  # KANNADA SIGN UPADHMANIYA
    (8, 0x34, "\u0d7f"),  # MALAYALAM LETTER CHILLU K
    (9, 0x20, "\u0b6a"),  # ORIYA DIGIT FOUR (one transcription has the Tamil digit)
    (10, 0x2D, "\u0a75"),  # GURMUKHI SIGN YAKASH
    (11, 0x24, "\u0bee"),  # TAMIL DIGIT EIGHT (the printed table repeats NINE: a typo)
    (11, 0x25, "\u0bef"),  # TAMIL DIGIT NINE
    (12, 0x19, None),  # Telugu has no danda
    (12, 0x1A, None),
    (12, 0x1C, "\u0c66"),  # TELUGU DIGIT ZERO (one transcription has the Kannada digit)
    (12, 0x22, "\u0c6c"),  # TELUGU DIGIT SIX
    (12, 0x23, "\u0c6d"),  # TELUGU DIGIT SEVEN
    (13, 0x19, "\u0600"),  # ARABIC NUMBER SIGN
    (13, 0x1C, "\u06f0"),  # EXTENDED ARABIC-INDIC DIGIT ZERO
    (13, 0x3B, "\u06cd"),  # ARABIC LETTER YEH WITH TAIL
    (13, 0x3F, "\u06d4"),  # ARABIC FULL STOP
]


@pytest.mark.parametrize(("lang", "septet", "expected"), SINGLE_SHIFT_SPOT_CHECKS)
def test_single_shift_spot_checks(lang: int, septet: int, expected: str | None) -> None:
    assert SINGLE_SHIFT[lang].get(septet) == expected


def test_default_tables_unchanged() -> None:
    assert DEFAULT_LOCKING[0x00:0x10] == "@£$¥èéùìòÇ\nØø\rÅå"
    assert DEFAULT_LOCKING[0x40] == "¡"
    assert DEFAULT_LOCKING[0x60] == "¿"
    assert len(DEFAULT_SINGLE_SHIFT) == 10
