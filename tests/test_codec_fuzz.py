"""Fuzz the decoder: random and mutated PDUs; only CodecError may escape, and nothing hangs.

Seeded, so a failure reproduces; the seed and the PDU are in the assertion message.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest

from gateway.modem import pdu
from gateway.modem.errors import CodecError

SEED = 20240501
ROUNDS = 20_000

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


MUTATORS: list[Callable[[random.Random, bytearray], bytearray]] = [
    _truncate,
    _flip_bits,
    _set_byte,
    _insert_delete,
    _splice,
    _extend,
]


def _cases(rng: random.Random) -> Iterator[tuple[str, bool]]:
    """(hex, smsc) pairs: mutated seeds, random octets, and broken hex strings."""
    for i in range(ROUNDS):
        smsc = rng.random() < 0.8
        roll = i % 10
        if roll < 7:
            data = bytearray(rng.choice(SEED_BYTES))
            for _ in range(rng.randint(1, 3)):
                data = rng.choice(MUTATORS)(rng, data)
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


@pytest.mark.timeout(60)
def test_fuzz_decoder_raises_only_codec_error() -> None:
    rng = random.Random(SEED)
    decoded = rejected = 0
    for n, (hex_pdu, smsc) in enumerate(_cases(rng)):
        try:
            result = pdu.decode(hex_pdu, smsc=smsc)
        except CodecError as exc:
            assert exc.where and exc.why, (SEED, n, hex_pdu)
            # The decoder's last-resort guard turns a slip into CodecError; it must never fire.
            assert "internal decoder error" not in exc.why, (SEED, n, hex_pdu, exc.why)
            rejected += 1
            continue
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"seed {SEED} case {n}: {type(exc).__name__}: {exc} for {hex_pdu!r}")
        result.to_json()  # what the CLI and the store do next must not fail either
        decoded += 1
    # Both paths are exercised: a fuzzer that only hits one of them tests little.
    assert decoded > ROUNDS // 20 and rejected > ROUNDS // 20, (decoded, rejected)


@pytest.mark.parametrize("value", [None, 123, b"0011", ["00"]])
def test_non_string_input_is_a_codec_error(value: object) -> None:
    with pytest.raises(CodecError):
        pdu.decode(value)  # type: ignore[arg-type]
