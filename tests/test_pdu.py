"""PDU encode and decode (gateway.modem.pdu) against published examples and TS 23.040 / 23.038.

Public PDUs come from the classic PDU-mode tutorials and python-gsmmodem's own test suite; where a
tutorial's reading disagrees with the specification (a swapped time-zone nibble), the test follows
the specification and says so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.modem import pdu, text
from gateway.modem.errors import CodecError, MessageTooLong


def tz(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


def tpdu_octets(part: pdu.SubmitPart) -> int:
    raw = bytes.fromhex(part.pdu)
    return len(raw) - 1 - raw[0]


def deliver_hex(ud_hex: str, udl: int, *, dcs: int = 0x00, first: int = 0x04, oa: str = "") -> str:
    """A DELIVER (empty SMSC field) from +31641600986 at 2024-01-02 03:04:05 UTC."""
    oa = oa or "0B911346610089F6"
    return f"00{first:02X}{oa}00{dcs:02X}42102030405000{udl:02X}{ud_hex}"


# --- SMS-SUBMIT encode: public examples ---------------------------------------------------------


def test_submit_hello_world() -> None:
    (part,) = pdu.encode_submit("+27820001111", "Hello World!")
    assert part.pdu == "0001000B917228001011F100000CC8329BFD065DDF72363904"
    assert part.length == 24 == tpdu_octets(part)


def test_submit_ucs2_with_smsc_and_validity() -> None:
    (part,) = pdu.encode_submit(
        "+123456789", "世界您好！", smsc="+44000000000", validity_minutes=52 * 7 * 24 * 60
    )
    assert part.pdu == "07914400000000F01100099121436587F90008F40A4E16754C60A8597DFF01"
    assert part.length == len(part.pdu) // 2 - 8  # the SMSC field (07 + 7 octets) is not counted


def test_submit_national_number_srr_reference() -> None:
    # python-gsmmodem's example writes type 0xA1 (national) for numbers without '+'; we write 0x81
    # (unknown), which every network accepts for a number dialled as written.
    (part,) = pdu.encode_submit(
        "0126541234",
        "Test message: local numbers",
        smsc="12345",
        status_report=True,
        validity_minutes=3 * 24 * 60,
        message_reference=13,
    )
    assert part.pdu == (
        "04812143F5310D0A8110624521430000A91BD4F29C0E6A97E7F3F0B9AC03B1DFE3301BE4AEB7C565F91C"
    )


LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipisicing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua.Ut enim ad minim veniam, quinostrud exercitation ullamco "
    "laboris nisi ut aliquip ex ea commodo consequat.Duis aute irure dolor in reprehenderit in "
    "voluptate velit esse cillum doloe eu fugiat nulla pariatur.Excepteur sint occaecat "
    "cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum"
)
LOREM_PDUS = [
    "0045000B915121551532F40000A0050003000301986F79B90D4AC3E7F53688FC66BFE5A0799A0E0AB7CB741668FC"
    "76CFCB637A995E9783C2E4343C3D4F8FD3EE33A8CC4ED359A079990C22BF41E5747DDE7E9341F4721BFE9683D2EE"
    "719A9C26D7DD74509D0E6287C56F791954A683C86FF65B5E06B5C36777181466A7E3F5B0AB4A0795DDE936284C06"
    "B5D3EE741B642FBBD3E1360B14AFA7DD",
    "0045000B915121551532F40000A0050003000302DE73BABC4E0695F165F9384D0FD3D36F37A8CE6687DBE337881D"
    "16BFE5E939C89D9EA741753A28CC4EC7EB6938A88C0795C3A0F1BBDD7E93DFA0F1DB3D2FC7EB61BA8B584FCF41E1"
    "3ABD0C4ACBEBF23288FC66BFE5A0B41B242FC3E56574D94D2ECBD37450DA0DB2BFD975383D4C2F83EC65769A0E2A"
    "CFE765D038CD66D7DB20F29BFD2E83CA",
    "0045000B915121551532F400008C050003000303EA2073FD9C0ED341EE3A9B1D06C1C3F274985E97BB8AF871194E"
    "2FD7E5A079DA4D07BDC7E370791CA683C675789A1CA687E920F7DB0D82CBDF6972D94D6781E675371D947683C675"
    "363C0C8AD7D3A0B7D99C1EA7C32072795E96D7DD7450FBCD66A7E9A0B03BDD06A5C9A0F29C0E6287C56F79BD0D",
]


def test_submit_concatenated_public_example() -> None:
    parts = pdu.encode_submit("+15125551234", LOREM, reference=0, reject_duplicates=True)
    assert [p.pdu for p in parts] == LOREM_PDUS
    assert [(p.seq, p.total, p.reference) for p in parts] == [(1, 3, 0), (2, 3, 0), (3, 3, 0)]


# --- SMS-SUBMIT encode: fields -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "field"),
    [
        ("+447700900123", "0C91447700091032"),
        ("+44 7700-900 123", "0C91447700091032"),  # written with spaces and dashes
        ("(0)7700.900/123", "0B817007900021F3"),
        ("07700900123", "0B817007900021F3"),  # national: type unknown, digits as dialled
        ("12345", "05812143F5"),  # short code
        ("1234", "04812143"),
    ],
)
def test_destination_addresses(number: str, field: str) -> None:
    assert pdu.encode_address(number).hex().upper() == field
    (part,) = pdu.encode_submit(number, "x")
    assert field in part.pdu


@pytest.mark.parametrize(
    ("smsc", "field"),
    [(None, "00"), ("", "00"), ("+31624000000", "07911326040000F0"), ("12345", "04812143F5")],
)
def test_smsc_field(smsc: str | None, field: str) -> None:
    assert pdu.encode_smsc(smsc).hex().upper() == field


def test_invalid_numbers() -> None:
    for bad in ("", "+", "12+34", "Hello", "+44 77 0O"):
        with pytest.raises(CodecError) as info:
            pdu.encode_submit(bad, "x")
        assert info.value.where == "number"
    with pytest.raises(CodecError):
        pdu.encode_smsc("SMSC")
    with pytest.raises(CodecError):
        pdu.address_digits("1" * 21)


def _first_octet(part: pdu.SubmitPart) -> int:
    raw = bytes.fromhex(part.pdu)
    return raw[raw[0] + 1]


def test_first_octet_flags() -> None:
    assert _first_octet(pdu.encode_submit("+1", "x")[0]) == 0x01
    assert _first_octet(pdu.encode_submit("+1", "x", status_report=True)[0]) == 0x21
    assert _first_octet(pdu.encode_submit("+1", "x", validity_minutes=60)[0]) == 0x11
    assert _first_octet(pdu.encode_submit("+1", "x", reject_duplicates=True)[0]) == 0x05
    assert _first_octet(pdu.encode_submit("+1", "x" * 200)[0]) == 0x41
    decoded = pdu.decode(
        pdu.encode_submit(
            "+1", "x", status_report=True, reject_duplicates=True, validity_minutes=61
        )[0].pdu
    )
    assert isinstance(decoded, pdu.Submit)
    assert decoded.status_report_request and decoded.reject_duplicates
    assert decoded.validity == 65


def test_message_reference() -> None:
    (part,) = pdu.encode_submit("+1", "x", message_reference=0xAB)
    assert part.pdu[4:6] == "AB"
    assert pdu.decode(part.pdu).reference == 0xAB


@pytest.mark.parametrize(
    ("minutes", "octet", "means"),
    [
        (1, 0, 5),
        (2, 0, 5),  # 2 minutes is not an error: it becomes the shortest period, 5 minutes
        (5, 0, 5),
        (6, 1, 10),
        (720, 143, 720),
        (721, 144, 750),
        (13 * 60, 145, 780),
        (24 * 60, 167, 1440),
        (24 * 60 + 1, 168, 2 * 1440),
        (3 * 1440, 169, 3 * 1440),
        (30 * 1440, 196, 30 * 1440),
        (31 * 1440, 197, 35 * 1440),  # 31 days is not an error: 5 weeks
        (63 * 7 * 1440, 255, 63 * 7 * 1440),
    ],
)
def test_validity_rounds_up(minutes: int, octet: int, means: int) -> None:
    assert pdu.validity_octet(minutes) == octet
    assert pdu.validity_minutes(octet) == means


def test_validity_never_shorter_and_tightest() -> None:
    minutes = list(range(1, 5 * 1440)) + list(range(5 * 1440, 63 * 7 * 1440 + 1, 97))
    for m in minutes:
        octet = pdu.validity_octet(m)
        assert pdu.validity_minutes(octet) >= m
        if octet:
            assert pdu.validity_minutes(octet - 1) < m


def test_validity_out_of_range() -> None:
    for bad in (0, -5, 63 * 7 * 1440 + 1):
        with pytest.raises(CodecError) as info:
            pdu.validity_octet(bad)
        assert info.value.where == "validity"


def test_validity_minutes_of_every_octet_is_monotonic() -> None:
    values = [pdu.validity_minutes(o) for o in range(256)]
    assert values == sorted(values) and len(set(values)) == 256


def test_flash_class_0() -> None:
    gsm = pdu.decode(pdu.encode_submit("+1", "alert", flash=True)[0].pdu)
    assert gsm.dcs == 0x10 and gsm.message_class == 0 and gsm.text == "alert"
    ucs = pdu.decode(pdu.encode_submit("+1", "тревога", flash=True)[0].pdu)
    assert ucs.dcs == 0x18 and ucs.message_class == 0 and ucs.text == "тревога"
    assert pdu.decode(pdu.encode_submit("+1", "x")[0].pdu).message_class is None


def _ud(part: pdu.SubmitPart) -> bytes:
    """TP-UD of an encoded SUBMIT without VP (UDL dropped)."""
    raw = bytes.fromhex(part.pdu)
    tp = raw[raw[0] + 1 :]
    da_octets = (tp[2] + 1) // 2
    return tp[2 + 2 + da_octets + 2 + 1 :]


def test_concat_8bit_header_and_fill_bit() -> None:
    parts = pdu.encode_submit("+1", "a" * 161, reference=0x42)
    assert len(parts) == 2
    ud = _ud(parts[1])
    assert ud[:6] == bytes.fromhex("050003420202")
    # 6 header octets = 48 bits; text starts at septet 7 (bit 49): one fill bit, so 'a' (0x61)
    # appears shifted left by one.
    assert ud[6] == (0x61 << 1) & 0xFF
    raw = bytes.fromhex(parts[1].pdu)
    assert raw[raw[0] + 1 + 2 + 2 + 1 + 2] == 7 + 8  # UDL: header septets + text septets
    assert pdu.decode(parts[1].pdu).concat == pdu.Concat(0x42, 2, 2, 8)


def test_concat_16bit_header_has_no_fill_bits() -> None:
    parts = pdu.encode_submit("+1", "a" * 161, ref16=True, reference=0x1234)
    assert [len(p.text) for p in parts] == [152, 9]
    ud = _ud(parts[0])
    assert ud[:7] == bytes.fromhex("06080412340201")
    # 7 header octets = 56 bits = 8 septets exactly: no fill; 'a','a' pack to E1 70.
    assert ud[7:9] == bytes.fromhex("E170")
    assert pdu.decode(parts[0].pdu).concat == pdu.Concat(0x1234, 2, 1, 16)
    assert [pdu.decode(p.pdu).text for p in parts] == ["a" * 152, "a" * 9]


def test_reference_range() -> None:
    with pytest.raises(CodecError, match="8-bit"):
        pdu.encode_submit("+1", "a" * 200, reference=256)
    with pytest.raises(CodecError, match="16-bit"):
        pdu.encode_submit("+1", "a" * 200, reference=0x10000, ref16=True)
    assert pdu.encode_submit("+1", "a" * 200, reference=0xFFFF, ref16=True)[0].reference == 0xFFFF
    random_ref = pdu.encode_submit("+1", "a" * 200)[0].reference
    assert random_ref is not None and 0 <= random_ref <= 255
    assert pdu.encode_submit("+1", "short")[0].reference is None


def test_ucs2_user_data() -> None:
    assert _ud(pdu.encode_submit("+1", "Ж")[0]) == bytes.fromhex("0416")
    assert _ud(pdu.encode_submit("+1", "😀")[0]) == bytes.fromhex("D83DDE00")
    assert _ud(pdu.encode_submit("+1", "abc", encoding="ucs2")[0]) == bytes.fromhex("006100620063")
    with pytest.raises(CodecError):
        pdu.encode_submit("+1", "Ж", encoding="gsm7")


def test_8bit_data() -> None:
    (part,) = pdu.encode_submit("+1", b"\x00\xffABC")
    decoded = pdu.decode(part.pdu)
    assert decoded.dcs == 0x04 and decoded.encoding == "8bit"
    assert decoded.data == b"\x00\xffABC" and decoded.text == ""
    parts = pdu.encode_submit("+1", bytes(range(141)), reference=9)
    assert [len(bytes.fromhex(p.text)) for p in parts] == [134, 7]
    assert b"".join(pdu.decode(p.pdu).data for p in parts) == bytes(range(141))
    with pytest.raises(MessageTooLong):
        pdu.encode_submit("+1", bytes(135 * 3), max_parts=2)


def test_too_long_text() -> None:
    with pytest.raises(MessageTooLong, match="limit is 3 parts"):
        pdu.encode_submit("+1", "a" * 500, max_parts=3)


def test_cmgs_length_excludes_smsc_for_every_part() -> None:
    for smsc in (None, "+31624000000"):
        for body in ("hi", "a" * 400, "Ж" * 150, b"\x01" * 300):
            for part in pdu.encode_submit("+441234567890", body, smsc=smsc, validity_minutes=60):
                assert part.length == tpdu_octets(part)


# --- decode: public examples -------------------------------------------------------------------


def test_decode_how_are_you() -> None:
    d = pdu.decode("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07")
    assert isinstance(d, pdu.Deliver)
    assert (d.smsc, d.number, d.text) == ("+31624000000", "+31641600986", "How are you?")
    # The tutorial reads the zone octet 08 as +2 h; by TS 23.040 the first semi-octet is the tens
    # digit with the sign in bit 3, so 08 is "-0": UTC.
    assert d.timestamp == datetime(2002, 8, 26, 19, 37, 41, tzinfo=UTC)
    corrected = pdu.decode(
        "07911326040000F0040B911346610089F60000208062917314800CC8F71D14969741F977FD07"
    )
    assert corrected.timestamp == datetime(2002, 8, 26, 19, 37, 41, tzinfo=tz(2))


def test_decode_hello_world_variant() -> None:
    d = pdu.decode("07911326040000F0040B911346610089F60000208062917314080CC8329BFD065DDF72363904")
    assert d.text == "Hello World!" and d.number == "+31641600986"


def test_decode_hellohello_subscriber_number() -> None:
    d = pdu.decode("07917238010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")
    assert d.smsc == "+27831000015"
    assert d.number == "27838890001"  # type 0xC8: subscriber number, no '+'
    # The century is not in the PDU (the tutorial means 1999); only the rest is asserted.
    assert d.timestamp.timetuple()[1:6] == (3, 29, 15, 16, 59)
    assert d.timestamp.utcoffset() == timedelta(hours=2)
    assert d.text == "hellohello"


@pytest.mark.parametrize(
    ("hex_pdu", "smsc", "number", "when", "body"),
    [
        (
            "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
            "+2782913593",
            "+27821234567",
            datetime(2013, 3, 8, 15, 2, 16, tzinfo=tz(2)),
            "Test2",
        ),
        (
            "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132"
            "885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E",
            "+85290000000",
            "+85291234567",
            datetime(2007, 4, 12, 23, 25, 42, tzinfo=tz(8)),
            "It is easy to read text messages via AT commands.",
        ),
        (
            "06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910",
            "+2782913593",
            "+27821234567",
            datetime(2013, 3, 26, 13, 35, 25, tzinfo=tz(2)),
            "@{tést}!",
        ),
    ],
)
def test_decode_public_delivers(
    hex_pdu: str, smsc: str, number: str, when: datetime, body: str
) -> None:
    d = pdu.decode(hex_pdu)
    assert (d.type, d.smsc, d.number, d.timestamp, d.text) == ("deliver", smsc, number, when, body)
    assert d.timestamp.utcoffset() == when.utcoffset()
    assert d.warnings == []
    # The same TPDU without its SMSC field (AT+CSCA-less modems, +CMT with <alpha>):
    no_smsc = pdu.decode(hex_pdu[2 + 2 * int(hex_pdu[:2], 16) :], smsc=False)
    assert (no_smsc.smsc, no_smsc.number, no_smsc.text) == (None, number, body)


def test_decode_negative_time_zone() -> None:
    d = pdu.decode("0004" + "0B911346610089F6" + "0000" + "7040213252242B" + "0131")
    assert d.timestamp == datetime(2007, 4, 12, 23, 25, 42, tzinfo=tz(-8))
    assert d.to_json()["timestamp"] == "2007-04-12T23:25:42-08:00"
    quarter = pdu.decode("0004" + "0B911346610089F6" + "0000" + "7040213252249A" + "0131")
    assert quarter.timestamp.utcoffset() == timedelta(hours=-7.25)  # 9A: sign, tens 2, units 9


def test_decode_concatenated_delivery_from_short_sender() -> None:
    d = pdu.decode(
        "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E064941B1"
        "9CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7E565D0DB0D"
        "82C55EB0DB4B068BCD5C20"
    )
    assert (d.smsc, d.number) == ("+2781191", "2781188")
    assert d.concat == pdu.Concat(0xC3, 1, 1, 8)
    assert d.text == (
        "Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on 01/07/2013. "
    )
    assert d.udh == [(0x00, bytes.fromhex("C30101"))]


def test_decode_public_submits() -> None:
    s = pdu.decode("07911326040000F0310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701")
    assert isinstance(s, pdu.Submit)
    assert (s.smsc, s.number, s.text, s.reference) == (
        "+31624000000",
        "+31628870634",
        "www.diafaan.com",
        13,
    )
    assert s.validity == 3 * 1440 and s.status_report_request
    bare = pdu.decode("310D0B911326880736F40000A90FF7FBDD454E87CDE1B0DB357EB701", smsc=False)
    assert (bare.smsc, bare.number, bare.text, bare.reference) == (
        None,
        "+31628870634",
        "www.diafaan.com",
        13,
    )
    ucs = pdu.decode("07914346466554F601000B914316565811F9000806304253F68449")
    assert (ucs.number, ucs.smsc, ucs.text) == ("+34616585119", "+34646456456", "あ叶葉")
    data = pdu.decode("0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421")
    assert data.data == b"Hello world!" and data.encoding == "8bit"
    absolute = pdu.decode(
        "0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301"
    )
    assert absolute.validity == "2013-07-10T13:39:00+02:00"
    assert absolute.text == "Timestamp validity test"
    enhanced = pdu.decode("0009000B917228001011F10000" + "01020304050607" + "0131")
    assert enhanced.validity == "enhanced:01020304050607"


def test_decode_status_report() -> None:
    r = pdu.decode("0006D60B911326880736F4111011719551401110117195714000")
    assert isinstance(r, pdu.StatusReport)
    assert (r.number, r.reference, r.status, r.smsc) == ("+31628870634", 214, 0, None)
    assert r.timestamp == datetime(2011, 1, 11, 17, 59, 15, tzinfo=tz(1))
    assert r.discharge_time == datetime(2011, 1, 11, 17, 59, 17, tzinfo=tz(1))
    assert r.delivered and r.status_category == "delivered"
    j = r.to_json()
    assert (j["type"], j["status"], j["reference"], j["text"]) == ("status-report", 0, 214, None)


def test_decode_status_report_from_zte_modem() -> None:
    """A semi-invalid report captured from a ZTE modem (python-gsmmodem's suite): nibble 0xB in
    an address is '#' (TS 23.040 9.1.2.3), the report still decodes."""
    r = pdu.decode("0297F1061C0F910B487228297020F5317062419272803170624192138000")
    assert r.reference == 28 and r.status == 0
    assert r.number == "+#08427829207025"
    assert r.timestamp == datetime(2013, 7, 26, 14, 29, 27, tzinfo=tz(2))
    assert r.discharge_time == datetime(2013, 7, 26, 14, 29, 31, tzinfo=tz(2))


def test_status_report_round_trip_with_and_without_smsc() -> None:
    sent = datetime(2024, 5, 6, 7, 8, 9, tzinfo=tz(-3.5))
    done = datetime(2024, 5, 6, 7, 9, 0, tzinfo=tz(5.75))
    hex_pdu = pdu.encode_status_report("+4915112345678", 77, 0x21, submitted=sent, discharged=done)
    r = pdu.decode(hex_pdu)
    assert (r.number, r.reference, r.status, r.status_category) == (
        "+4915112345678",
        77,
        0x21,
        "pending",
    )
    assert r.timestamp == sent and r.timestamp.utcoffset() == timedelta(hours=-3.5)
    assert r.discharge_time == done
    bare = pdu.encode_status_report("+1", 1, 0, submitted=sent, discharged=done, smsc=None)
    assert bare.startswith("00")
    assert pdu.decode(bare[2:], smsc=False).reference == 1


# --- status categories -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (0x00, "delivered"),
        (0x01, "delivered"),
        (0x02, "delivered"),
        (0x1F, "delivered"),
        (0x20, "pending"),
        (0x25, "pending"),
        (0x30, "pending"),
        (0x3F, "pending"),
        (0x40, "failed"),
        (0x46, "failed"),
        (0x5F, "failed"),
        (0x60, "failed"),
        (0x65, "failed"),
        (0x7F, "failed"),
        (0x80, "failed"),
        (0xFF, "failed"),
    ],
)
def test_status_categories(status: int, category: str) -> None:
    got, meaning = pdu.status_meaning(status)
    assert got == category
    assert meaning
    if category == "pending":
        assert "still trying" in meaning


# --- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("abc", "06D061F118"),
        ("FRANCOIS", "0ED04669D0397C26A7"),
        ("a[]{}€", "14D0E10D6FE3DBA036A94D19"),
        ("@_", "04D08008"),  # '@' is septet 0x00 and '_' is 0x11
    ],
)
def test_alphanumeric_address(name: str, field: str) -> None:
    assert pdu.encode_address(name).hex().upper() == field
    d = pdu.decode(deliver_hex("C8", 1, oa=field))
    assert d.number == name


def test_alphanumeric_semi_octets_are_ceil_7n_over_4() -> None:
    for n in range(1, 12):
        name = "ABCDEFGHIJK"[:n]
        field = pdu.encode_address(name)
        assert field[0] == -(-7 * n // 4)
        assert len(field) == 2 + -(-7 * n // 8)
        assert pdu.decode(deliver_hex("C8", 1, oa=field.hex())).number == name
    with pytest.raises(CodecError):
        pdu.encode_address("ABCDEFGHIJKL")


def test_decode_numeric_address_types() -> None:
    national = pdu.decode(deliver_hex("C8", 1, oa="0AA11092997856"))
    assert national.number == "0129998765"
    unknown = pdu.decode(deliver_hex("C8", 1, oa="05812143F5"))
    assert unknown.number == "12345"


# --- DCS coding groups -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dcs", "encoding", "cls", "compressed", "mwi"),
    [
        (0x00, "gsm7", None, False, None),
        (0x04, "8bit", None, False, None),
        (0x08, "ucs2", None, False, None),
        (0x0C, "gsm7", None, False, None),  # reserved alphabet: treated as GSM-7
        (0x10, "gsm7", 0, False, None),
        (0x11, "gsm7", 1, False, None),
        (0x16, "8bit", 2, False, None),
        (0x1F, "gsm7", 3, False, None),  # reserved alphabet with class 3
        (0x18, "ucs2", 0, False, None),
        (0x20, "gsm7", None, True, None),
        (0x48, "ucs2", None, False, None),  # automatic deletion group
        (0x52, "gsm7", 2, False, None),
        (0x80, "gsm7", None, False, None),  # reserved coding groups
        (0xB4, "gsm7", None, False, None),
        (0xC0, "gsm7", None, False, {"store": False, "active": False, "kind": "voicemail"}),
        (0xC8, "gsm7", None, False, {"store": False, "active": True, "kind": "voicemail"}),
        (0xD9, "gsm7", None, False, {"store": True, "active": True, "kind": "fax"}),
        (0xE2, "ucs2", None, False, {"store": True, "active": False, "kind": "email"}),
        (0xEB, "ucs2", None, False, {"store": True, "active": True, "kind": "other"}),
        (0xF0, "gsm7", 0, False, None),
        (0xF1, "gsm7", 1, False, None),
        (0xF4, "8bit", 0, False, None),
        (0xF6, "8bit", 2, False, None),
        (0xF7, "8bit", 3, False, None),
    ],
)
def test_dcs_groups(
    dcs: int, encoding: str, cls: int | None, compressed: bool, mwi: dict | None
) -> None:
    parsed = pdu.parse_dcs(dcs)
    assert (parsed.encoding, parsed.message_class, parsed.compressed, parsed.message_waiting) == (
        encoding,
        cls,
        compressed,
        mwi,
    )


def test_every_dcs_value_decodes() -> None:
    for dcs in range(256):
        d = pdu.decode(deliver_hex("C8329BFD06", 5, dcs=dcs))
        assert d.dcs == dcs
        enc = pdu.parse_dcs(dcs)
        if enc.compressed or enc.encoding == "8bit":
            assert d.data == bytes.fromhex("C8329BFD06")
        elif enc.encoding == "gsm7":
            assert d.text == "Hello"
        else:
            assert d.data is None and len(d.text) == 2  # UCS-2, odd octet dropped


def test_message_waiting_ucs2_text() -> None:
    d = pdu.decode(deliver_hex("041F043E0447", 6, dcs=0xE8))
    assert d.text == "Поч"
    assert d.message_waiting == {"store": True, "active": True, "kind": "voicemail"}


def test_compressed_is_kept_as_data() -> None:
    d = pdu.decode(deliver_hex("0102", 2, dcs=0x20))
    assert d.data == b"\x01\x02" and d.text == ""
    assert any("compressed" in w for w in d.warnings)


# --- user data header --------------------------------------------------------------------------


def test_unknown_header_elements_are_kept_and_skipped() -> None:
    # UDH: unknown IE 0x70 (2 octets), port addressing 0x05 (4), concatenation 0x00 (3).
    elements = bytes.fromhex("7002AABB050423F400000003070201")
    udh = bytes([len(elements)]) + elements
    header_septets = -(-len(udh) * 8 // 7)
    fill = header_septets * 7 - len(udh) * 8
    body = text.pack_septets(text.encode_gsm7("Hi there"), fill)
    d = pdu.decode(deliver_hex((udh + body).hex(), header_septets + 8, first=0x44))
    assert d.text == "Hi there"
    assert d.udh == [
        (0x70, bytes.fromhex("AABB")),
        (0x05, bytes.fromhex("23F40000")),
        (0x00, bytes.fromhex("070201")),
    ]
    assert d.concat == pdu.Concat(7, 2, 1, 8)
    assert d.to_json()["udh"][0] == {"iei": 0x70, "data": "AABB"}


def test_header_in_ucs2_and_8bit() -> None:
    ucs = pdu.decode(deliver_hex("0500030A0301" + "0041D83DDE00", 12, dcs=0x08, first=0x44))
    assert ucs.text == "A😀" and ucs.concat == pdu.Concat(10, 3, 1, 8)
    data = pdu.decode(deliver_hex("06080401020201" + "FF", 8, dcs=0x04, first=0x44))
    assert data.data == b"\xff" and data.concat == pdu.Concat(0x0102, 2, 1, 16)


def test_invalid_concat_header_is_ignored_with_warning() -> None:
    d = pdu.decode(deliver_hex("0500030A0003" + "0041", 8, dcs=0x08, first=0x44))
    assert d.concat is None and d.text == "A"
    assert any("invalid" in w for w in d.warnings)


@pytest.mark.parametrize(
    ("ud_hex", "udl", "dcs"),
    [
        ("0700030A020141", 7, 0x04),  # UDHL 7 runs past 7 octets of user data
        ("0400030A02", 5, 0x04),  # concatenation element says 3 octets, 2 are there
        ("01", 1, 0x04),  # UDHL 1 and nothing after it
        ("", 0, 0x04),  # header flag set but no user data
        ("0500030A0201", 6, 0x00),  # GSM-7: UDL 6 septets is shorter than a 7-septet header
    ],
)
def test_broken_headers_raise_codec_error(ud_hex: str, udl: int, dcs: int) -> None:
    with pytest.raises(CodecError):
        pdu.decode(deliver_hex(ud_hex, udl, dcs=dcs, first=0x44))


def test_empty_header_is_fine() -> None:
    d = pdu.decode(deliver_hex("0041", 2, dcs=0x04, first=0x44))
    assert d.udh == [] and d.data == b"A"


# --- national language tables (TS 23.038 annex A) ----------------------------------------------


def _national_deliver(septets: list[int], elements: str) -> pdu.Deliver:
    udh = bytes([len(bytes.fromhex(elements))]) + bytes.fromhex(elements)
    header_septets = -(-len(udh) * 8 // 7)
    fill = header_septets * 7 - len(udh) * 8
    body = text.pack_septets(septets, fill)
    d = pdu.decode(deliver_hex((udh + body).hex(), header_septets + len(septets), first=0x44))
    assert isinstance(d, pdu.Deliver)
    return d


def test_turkish_locking_shift_decodes() -> None:
    # Turkish locking table: 0x40 İ, 0x0C ğ, 0x07 ı, 0x1D ş, 0x60 ç, 0x04 €.
    d = _national_deliver([0x40, 0x0C, 0x07, 0x1D, 0x60, 0x04], "250101")
    assert d.text == "İğışç€"


def test_turkish_single_shift_decodes() -> None:
    # Turkish single shift: ESC 0x47 Ğ, ESC 0x53 Ş, ESC 0x69 ı; plain septets stay default.
    d = _national_deliver([0x1B, 0x47, 0x61, 0x1B, 0x53, 0x1B, 0x69], "240101")
    assert d.text == "ĞaŞı"


def test_spanish_single_shift_decodes() -> None:
    # Spanish (id 2) has only a single shift table: ESC 0x41 Á, ESC 0x61 á, ESC 0x09 ç, ESC 0x65 €
    d = _national_deliver([0x1B, 0x41, 0x1B, 0x61, 0x1B, 0x09, 0x1B, 0x65, 0x21], "240102")
    assert d.text == "Ááç€!"


def test_portuguese_locking_and_single_shift_decode() -> None:
    # Portuguese locking: 0x5B Ã, 0x7B ã, 0x04 ê, 0x15 ∞; single shift: ESC 0x5C Õ, ESC 0x7C õ.
    d = _national_deliver([0x5B, 0x7B, 0x04, 0x15, 0x1B, 0x5C, 0x1B, 0x7C], "250103240103")
    assert d.text == "Ããê∞Õõ"


def test_national_tables_with_concatenation() -> None:
    d = _national_deliver([0x0C], "0003050201" + "250101")
    assert d.text == "ğ" and d.concat == pdu.Concat(5, 2, 1, 8)


def test_unknown_language_falls_back_to_default() -> None:
    d = _national_deliver([0x61, 0x1B, 0x65], "25015A24015A")
    assert d.text == "a€"


def test_encode_with_national_tables_round_trips() -> None:
    parts = pdu.encode_submit("+90", "Işık ğüneş", locking=1, shift=1)
    assert len(parts) == 1
    d = pdu.decode(parts[0].pdu)
    assert d.text == "Işık ğüneş"
    assert (0x25, b"\x01") in d.udh and (0x24, b"\x01") in d.udh
    long_parts = pdu.encode_submit("+90", "ş" * 200, locking=1, reference=3)
    assert "".join(pdu.decode(p.pdu).text for p in long_parts) == "ş" * 200
    # 140 - 6 (concat) - 3 (locking IE) = 131 octets = 149 septets a part
    assert [len(p.text) for p in long_parts] == [149, 51]


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0",
        "0G",
        "07911326040000F0040B9113",  # truncated in the address
        "00",  # SMSC only
        "0003",  # reserved message type 3
        "0D91" + "00" * 13,  # SMSC length 13 is impossible
        "0004" + "FF91" + "00" * 20,  # address length 255
        "0004" + "0B911346610089F6" + "0000" + "42102030405000" + "A1" + "00" * 150,  # UDL > 160
        "0004" + "0B911346610089F6" + "0008" + "42102030405000" + "8D" + "00" * 141,  # > 140 oct
        "0004" + "0B911346610089F6" + "0000" + "42102030405000" + "0AE8329B",  # UD truncated
    ],
)
def test_malformed_raises_codec_error(bad: str) -> None:
    with pytest.raises(CodecError) as info:
        pdu.decode(bad)
    assert info.value.where and info.value.why


def test_error_names_the_octet_and_field() -> None:
    with pytest.raises(CodecError) as info:
        pdu.decode("0004" + "0B911346610089F6" + "0000" + "4210203040")
    assert "TP-SCTS" in info.value.where and "octet" in info.value.where


def test_odd_octet_ucs2_and_trailing_octets_are_warnings() -> None:
    odd = pdu.decode(deliver_hex("004100", 3, dcs=0x08))
    assert odd.text == "A" and any("odd" in w for w in odd.warnings)
    extra = pdu.decode(deliver_hex("C8329BFD06" + "FFFF", 5))
    assert extra.text == "Hello" and any("after the user data" in w for w in extra.warnings)


def test_lone_surrogate_in_ucs2_is_replaced_with_warning() -> None:
    d = pdu.decode(deliver_hex("D83D0041", 4, dcs=0x08))
    assert d.text == "\ufffdA"
    assert any("lone surrogate" in w for w in d.warnings)


def test_invalid_timestamps_are_warnings_not_crashes() -> None:
    for ts in ("00000000000000", "99999999999999", "2130923240FF80", "21309232400AFF"):
        d = pdu.decode("0004" + "0B911346610089F6" + "0000" + ts + "0131")
        assert d.timestamp is None and d.text == "1"
        assert any("TP-SCTS" in w for w in d.warnings)


# --- encode_deliver (the simulator's side) ------------------------------------------------------


def test_encode_deliver_round_trip() -> None:
    when = datetime(2024, 2, 29, 23, 59, 58, tzinfo=tz(-2.25))
    hexes = pdu.encode_deliver(
        "MyBank", "Ваш код: 1234 😀" * 10, timestamp=when, reference=0x3344, ref16=True
    )
    decoded = [pdu.decode(h) for h in hexes]
    assert all(d.number == "MyBank" and d.timestamp == when for d in decoded)
    assert all(d.concat.bits == 16 and d.concat.reference == 0x3344 for d in decoded)
    assert "".join(d.text for d in decoded) == "Ваш код: 1234 😀" * 10
    assert pdu.decode(pdu.encode_deliver("+1", "x", smsc=None)[0]).smsc is None
