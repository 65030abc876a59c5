"""Identities of simulated SIMs and modems: IMEI, ICCID and IMSI with valid check digits.

Everything is drawn from a :class:`random.Random` the caller seeds, so a network built with the
same seed gets the same identities.
"""

from __future__ import annotations

import random

# MCC 001 / MNC 01 is the ITU test network: no real subscriber can carry these identities.
TEST_MCC = "001"
TEST_MNC = "01"


def luhn_digit(digits: str) -> str:
    """The Luhn check digit that makes ``digits + result`` pass the Luhn test (IMEI, ICCID)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # every second digit from the right, starting with the rightmost
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """True when the last digit of ``number`` is its Luhn check digit."""
    return number.isdigit() and len(number) > 1 and luhn_digit(number[:-1]) == number[-1]


def make_imei(rng: random.Random, tac: str = "35123456") -> str:
    """A 15-digit IMEI: an 8-digit type allocation code, a 6-digit serial and a Luhn digit."""
    body = tac + "".join(str(rng.randrange(10)) for _ in range(6))
    return body + luhn_digit(body)


def make_iccid(rng: random.Random) -> str:
    """A 20-digit ICCID: 89 (telecom), country 001, issuer 01, serial and a Luhn digit."""
    body = "89" + "001" + "01" + "".join(str(rng.randrange(10)) for _ in range(12))
    return body + luhn_digit(body)


def make_imsi(rng: random.Random) -> str:
    """A 15-digit IMSI on the test network (MCC 001, MNC 01)."""
    return TEST_MCC + TEST_MNC + "".join(str(rng.randrange(10)) for _ in range(10))


def swap_nibbles(digits: str) -> str:
    """Digits swapped in pairs, as EF_ICCID stores them (and Huawei's ``AT^ICCID?`` shows them)."""
    if len(digits) % 2:
        digits += "F"
    return "".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2))
