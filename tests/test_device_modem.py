"""The Modem driver against a scripted fake modem: start-up, SIM, identity, messages, events."""

from __future__ import annotations

import queue
import threading
from datetime import UTC, datetime

import pytest
from fakes.fake_modem import FakeModem, err, ok

from gateway.modem import pdu as pdumod
from gateway.modem.at import CmsError
from gateway.modem.device import (
    Modem,
    ModemSettings,
    PartialSendError,
    SimBusy,
    SimPinRejected,
    SimPinRequired,
    SimPukRequired,
    SmsNotReady,
    StoredMessage,
    Undecodable,
    decode_stored,
    parse_iccid,
    parse_listing,
    parse_read,
)
from gateway.modem.urc import (
    DirectMessage,
    DirectStatusReport,
    ModemGone,
    NewMessage,
    RegistrationChanged,
    SmsReady,
    parse_registration,
)

FAST = ModemSettings(
    command_timeout=2.0, retry_delay=0.001, sms_ready_timeout=2.0, startup_timeout=5.0
)
TS = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def deliver(text: str = "hello", sender: str = "+15550001111") -> str:
    return pdumod.encode_deliver(sender, text, timestamp=TS)[0]


@pytest.fixture
def opened():
    modems: list[Modem] = []

    def _open(fake: FakeModem, settings: ModemSettings = FAST, **kwargs) -> tuple[Modem, object]:
        port = fake.attach()
        modem = Modem("/dev/fake0", settings, serial_factory=port.factory, **kwargs)
        modems.append(modem)
        modem.open()
        return modem, port

    yield _open
    for m in modems:
        m.close()


def next_event(modem: Modem, kind: type, timeout: float = 3.0):
    while True:
        event = modem.events.get(timeout=timeout)
        if isinstance(event, kind):
            return event


# -- start-up ----------------------------------------------------------------------------------


def test_startup_sequence(opened):
    fake = FakeModem()
    modem, port = opened(fake)
    cmds = port.commands
    # ESC and the resync probe first: a killed process may have left the modem at "> ".
    assert cmds[:5] == ["<ESC>", "AT+CMEE?", "AT", "ATE0", "AT+CMEE=2"]
    assert "AT+CPIN?" in cmds
    assert "AT+CMGF=0" in cmds
    assert 'AT+CPMS="SM","SM","SM"' in cmds
    assert "AT+CNMI=2,1,0,1,0" in cmds
    assert modem.status_report_routing == "direct"
    assert modem.storage == "SM"
    assert not any(c.startswith("AT+CMGD") for c in cmds)
    assert modem.is_open


def test_cmee_falls_back_to_numeric(opened):
    _, port = opened(FakeModem(cmee_levels=(0, 1)))
    assert "AT+CMEE=1" in port.commands


def test_cnmi_falls_back_to_stored_status_reports(opened):
    fake = FakeModem(cnmi_rejects={"2,1,0,1,0", "1,1,0,1,0"})
    modem, port = opened(fake)
    assert modem.status_report_routing == "stored"
    assert "AT+CNMI=2,1,0,2,0" in port.commands


def test_cnmi_ranges_are_respected(opened):
    fake = FakeModem(cnmi_ranges="(0-2),(0-3),(0,2),(0,2),(0,1)")
    modem, port = opened(fake)
    assert not any(c.startswith("AT+CNMI=2,1,0,1") for c in port.commands)
    assert modem.status_report_routing == "stored"


def test_text_mode_boot_waits_for_sms_ready_event(opened):
    # SIM800/EC25: SMS commands answer ERROR until "SMS Ready"; the driver waits for the URC.
    # The retry delay is long, so passing quickly proves the wait ended on the event.
    fake = FakeModem(sms_ready=False)

    def becomes_ready() -> bytes:
        fake.sms_ready = True
        return b"\r\nSMS Ready\r\n"

    fake.on_sms_not_ready = becomes_ready
    settings = ModemSettings(retry_delay=30.0, sms_ready_timeout=60.0, command_timeout=2.0)
    modem, port = opened(fake, settings)
    assert port.commands.count("AT+CMGF=0") == 2
    assert modem.is_open
    assert isinstance(next_event(modem, SmsReady), SmsReady)


def test_sms_never_ready_is_bounded(opened):
    fake = FakeModem(sms_ready=False)
    settings = ModemSettings(retry_delay=0.001, sms_ready_timeout=0.1, command_timeout=2.0)
    with pytest.raises(SmsNotReady, match="/dev/fake0"):
        opened(fake, settings)


def test_pin_entered_once(opened):
    fake = FakeModem(sim_state="SIM PIN", pin="1234")
    modem, _ = opened(fake, ModemSettings(pin="1234", retry_delay=0.001))
    assert fake.cpin_entered == ["1234"]
    assert modem.is_open


def test_wrong_pin_is_never_retried(opened):
    fake = FakeModem(sim_state="SIM PIN", pin="1234")
    port = fake.attach()
    modem = Modem("/dev/fake0", ModemSettings(pin="9999"), serial_factory=port.factory)
    with pytest.raises(SimPinRejected):
        modem.open()
    with pytest.raises(SimPinRejected):
        modem.open()  # the manager retrying must not burn a second attempt
    assert fake.cpin_entered == ["9999"]
    modem.close()


def test_pin_required_without_pin(opened):
    fake = FakeModem(sim_state="SIM PIN", pin="1234")
    with pytest.raises(SimPinRequired):
        opened(fake)
    assert fake.cpin_entered == []


def test_puk_is_reported_not_guessed(opened):
    fake = FakeModem(sim_state="SIM PUK")
    with pytest.raises(SimPukRequired, match="PUK"):
        opened(fake, ModemSettings(pin="1234"))
    assert fake.cpin_entered == []


def test_sim_busy_is_retried_a_bounded_number_of_times(opened):
    fake = FakeModem(busy_cpin=10**6)
    settings = ModemSettings(sim_busy_retries=3, retry_delay=0.001)
    with pytest.raises(SimBusy):
        opened(fake, settings)
    port_cmds = 10**6 - fake.busy_cpin
    assert port_cmds == 4  # the first try and three retries


def test_sim_busy_then_ready(opened):
    fake = FakeModem(busy_cpin=2)
    modem, _ = opened(fake, ModemSettings(sim_busy_retries=3, retry_delay=0.001))
    assert modem.is_open


def test_family_storage_preference(opened):
    fake = FakeModem(manufacturer="Quectel", model="EC25", cpms_supported=("SM", "ME", "MT"))
    modem, port = opened(fake)
    assert modem.family == "quectel"
    assert modem.storage == "ME"
    assert 'AT+CPMS="ME","ME","ME"' in port.commands


def test_direct_messages_asks_for_phase_2_plus(opened):
    fake = FakeModem()
    modem, port = opened(fake, ModemSettings(direct_messages=True, retry_delay=0.001))
    assert "AT+CSMS=1" in port.commands
    assert modem.message_service == 1
    assert "AT+CNMI=2,2,0,1,0" in port.commands


# -- identity and health -------------------------------------------------------------------


def test_identify(opened):
    modem, _ = opened(FakeModem())
    ident = modem.identify()
    assert ident.imei == "866123456789012"
    assert ident.imsi == "310150123456789"
    assert ident.iccid == "8944100000000000001"
    assert ident.number == "+15551230000"
    assert ident.manufacturer == "Generic" and ident.firmware == "1.0"


@pytest.mark.parametrize(
    ("manufacturer", "answers", "expected"),
    [
        ("huawei", {"AT^ICCID?": "^ICCID: 984401000000000000F1"}, "8944100000000000001"),
        ("SIMCOM_Ltd", {"AT+CCID": "8944100000000000001F"}, "8944100000000000001"),
        ("Quectel", {"AT+QCCID": "+QCCID: 8944100000000000001"}, "8944100000000000001"),
        ("Sierra Wireless", {"AT!ICCID?": "ICCID: 8944100000000000001"}, "8944100000000000001"),
        (
            "Generic",
            {"AT+CRSM=176,12258,0,0,10": '+CRSM: 144,0,"984401000000000000F1"'},
            "8944100000000000001",
        ),
    ],
)
def test_iccid_per_family(opened, manufacturer, answers, expected):
    modem, _ = opened(FakeModem(manufacturer=manufacturer, iccid_answers=answers))
    assert modem.iccid() == expected


def test_signal(opened):
    modem, _ = opened(FakeModem(csq="20,99"))
    sig = modem.signal()
    assert (sig.rssi, sig.dbm, sig.bars, sig.ber) == (20, -73, 4, 99)


def test_signal_unknown(opened):
    modem, _ = opened(FakeModem(csq="99,99"))
    sig = modem.signal()
    assert (sig.dbm, sig.bars) == (None, 0)


def test_registration_and_operator(opened):
    modem, _ = opened(FakeModem(creg="0,5"))
    reg = modem.registration()
    assert reg.registered and reg.roaming and reg.domain == "CS"
    assert modem.operator() == "Test Net"


def test_registration_shapes():
    # Query answer carries <n> first; the unsolicited code does not.
    assert parse_registration("+CREG", "0,1", solicited=True).status == 1
    assert parse_registration("+CREG", "1", solicited=False).status == 1
    # Huawei: location codes as unquoted hex.
    reg = parse_registration("+CREG", "2,1, 2A3F, 1B2C3D", solicited=True)
    assert (reg.lac, reg.cell_id) == ("2A3F", "1B2C3D")
    reg = parse_registration("+CEREG", '1,"00C3","01A2B3C4",7', solicited=False)
    assert (reg.domain, reg.lac, reg.act) == ("EPS", "00C3", 7)


def test_unsolicited_creg_becomes_an_event(opened):
    modem, port = opened(FakeModem())
    port.inject(b"\r\n+CREG: 1\r\n")
    event = next_event(modem, RegistrationChanged)
    assert event.registration.status == 1


# -- sending ---------------------------------------------------------------------------------


def test_send_pdu_returns_tp_mr(opened):
    fake = FakeModem(next_mr=42)
    modem, port = opened(fake)
    part = pdumod.encode_submit("+15550001111", "hi")[0]
    assert modem.send_pdu(part.pdu, part.length) == 42
    assert port.commands[-2:] == [f"AT+CMGS={part.length}", "PDU:" + part.pdu]


def test_cms_error_on_part_2_of_3_names_the_sent_parts(opened):
    fake = FakeModem(next_mr=7, fail_sends={2: "+CMS ERROR: 500"})
    modem, _ = opened(fake)
    parts = pdumod.encode_submit("+15550001111", "x" * 400)
    assert len(parts) == 3
    with pytest.raises(PartialSendError) as info:
        modem.send_parts(parts)
    exc = info.value
    assert [(p.seq, p.message_reference) for p in exc.sent] == [(1, 7)]
    assert exc.failed.seq == 2
    assert isinstance(exc.cause, CmsError) and exc.cause.code == 500
    assert fake.sends_attempted == 2  # part 3 was not sent
    assert "part 2 of 3" in str(exc)


@pytest.mark.parametrize("wanted", [False, True])
def test_status_report_request_bit_follows_configuration(opened, wanted):
    fake = FakeModem()
    modem, _ = opened(fake)
    sent = modem.send_text("+15550001111", "y" * 200, status_report=wanted)
    assert len(sent) == 2
    assert [pdumod.decode(p).status_report_request for p in fake.sent] == [wanted, wanted]


def test_prompt_timeout_sends_esc_and_raises(opened):
    fake = FakeModem(prompt=False)
    modem, port = opened(fake, ModemSettings(prompt_timeout=0.05, retry_delay=0.001))
    part = pdumod.encode_submit("+15550001111", "hi")[0]
    with pytest.raises(PartialSendError):
        modem.send_parts([part])
    assert port.commands[-1] == "<ESC>"


# -- message memory --------------------------------------------------------------------------


def test_list_keeps_every_entry_even_a_corrupt_one(opened):
    fake = FakeModem()
    fake.storage["SM"] = {0: (1, deliver("one")), 1: (0, "07FFGARBAGE"), 2: (0, deliver("three"))}
    modem, port = opened(fake)
    entries = modem.list_messages()
    assert [e.index for e in entries] == [0, 1, 2]
    decoded = [decode_stored(e) for e in entries]
    assert decoded[0].text == "one" and decoded[2].text == "three"
    assert isinstance(decoded[1], Undecodable)
    assert decoded[1].stored.pdu == "07FFGARBAGE"
    assert not any(c.startswith("AT+CMGD") for c in port.commands)


def test_parse_listing_header_without_pdu():
    lines = ["+CMGL: 3,1,,20", "+CMGL: 4,0,,5", "0011223344"]
    entries = parse_listing("SM", lines)
    assert [(e.index, e.pdu) for e in entries] == [(3, None), (4, "0011223344")]


def test_read_index_zero(opened):
    fake = FakeModem()
    fake.storage["SM"] = {0: (0, deliver("zero"))}
    modem, _ = opened(fake)
    msg = modem.read(0)
    assert msg is not None and msg.index == 0
    assert msg.decode().text == "zero"


@pytest.mark.parametrize("style", ["ok", "321"])
def test_read_empty_slot(opened, style):
    modem, _ = opened(FakeModem(empty_read=style))
    assert modem.read(5) is None


@pytest.mark.parametrize(
    ("header", "status", "length"),
    [
        ("+CMGR: 0,,29", 0, 29),
        ("+CMGR: 24", None, 24),
        ("+CMGR: ,,92", None, 92),
        ('+CMGR: 1,"",29', 1, 29),
        ("+CMGR: 0,29", 0, 29),
    ],
)
def test_cmgr_header_variants(header, status, length):
    msg = parse_read("SM", 2, [header, "0011"])
    assert (msg.status, msg.length, msg.pdu) == (status, length, "0011")


def test_cmti_in_another_memory_is_read_from_that_memory(opened):
    fake = FakeModem()
    fake.storage["ME"] = {2: (0, deliver("in ME"))}
    modem, port = opened(fake)
    assert modem.storage == "SM"
    port.inject(b'\r\n+CMTI: "ME",2\r\n')
    event = next_event(modem, NewMessage)
    assert (event.storage, event.index) == ("ME", 2)
    msg = modem.read(event.index, event.storage)
    assert msg.decode().text == "in ME"
    i = port.commands.index("AT+CMGR=2")
    assert port.commands[i - 1] == 'AT+CPMS="ME"'


def test_cmti_inside_csq_answer_leads_to_a_read(opened):
    fake = FakeModem()
    fake.storage["SM"] = {3: (0, deliver("inside"))}
    fake.extra_before_final["AT+CSQ"] = '\r\n+CMTI: "SM",3\r\n'
    modem, _ = opened(fake)
    assert modem.signal().rssi == 20
    event = next_event(modem, NewMessage)
    assert modem.read(event.index, event.storage).decode().text == "inside"


def test_delete_one_never_all(opened):
    fake = FakeModem()
    fake.storage["SM"] = {3: (1, deliver())}
    modem, port = opened(fake)
    modem.delete(3)
    assert port.commands[-1] == "AT+CMGD=3"
    assert not any("," in c for c in port.commands if c.startswith("AT+CMGD"))
    with pytest.raises(ValueError):
        modem.delete(-1)


def test_storage_usage_and_full(opened):
    fake = FakeModem(capacity=2)
    fake.storage["SM"] = {0: (1, deliver()), 1: (1, deliver())}
    modem, _ = opened(fake)
    usage = modem.storage_usage()
    assert (usage.read.storage, usage.read.used, usage.read.total) == ("SM", 2, 2)
    assert usage.full


def test_stored_message_without_smsc_field():
    tpdu = deliver()[16:]  # drop the 8-octet SMSC field
    msg = StoredMessage("SM", 1, 0, len(tpdu) // 2, tpdu)
    assert msg.decode().text == "hello"


# -- routed messages and acknowledgement -----------------------------------------------------


def test_cmt_with_csms_1_is_acknowledged_after_the_handler(opened):
    fake = FakeModem()
    seen: list[str] = []
    handled = threading.Event()

    def handler(event):
        if isinstance(event, DirectMessage):
            seen.append(event.pdu)
            # The ack must not have been sent yet: we have not "committed".
            assert "AT+CNMA" not in port_ref[0].commands
            handled.set()

    port_ref: list = []
    port = fake.attach()
    port_ref.append(port)
    modem = Modem(
        "/dev/fake0",
        ModemSettings(direct_messages=True, retry_delay=0.001),
        on_event=handler,
        serial_factory=port.factory,
    )
    modem.open()
    try:
        pdu = deliver("direct")
        port.inject(b'\r\n+CMT: "",24\r\n' + pdu.encode() + b"\r\n")
        assert handled.wait(3)
        port.wait_for_command(lambda c: c == "AT+CNMA")
        assert seen == [pdu]
    finally:
        modem.close()


def test_cmt_handler_failure_gives_negative_ack(opened):
    fake = FakeModem()
    port = fake.attach()

    def handler(event):
        if isinstance(event, DirectMessage):
            raise RuntimeError("database is down")

    modem = Modem(
        "/dev/fake0",
        ModemSettings(direct_messages=True, retry_delay=0.001),
        on_event=handler,
        serial_factory=port.factory,
    )
    modem.open()
    try:
        port.inject(b'\r\n+CMT: "",24\r\n' + deliver().encode() + b"\r\n")
        port.wait_for_command(lambda c: c == "AT+CNMA=2")
        assert "AT+CNMA" not in port.commands
    finally:
        modem.close()


def test_cmt_with_phase_2_is_not_acknowledged(opened):
    fake = FakeModem(csms_settable=False)
    modem, port = opened(fake, ModemSettings(direct_messages=True, retry_delay=0.001))
    port.inject(b'\r\n+CMT: "",24\r\n' + deliver().encode() + b"\r\n")
    assert isinstance(next_event(modem, DirectMessage), DirectMessage)
    modem.ping()  # the dispatcher had its chance to (wrongly) acknowledge
    assert not any(c.startswith("AT+CNMA") for c in port.commands)


def test_cds_and_pdu_split_reads_give_one_status_report(opened):
    modem, port = opened(FakeModem())
    report = pdumod.encode_status_report("+15550001111", 7, 0, submitted=TS, discharged=TS)
    port.inject(b"\r\n+CDS: 25\r\n")
    port.wait_drained()
    port.inject(report.encode() + b"\r\n")
    event = next_event(modem, DirectStatusReport)
    assert event.pdu == report
    assert pdumod.decode(event.pdu).reference == 7
    with pytest.raises(queue.Empty):
        next_event(modem, DirectStatusReport, timeout=0.05)


# -- USSD ------------------------------------------------------------------------------------


def test_ussd_answer_before_ok(opened):
    fake = FakeModem(cusd=ok('+CUSD: 0,"Balance 5.00",15'))
    modem, port = opened(fake)
    reply = modem.ussd("*100#")
    assert (reply.status, reply.text) == (0, "Balance 5.00")
    assert port.commands[-1] == 'AT+CUSD=1,"*100#",15'


def test_ussd_answer_after_ok_as_urc(opened):
    fake = FakeModem(cusd=ok() + b'\r\n+CUSD: 0,"Later",15\r\n')
    modem, _ = opened(fake)
    assert modem.ussd("*100#").text == "Later"


def test_ussd_huawei_packed_hex_both_ways(opened):
    from gateway.modem import text as smstext

    answer = smstext.pack_septets(smstext.encode_gsm7("Bal 1")).hex().upper()
    fake = FakeModem(manufacturer="huawei", cusd=ok(f'+CUSD: 0,"{answer}",15'))
    modem, port = opened(fake)
    assert modem.ussd("*100#").text == "Bal 1"
    assert port.commands[-1] == 'AT+CUSD=1,"AA180C3602",15'


def test_ussd_ucs2(opened):
    fake = FakeModem(cusd=ok('+CUSD: 0,"0042006100BF",72'))
    modem, _ = opened(fake)
    assert modem.ussd("*100#").text == "Ba¿"


# -- restarts, resets, unplug ----------------------------------------------------------------


def test_reset_reopens_and_configures_again(opened):
    fake = FakeModem()
    modem, port = opened(fake)
    fake.overrides["AT+CFUN=1,1"] = ok()
    before = port.commands.count("ATE0")
    fake.echo = True  # what a reset does
    modem.reset()
    assert port.commands.count("ATE0") == before + 1
    assert "AT+CFUN=1,1" in port.commands
    assert modem.is_open
    assert modem.signal().rssi == 20  # echo from the reset is not read as data


def test_unsolicited_restart_reconfigures(opened):
    fake = FakeModem()
    _, port = opened(fake)
    fake.echo = True
    port.inject(b"\r\nRDY\r\n")
    port.wait_for_command(lambda c: c == "AT+CNMI=2,1,0,1,0" and port.commands.count(c) == 2)


def test_unplug_gives_modem_gone(opened):
    modem, port = opened(FakeModem())
    port.unplug()
    event = next_event(modem, ModemGone)
    assert "/dev/fake0" in str(event.error)
    assert not modem.is_open


def test_parse_iccid_rejects_junk():
    assert parse_iccid("ERROR", "+CCID") is None
    assert parse_iccid('+CRSM: 148,4,""', "+CRSM") is None


def test_sim_not_inserted(opened):
    fake = FakeModem(overrides={"AT+CPIN?": err("+CME ERROR: 10")})
    from gateway.modem.device import SimCardError

    with pytest.raises(SimCardError, match="no SIM"):
        opened(fake)
