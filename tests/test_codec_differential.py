"""Differential test against an independent decoder: python-gsmmodem-new's ``gsmmodem.pdu``.

Where theirs is right, both decoders must agree on number, text, timestamp, concatenation and
status. Where theirs is known to be wrong (issue 2's traps), the case is recorded as an expected
divergence that asserts THEY fail and WE are right, so a fixed upstream shows up here too.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from gateway.modem import pdu
from gateway.modem.alphabets import DEFAULT_LOCKING, DEFAULT_SINGLE_SHIFT

gsmpdu = pytest.importorskip("gsmmodem.pdu")

PUBLIC = [
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
    "07911326040000F0040B911346610089F60000208062917314800CC8F71D14969741F977FD07",
    "07917238010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37",
    "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
    "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6"
    "D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E",
    "06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910",
    "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E064941B19CA"
    "B060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7E565D0DB0D82C55E"
    "B0DB4B068BCD5C20",
    "07911326040000F0310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701",
    "07914346466554F601000B914316565811F9000806304253F68449",
    "0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421",
    "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301",
    "0006D60B911326880736F4111011719551401110117195714000",
]

# Theirs reads 0x5F as a backtick and drops ESC 0x0A (form feed): both are divergences below, so
# the agreement corpus leaves '§' and form feed out.
GSM_CHARS = [c for c in DEFAULT_LOCKING if c not in "\x1b§"] + [
    c for c in DEFAULT_SINGLE_SHIFT.values() if c != "\f"
]
BMP_CHARS = "ЖЩЮяабвгдежзийклмнопрстуфхцчшщ你好世界こんにちはابتثجحשלוםαβγδ€’“”…"


def _generated_corpus() -> list[str]:
    """DELIVERs and STATUS-REPORTs from our encoder, seeded: GSM-7 (with extension characters),
    UCS-2 without astral characters, 8-bit data, 8-bit concatenation, alphanumeric senders,
    positive and negative time zones."""
    rng = random.Random(2024)
    out: list[str] = []
    senders = ["+447700900123", "+15551234567", "0612345678", "12345", "MyBank", "Info_SMS"]
    for i in range(300):
        kind = i % 3
        n = rng.randint(1, 400)
        if kind == 0:
            body = "".join(rng.choice(GSM_CHARS) for _ in range(n)).rstrip("@")  # see trap test
        elif kind == 1:
            body = "".join(rng.choice(BMP_CHARS + "abc 123") for _ in range(n))
        else:
            body = bytes(rng.randrange(256) for _ in range(n // 3))
        quarters = rng.randint(-48, 56)
        when = datetime(
            rng.randint(2000, 2068),  # theirs reads yy 69-99 as 19yy, ours as 20yy
            rng.randint(1, 12),
            rng.randint(1, 28),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            tzinfo=timezone(timedelta(minutes=15 * quarters)),
        )
        out.extend(
            pdu.encode_deliver(
                rng.choice(senders),
                body or "x",
                timestamp=when,
                reference=rng.randrange(256),
                smsc=rng.choice([None, "+447785016005"]),
            )
        )
    for status in (0x00, 0x01, 0x20, 0x45, 0x63):
        when = datetime(2024, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-3)))
        out.append(
            pdu.encode_status_report(
                "+447700900123", status + 1, status, submitted=when, discharged=when
            )
        )
    return out


CORPUS = PUBLIC + _generated_corpus()


def _theirs_concat(decoded: dict) -> tuple[int, int, int] | None:
    for ie in decoded.get("udh") or []:
        if isinstance(ie, gsmpdu.Concatenation):
            return (ie.reference, ie.parts, ie.number)
    return None


def _same_time(theirs: datetime, ours: datetime | None) -> bool:
    """Equal instants and offsets; the century is a convention (the PDU has two digits)."""
    assert ours is not None
    if theirs.year != ours.year:
        theirs = theirs.replace(year=ours.year) if theirs.year % 100 == ours.year % 100 else theirs
    return theirs == ours and theirs.utcoffset() == ours.utcoffset()


def test_corpus_is_large_and_varied() -> None:
    kinds = {type(pdu.decode(h)).__name__ for h in CORPUS}
    assert kinds == {"Deliver", "Submit", "StatusReport"}
    assert len(CORPUS) > 300


@pytest.mark.parametrize("hex_pdu", CORPUS)
def test_agrees_with_python_gsmmodem(hex_pdu: str) -> None:
    ours = pdu.decode(hex_pdu)
    theirs = gsmpdu.decodeSmsPdu(hex_pdu)
    assert theirs["number"] == ours.number
    assert theirs.get("smsc") == ours.smsc
    if isinstance(ours, pdu.StatusReport):
        assert theirs["type"] == "SMS-STATUS-REPORT"
        assert (theirs["reference"], theirs["status"]) == (ours.reference, ours.status)
        assert _same_time(theirs["time"], ours.timestamp)
        assert _same_time(theirs["discharge"], ours.discharge_time)
        return
    if ours.data is not None:  # 8-bit data: theirs returns the octets as code points
        assert theirs["text"] == ours.data.decode("latin-1")
    else:
        assert theirs["text"] == ours.text
    if isinstance(ours, pdu.Deliver):
        assert theirs["type"] == "SMS-DELIVER"
        assert _same_time(theirs["time"], ours.timestamp)
    else:
        assert theirs["type"] == "SMS-SUBMIT"
    concat = ours.concat
    assert _theirs_concat(theirs) == (
        (concat.reference, concat.total, concat.seq) if concat else None
    )


# --- expected divergences: theirs is wrong, ours is right ---------------------------------------


def test_divergence_inbound_emoji_theirs_gives_lone_surrogates() -> None:
    hex_pdu = "00040B911346610089F600084210203040500004D83DDE00"
    assert gsmpdu.decodeSmsPdu(hex_pdu)["text"] == "\ud83d\ude00"  # two lone surrogates
    assert pdu.decode(hex_pdu).text == "😀"


def test_divergence_outbound_emoji_theirs_raises() -> None:
    with pytest.raises(ValueError):
        gsmpdu.encodeSmsSubmitPdu("+447700900123", "Hi 😀")
    (part,) = pdu.encode_submit("+447700900123", "Hi 😀")
    assert pdu.decode(part.pdu).text == "Hi 😀"


def test_divergence_16bit_reference_theirs_drops_the_first_character() -> None:
    hex_pdu = "00400B917477000921F30000421020304050000D06080412340101C8329BFD06"
    theirs = gsmpdu.decodeSmsPdu(hex_pdu)
    assert theirs["text"] == "ello"
    assert _theirs_concat(theirs) == (0x1234, 1, 1)  # the reference itself they read right
    assert pdu.decode(hex_pdu).text == "Hello"
    for h in pdu.encode_deliver("+1", "a" * 200, ref16=True, reference=0x4321):
        ours = pdu.decode(h)
        assert gsmpdu.decodeSmsPdu(h)["text"] == ours.text[1:]


def test_divergence_trailing_at_theirs_drops_it() -> None:
    hex_pdu = "0001000C9144770009103200000861F1985C369F01"
    assert gsmpdu.decodeSmsPdu(hex_pdu)["text"] == "abcdefg"
    assert pdu.decode(hex_pdu).text == "abcdefg@"


def test_divergence_trailing_escape_theirs_crashes() -> None:
    hex_pdu = "07911326040000F0040B911346610089F600004210203040500002E10D"
    with pytest.raises(StopIteration):  # not even a ValueError
        gsmpdu.decodeSmsPdu(hex_pdu)
    assert pdu.decode(hex_pdu).text == "a "


def test_divergence_dcs_0x48_theirs_reads_ucs2_as_gsm7() -> None:
    hex_pdu = "07911326040000F0040B911346610089F6004842102030405000080041004200430044"
    assert gsmpdu.decodeSmsPdu(hex_pdu)["text"] != "ABCD"
    assert pdu.decode(hex_pdu).text == "ABCD"


def test_divergence_dcs_0xF4_theirs_reads_8bit_as_gsm7() -> None:
    hex_pdu = "07911326040000F0040B911346610089F600F4421020304050000441424344"
    assert gsmpdu.decodeSmsPdu(hex_pdu)["text"] != "ABCD"
    assert pdu.decode(hex_pdu).data == b"ABCD"


def test_divergence_zero_timestamp_theirs_raises() -> None:
    hex_pdu = "07911326040000F0040B911346610089F60000000000000000000AE8329BFD4697D9EC37"
    with pytest.raises(ValueError):
        gsmpdu.decodeSmsPdu(hex_pdu)
    ours = pdu.decode(hex_pdu)
    assert ours.text == "hellohello" and ours.timestamp is None


def test_divergence_address_nibble_b_is_hash_not_letter() -> None:
    hex_pdu = "0297F1061C0F910B487228297020F5317062419272803170624192138000"
    assert gsmpdu.decodeSmsPdu(hex_pdu)["number"] == "+b08427829207025"
    assert pdu.decode(hex_pdu).number == "+#08427829207025"  # TS 23.040: 1011 is '#'


def test_divergence_0x5F_theirs_reads_a_backtick() -> None:
    (part,) = pdu.encode_submit("+1", "§ 5")
    assert gsmpdu.decodeSmsPdu(part.pdu)["text"] == "` 5"
    assert pdu.decode(part.pdu).text == "§ 5"


def test_divergence_form_feed_theirs_drops_it() -> None:
    (part,) = pdu.encode_submit("+1", "page\fbreak")
    assert gsmpdu.decodeSmsPdu(part.pdu)["text"] == "pagebreak"
    assert pdu.decode(part.pdu).text == "page\fbreak"
