"""The GSM 7-bit alphabets of 3GPP TS 23.038: the default alphabet, its extension table, and the
national language locking-shift and single-shift tables of annex A.

A *locking-shift table* is a string of 128 characters indexed by septet value; position 0x1B is
the escape to the single-shift table and holds ``ESC``. A position the specification leaves
undefined holds ``UNDEFINED``. A *single-shift table* maps the septet that follows an escape to
its character.

Language identifiers are those of TS 23.038 section 6.2.1.2.4 (0 is the default alphabet,
1 Turkish, 2 Spanish, 3 Portuguese, ...). They are the values carried by the UDH information
elements 0x24 (single shift) and 0x25 (locking shift).
"""

from __future__ import annotations

ESC = "\x1b"
UNDEFINED = "\uffff"

DEFAULT_LOCKING = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

DEFAULT_SINGLE_SHIFT: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

# Language id -> table. National tables are added below the default ones.
LOCKING_SHIFT: dict[int, str] = {0: DEFAULT_LOCKING}
SINGLE_SHIFT: dict[int, dict[int, str]] = {0: DEFAULT_SINGLE_SHIFT}

assert len(DEFAULT_LOCKING) == 128
