"""Fuzz the decoder: random and mutated PDUs; only CodecError may escape, and nothing hangs.

Mutations of valid PDUs (real vectors and our encoder's output): bit flips, truncation, splices,
and structure-aware lies: a length field (SMSC, address, TP-UDL, UDHL, a header element) that
says more or less than is there, a header flag with no header, concatenation headers with part
0 or part 3 of 2, a data coding scheme that does not match the data. Each input has a CPU-time
bound, so a loop on one input fails with that input named.

Seeded, so a failure reproduces; the seed and the PDU are in the assertion message. 20,000
inputs in the normal run, 1,000,000 with ``--long``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from reliability.bounds import cpu_bound_per_input

from gateway.modem import pdu
from gateway.modem.errors import CodecError

SEED = 20240501
ROUNDS = 20_000
LONG_ROUNDS = 1_000_000
CPU_BOUND = 2.0  # seconds of CPU for one PDU: decoding one takes tens of microseconds
_T = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)

SEEDS = [
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
    "00400B917477000921F30000421020304050000D06080412340101C8329BFD06",
    "0001000C9144770009103200000861F1985C369F01",
    "07911326040000F0040B911346610089F600004210203040500002E10D",
    "07911326040000F0040B911346610089F6004842102030405000080041004200430044",
    "07911326040000F0040B911346610089F600F4421020304050000441424344",
    "07911326040000F0040B911346610089F60000000000000000000AE8329BFD4697D9EC37",
    "0006D60B911326880736F4111011719551401110117195714000",
    "0297F1061C0F910B487228297020F5317062419272803170624192138000",
    "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301",
    "07914346466554F601000B914316565811F9000806304253F68449",
    *pdu.encode_deliver("MyBank", "Ваш код 😀 " * 12, reference=0x1234, ref16=True),
    *(p.pdu for p in pdu.encode_submit("+447700900123", "{[€]} " * 40, validity_minutes=99)),
    *(p.pdu for p in pdu.encode_submit("+1", "ş" * 200, locking=1, shift=1, reference=2)),
    # Status reports, 8-bit data, 16-bit references, alphanumeric senders, flash, report flags.
    pdu.encode_status_report("+15551230001", 42, 0x00, submitted=_T, discharged=_T),
    pdu.encode_status_report("12345", 255, 0x43, submitted=_T, discharged=_T, smsc=None),
    *pdu.encode_deliver("+15551230001", bytes(range(200)), timestamp=_T, reference=7),
    *pdu.encode_deliver("Bank", "A" * 170, timestamp=_T, flash=True, status_report_indication=True),
    *(
        p.pdu
        for p in pdu.encode_submit(
            "+15551230001", "x😀" * 40, status_report=True, ref16=True, reference=0xBEEF
        )
    ),
    *(p.pdu for p in pdu.encode_submit("+1555", b"\x00\xff" * 80, reject_duplicates=True)),
]
SEED_BYTES = [bytes.fromhex(h) for h in SEEDS]


def _truncate(rng: random.Random, data: bytearray) -> bytearray:
    return data[: rng.randrange(len(data) + 1)]


def _flip_bits(rng: random.Random, data: bytearray) -> bytearray:
    for _ in range(rng.randint(1, 4)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return data


def _set_byte(rng: random.Random, data: bytearray) -> bytearray:
    # Lengths and type octets live in the first ~30 octets; hit them more often.
    if data:
        pos = rng.randrange(min(len(data), 30)) if rng.random() < 0.7 else rng.randrange(len(data))
        data[pos] = rng.choice([0x00, 0x01, 0x07, 0x7F, 0x80, 0x8C, 0xA0, 0xA1, 0xFF, 0x40])
    return data


def _insert_delete(rng: random.Random, data: bytearray) -> bytearray:
    pos = rng.randrange(len(data) + 1)
    if rng.random() < 0.5 and pos < len(data):
        del data[pos : pos + rng.randint(1, 3)]
    else:
        data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
    return data


def _splice(rng: random.Random, data: bytearray) -> bytearray:
    other = rng.choice(SEED_BYTES)
    cut = rng.randrange(len(data) + 1)
    return data[:cut] + other[rng.randrange(len(other) + 1) :]


def _extend(rng: random.Random, data: bytearray) -> bytearray:
    return data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))


def _layout(data: bytes) -> dict[str, object]:
    """Where the length and header fields of a valid PDU (with its SMSC field) are:
    ``lengths`` (offsets of octets that count something), ``dcs``, ``first``, ``udh`` (offset
    of the UDHL octet or None) and ``ies`` (offsets of each header element's IEI)."""
    lengths = [0]
    i = 1 + data[0]
    first = i
    mti = data[i] & 0x03
    i += 1
    if mti == 1:
        i += 1  # TP-MR
    if mti == 2:
        i += 1
    lengths.append(i)  # the address's length in semi-octets
    i += 2 + (data[i] + 1) // 2
    out: dict[str, object] = {"lengths": lengths, "first": first, "dcs": None, "udh": None}
    out["ies"] = []
    if mti == 2:
        return out
    dcs = i + 1
    out["dcs"] = dcs
    i = dcs + 1
    if mti == 0:
        i += 7
    else:
        vpf = (data[first] >> 3) & 0x03
        i += {0: 0, 2: 1}.get(vpf, 7)
    lengths.append(i)  # TP-UDL
    if data[first] & 0x40 and i + 1 < len(data):
        udhl = i + 1
        out["udh"] = udhl
        lengths.append(udhl)
        j, end = udhl + 1, udhl + 1 + data[udhl]
        while j + 1 < min(end, len(data)):
            out["ies"].append(j)  # type: ignore[attr-defined]
            lengths.append(j + 1)
            j += 2 + data[j + 1]
    return out


LAYOUTS = [_layout(b) for b in SEED_BYTES]
# Every coding group: GSM-7, 8-bit, UCS-2, reserved, compressed, classes, MWI, 0xF_ data.
DCS_VALUES = (0x00, 0x04, 0x08, 0x0C, 0x10, 0x18, 0x20, 0x24, 0x28, 0x40, 0x48, 0xC0, 0xD8)
DCS_VALUES += (0xE8, 0xF0, 0xF4, 0xF7, 0xFF)
LIES = [0x00, 0x01, 0x02, 0x7F, 0x80, 0x8C, 0x8D, 0xA0, 0xA1, 0xFE, 0xFF]


def _lie_length(rng: random.Random, data: bytearray, layout: dict) -> bytearray:
    pos = rng.choice(layout["lengths"])
    if pos < len(data):
        old = data[pos]
        data[pos] = rng.choice([*LIES, (old + 1) & 0xFF, (old - 1) & 0xFF, rng.randrange(256)])
    return data


def _lie_udh(rng: random.Random, data: bytearray, layout: dict) -> bytearray:
    udh, ies, first = layout["udh"], layout["ies"], layout["first"]
    if udh is None or not ies or rng.random() < 0.2:
        data[first] ^= 0x40  # a header flag with no header, or a header with no flag
        return data
    iei = rng.choice(ies)
    if iei + 4 < len(data) and data[iei] in (0x00, 0x08):
        # Concatenation: part 0, part past the total, total 0, or a total of 255.
        total_at = iei + (4 if data[iei] == 0x00 else 5)
        if total_at + 1 < len(data):
            pick = rng.randrange(4)
            if pick == 0:
                data[total_at + 1] = 0
            elif pick == 1:
                data[total_at + 1] = (data[total_at] + 1) & 0xFF
            elif pick == 2:
                data[total_at] = 0
            else:
                data[total_at] = 0xFF
            return data
    data[iei] = rng.choice([0x00, 0x08, 0x24, 0x25, 0x05, 0x70, 0xFF])
    return data


def _lie_dcs(rng: random.Random, data: bytearray, layout: dict) -> bytearray:
    if layout["dcs"] is not None and layout["dcs"] < len(data):
        data[layout["dcs"]] = rng.choice((*DCS_VALUES, rng.randrange(256)))
    return data


MUTATORS: list[Callable[[random.Random, bytearray], bytearray]] = [
    _truncate,
    _flip_bits,
    _set_byte,
    _insert_delete,
    _splice,
    _extend,
]
# Mutators that need to know where the fields of the (still valid) seed are.
LIARS: list[Callable[[random.Random, bytearray, dict], bytearray]] = [
    _lie_length,
    _lie_length,
    _lie_udh,
    _lie_dcs,
]


def _cases(rng: random.Random, rounds: int) -> Iterator[tuple[str, bool]]:
    """(hex, smsc) pairs: mutated seeds, lies about lengths and headers, random octets, and
    broken hex strings."""
    for i in range(rounds):
        smsc = rng.random() < 0.8
        roll = i % 10
        if roll < 4:
            data = bytearray(rng.choice(SEED_BYTES))
            for _ in range(rng.randint(1, 3)):
                data = rng.choice(MUTATORS)(rng, data)
            hex_pdu = data.hex()
        elif roll < 7:
            k = rng.randrange(len(SEED_BYTES))
            data = bytearray(SEED_BYTES[k])
            for _ in range(rng.randint(1, 2)):
                data = rng.choice(LIARS)(rng, data, LAYOUTS[k])
            if rng.random() < 0.3:
                data = rng.choice(MUTATORS)(rng, data)
            smsc = True  # the layout is of a PDU with its SMSC field
            hex_pdu = data.hex()
        elif roll < 9:
            hex_pdu = bytes(rng.randrange(256) for _ in range(rng.randint(0, 180))).hex()
        else:
            hex_pdu = rng.choice(SEEDS)
            cut = rng.randrange(len(hex_pdu))
            hex_pdu = (
                hex_pdu[:cut]
                + rng.choice(["", "G", "z", " ", "\x00", "é", "0x"])
                + hex_pdu[cut + 1 :]
            )
        if rng.random() < 0.5:
            hex_pdu = hex_pdu.upper()
        yield hex_pdu, smsc


@pytest.mark.timeout(3600)
def test_fuzz_decoder_raises_only_codec_error(long_run: bool) -> None:
    rng = random.Random(SEED)
    rounds = LONG_ROUNDS if long_run else ROUNDS
    decoded = rejected = 0
    arm: Callable[[object], None]
    with cpu_bound_per_input(CPU_BOUND) as arm:
        for n, (hex_pdu, smsc) in enumerate(_cases(rng, rounds)):
            arm((SEED, n, hex_pdu))
            try:
                result = pdu.decode(hex_pdu, smsc=smsc)
            except CodecError as exc:
                assert exc.where and exc.why, (SEED, n, hex_pdu)
                # The decoder's last-resort guard turns a slip into CodecError; never fires.
                assert "internal decoder error" not in exc.why, (SEED, n, hex_pdu, exc.why)
                rejected += 1
                continue
            except Exception as exc:  # noqa: BLE001 - the point of the test
                pytest.fail(f"seed {SEED} case {n}: {type(exc).__name__}: {exc} for {hex_pdu!r}")
            result.to_json()  # what the CLI and the store do next must not fail either
            decoded += 1
    # Both paths are exercised: a fuzzer that only hits one of them tests little.
    assert decoded > rounds // 20 and rejected > rounds // 20, (decoded, rejected)
    print(f"PDU fuzz: seed {SEED}, {rounds} inputs, {decoded} decoded, {rejected} rejected")


@pytest.mark.parametrize("value", [None, 123, b"0011", ["00"]])
def test_non_string_input_is_a_codec_error(value: object) -> None:
    with pytest.raises(CodecError):
        pdu.decode(value)  # type: ignore[arg-type]
