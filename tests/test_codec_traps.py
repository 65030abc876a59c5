"""One regression test per trap of issue 2 ("Traps that must each have a regression test").

Each is a bug measured on python-gsmmodem-new 0.13.0 against Gammu's decoder, which a user of a
gateway would hit; the PDUs are the ones in the issue.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from gateway.modem import pdu, text
from gateway.modem.refs import FileReferenceAllocator

# --- emoji --------------------------------------------------------------------------------------


def test_trap_emoji_in_outbound_text_is_sent_as_ucs2_not_an_error() -> None:
    (part,) = pdu.encode_submit("+447700900123", "Hi 😀")
    decoded = pdu.decode(part.pdu)
    assert decoded.dcs == 0x08 and decoded.encoding == "ucs2"
    assert decoded.text == "Hi 😀"
    assert part.pdu.endswith("0A004800690020D83DDE00")  # UDL 10: H, i, space, one surrogate pair


def test_trap_inbound_surrogate_pair_D83DDE00_is_one_emoji() -> None:
    hex_pdu = "00040B911346610089F600084210203040500004D83DDE00"
    decoded = pdu.decode(hex_pdu)
    assert decoded.text == "😀"
    assert len(decoded.text) == 1  # one code point, not two lone surrogates
    assert decoded.warnings == []


def test_trap_66_cyrillic_plus_emoji_never_splits_the_pair() -> None:
    # As one SMS (68 units of 70) ...
    (only,) = pdu.encode_submit("+1", "Ж" * 66 + "😀")
    assert pdu.decode(only.pdu).text == "Ж" * 66 + "😀"
    # ... and where the pair would straddle unit 67 of a concatenated part: it moves whole.
    parts = pdu.encode_submit("+1", "Ж" * 66 + "😀" + "Ж" * 10, reference=1)
    texts = [pdu.decode(p.pdu).text for p in parts]
    assert texts == ["Ж" * 66, "😀" + "Ж" * 10]
    for p in parts:
        body = _user_data(p.pdu)[6:]
        assert not 0xD800 <= int.from_bytes(body[-2:], "big") <= 0xDBFF  # no high half at the end
    # With 16-bit references (66 units a part) the pair straddles one unit earlier.
    assert text.split("Ж" * 65 + "😀" + "Ж" * 10, ref16=True)[0] == "Ж" * 65


def _user_data(hex_pdu: str) -> bytes:
    raw = bytes.fromhex(hex_pdu)
    tp = raw[raw[0] + 1 :]
    da_octets = (tp[2] + 1) // 2
    return tp[2 + 2 + da_octets + 2 + 1 :]


# --- GSM-7 bit alignment ------------------------------------------------------------------------


def test_trap_16bit_concat_header_shifts_fill_bits() -> None:
    decoded = pdu.decode("00400B917477000921F30000421020304050000D06080412340101C8329BFD06")
    assert decoded.text == "Hello"  # python-gsmmodem reads "ello": it assumes one fill bit
    assert decoded.concat == pdu.Concat(0x1234, 1, 1, 16)


def test_trap_trailing_at_sign_when_septets_are_a_multiple_of_8() -> None:
    decoded = pdu.decode("0001000C9144770009103200000861F1985C369F01")
    assert decoded.text == "abcdefg@"
    # And the encoder keeps it too.
    (part,) = pdu.encode_submit("+447700900123", "abcdefg@")
    assert part.pdu.endswith("0861F1985C369F01")
    assert pdu.decode(part.pdu).text == "abcdefg@"


# --- GSM-7 table ------------------------------------------------------------------------------


def test_trap_0x5F_is_section_sign() -> None:
    assert text.decode_gsm7([0x5F]) == "§"
    assert text.encode_gsm7("§") == [0x5F]
    assert text.analyze("§").encoding == "gsm7"


def test_trap_backtick_forces_ucs2() -> None:
    a = text.analyze("say `hi`")
    assert a.encoding == "ucs2"
    assert [u.position for u in a.unicode_chars] == [4, 7]
    (part,) = pdu.encode_submit("+1", "say `hi`")
    assert pdu.decode(part.pdu).text == "say `hi`"


def test_trap_escape_as_last_septet_does_not_crash() -> None:
    decoded = pdu.decode("07911326040000F0040B911346610089F600004210203040500002E10D")
    assert decoded.text == "a "
    assert any("escape" in w for w in decoded.warnings)


def test_trap_escape_followed_by_unknown_code_does_not_crash() -> None:
    # ESC 0x41 has no extension character: TS 23.038 says show the default-table one, 'A'.
    body = text.pack_septets([0x62, 0x1B, 0x41, 0x63])
    decoded = pdu.decode(f"00040B911346610089F6000042102030405000 04{body.hex()}".replace(" ", ""))
    assert decoded.text == "bAc"
    assert any("undefined" in w for w in decoded.warnings)


# --- DCS and timestamp ------------------------------------------------------------------------


def test_trap_dcs_0x48_is_ucs2() -> None:
    decoded = pdu.decode("07911326040000F0040B911346610089F6004842102030405000080041004200430044")
    assert decoded.text == "ABCD" and decoded.encoding == "ucs2"


def test_trap_dcs_0xF4_is_8bit_data() -> None:
    decoded = pdu.decode("07911326040000F0040B911346610089F600F4421020304050000441424344")
    assert decoded.encoding == "8bit"
    assert decoded.data == b"ABCD"
    assert decoded.message_class == 0


def test_trap_all_zero_timestamp_is_not_a_crash() -> None:
    decoded = pdu.decode("07911326040000F0040B911346610089F60000000000000000000AE8329BFD4697D9EC37")
    assert decoded.text == "hellohello"
    assert decoded.timestamp is None
    assert decoded.to_json()["timestamp"] is None
    assert any("TP-SCTS" in w for w in decoded.warnings)


# --- addresses and lengths ---------------------------------------------------------------------


@pytest.mark.parametrize("written", ["+44 7700 900123", "+44-7700-900-123", "+44 (0)7700 900123"])
def test_trap_numbers_with_spaces_or_dashes_are_numbers(written: str) -> None:
    field = pdu.encode_address(written)
    assert field[1] == pdu.TOA_INTERNATIONAL  # not 0xD0 alphanumeric
    (part,) = pdu.encode_submit(written, "x")
    assert pdu.decode(part.pdu).number.startswith("+447700")


def test_trap_alphanumeric_address_has_ceil_7n_over_4_semi_octets() -> None:
    for name, semi_octets in [("A", 2), ("Bank", 7), ("MyBank", 11), ("InfoSMS", 13)]:
        field = pdu.encode_address(name)
        assert field[0] == semi_octets == -(-7 * len(name) // 4)
        assert pdu.decode(pdu.encode_deliver(name, "x")[0]).number == name


def test_trap_cmgs_length_excludes_the_smsc_field() -> None:
    (with_smsc,) = pdu.encode_submit("+447700900123", "hello", smsc="+447785016005")
    (without,) = pdu.encode_submit("+447700900123", "hello")
    assert with_smsc.length == without.length
    raw = bytes.fromhex(with_smsc.pdu)
    assert with_smsc.length == len(raw) - 1 - raw[0]


def test_trap_validity_rounds_up_and_accepts_2_minutes_and_31_days() -> None:
    assert pdu.validity_minutes(pdu.validity_octet(2)) == 5
    assert pdu.validity_minutes(pdu.validity_octet(31 * 24 * 60)) == 35 * 24 * 60
    assert pdu.validity_minutes(pdu.validity_octet(721)) == 750  # not 720: never shorter
    (part,) = pdu.encode_submit("+1", "x", validity_minutes=31 * 24 * 60)
    assert pdu.decode(part.pdu).validity == 35 * 24 * 60


# --- references and status ------------------------------------------------------------------


def test_trap_concat_references_do_not_repeat_across_restarts_or_modems(tmp_path) -> None:
    state = tmp_path / "refs.json"
    seen: list[int] = []
    for _restart in range(8):  # a new instance on the same file is a restart
        modem_a = FileReferenceAllocator(state)
        modem_b = FileReferenceAllocator(state)  # a second modem of the same gateway
        for _ in range(16):
            seen.append(modem_a.next("+447700900123"))
            seen.append(modem_b.next("+447700900123"))
    assert len(seen) == 256 and len(set(seen)) == 256  # a full cycle before any repeat


def test_trap_concat_references_unique_when_modems_allocate_concurrently(tmp_path) -> None:
    state = tmp_path / "refs.json"
    results: list[int] = []
    lock = threading.Lock()

    def modem() -> None:
        allocator = FileReferenceAllocator(state)  # each modem thread has its own instance
        got = [allocator.next("+15551234567", bits=16) for _ in range(50)]
        with lock:
            results.extend(got)

    threads = [threading.Thread(target=modem) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 200
    assert len(set(results)) == 200


@pytest.mark.parametrize("status", [0x20, 0x21, 0x25, 0x2F, 0x30, 0x3F])
def test_trap_status_0x20_to_0x3F_is_still_trying_not_failed(status: int) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    report = pdu.decode(pdu.encode_status_report("+1", 5, status, submitted=when, discharged=when))
    assert report.status_category == "pending"
    assert not report.delivered
    assert "still trying" in report.status_meaning
