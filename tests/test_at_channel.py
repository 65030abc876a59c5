"""The AT channel against an in-process fake port: framing, URCs, errors, timeouts, the prompt."""

from __future__ import annotations

import threading

import pytest
from fakes.serial_port import FakeSerial, ok

from gateway.modem.at import (
    ATChannel,
    CmeError,
    CmsError,
    CommandError,
    CommandTimeout,
    PortGone,
    PromptTimeout,
    Urc,
    open_serial,
    split_args,
)


def make(responder=None, **kwargs) -> tuple[ATChannel, FakeSerial]:
    fake = FakeSerial(responder)
    chan = ATChannel("/dev/fake0", serial_factory=fake.factory, timeout=2.0, **kwargs)
    chan.open()
    return chan, fake


@pytest.fixture
def closer():
    chans: list[ATChannel] = []
    yield chans.append
    for c in chans:
        c.close()


def next_urc(chan: ATChannel, timeout: float = 2.0) -> Urc | PortGone:
    return chan.urcs.get(timeout=timeout)


def test_plain_command_and_crlf_framing(closer):
    chan, _ = make(lambda c: ok("+CSQ: 20,99") if c == "AT+CSQ" else None)
    closer(chan)
    resp = chan.command("AT+CSQ")
    assert resp.lines == ("+CSQ: 20,99",)
    assert resp.final == "OK"
    assert resp.prefixed("+CSQ") == ["20,99"]


@pytest.mark.parametrize("eol", [b"\r\n", b"\r", b"\n", b"\n\r"])
def test_any_line_ending(closer, eol):
    chan, _ = make(lambda c: eol + b"+CGMI: x" + eol + b"OK" + eol)
    closer(chan)
    assert chan.command("AT+CGMI").lines == ("+CGMI: x",)


def test_cmti_inside_csq_response_still_reaches_the_consumer(closer):
    # Trap: a +CMTI in the middle of another command's answer must not be lost or taken as data.
    chan, _ = make(lambda c: b'\r\n+CSQ: 20,99\r\n+CMTI: "SM",3\r\n\r\nOK\r\n')
    closer(chan)
    resp = chan.command("AT+CSQ")
    assert resp.lines == ("+CSQ: 20,99",)
    urc = next_urc(chan)
    assert (urc.name, urc.args) == ("+CMTI", '"SM",3')


def test_cds_and_pdu_line_in_separate_reads_are_one_notification(closer):
    # Trap: the header and its PDU line arrive ~30 ms apart; join by state, not by timing.
    chan, fake = make()
    closer(chan)
    fake.inject(b"\r\n+CDS: 25\r\n")
    fake.wait_drained()
    assert chan.urcs.empty()  # the header alone is not delivered
    fake.inject(b"07911326040000F006D70B911326880736F4111011719551401110117195714000\r\n")
    urc = next_urc(chan)
    assert urc.name == "+CDS"
    assert urc.pdu == "07911326040000F006D70B911326880736F4111011719551401110117195714000"
    assert chan.urcs.empty()


def test_cmt_and_pdu_in_one_read(closer):
    chan, fake = make()
    closer(chan)
    fake.inject(b'\r\n+CMT: "",24\r\n0791447728008000040C914477...\r\n'.replace(b"...", b"AB"))
    urc = next_urc(chan)
    assert urc.name == "+CMT"
    assert urc.args == '"",24'
    assert urc.pdu == "0791447728008000040C914477AB"


def test_cmt_header_split_mid_line(closer):
    chan, fake = make()
    closer(chan)
    fake.inject(b"\r\n+CM")
    fake.wait_drained()
    fake.inject(b"T: ,5\r")
    fake.wait_drained()
    fake.inject(b"\n00112233")
    fake.wait_drained()
    assert chan.urcs.empty()
    fake.inject(b"44\r\n")
    urc = next_urc(chan)
    assert (urc.name, urc.pdu) == ("+CMT", "0011223344")


def test_cds_in_text_mode_has_no_pdu_line(closer):
    chan, fake = make()
    closer(chan)
    fake.inject(b'\r\n+CDS: 6,46,"+4412",145,"24/01/01,10:00:00+00","24/01/01,10:00:05+00",0\r\n')
    urc = next_urc(chan)
    assert urc.name == "+CDS"
    assert urc.pdu is None


def test_pdu_urc_during_a_command(closer):
    def answer(cmd: str) -> bytes:
        return b"\r\n+CDS: 6\r\n0011223344AA\r\n+CSQ: 9,0\r\n\r\nOK\r\n"

    chan, _ = make(answer)
    closer(chan)
    assert chan.command("AT+CSQ").lines == ("+CSQ: 9,0",)
    urc = next_urc(chan)
    assert (urc.name, urc.pdu) == ("+CDS", "0011223344AA")


def test_non_utf8_byte_does_not_kill_the_reader(closer):
    # Trap: 0xFF on the line (noise, a baud mismatch) must be logged, not crash the reader.
    chan, fake = make(lambda c: ok("+CSQ: 5,0"))
    closer(chan)
    fake.inject(b"\xff\xfe\r\n\xff")
    fake.wait_drained()
    assert chan.command("AT+CSQ").lines == ("+CSQ: 5,0",)
    assert chan.gone is None


def test_garbage_glued_to_ok_is_tolerated(closer):
    chan, _ = make(lambda c: b"\r\n\x00\xffOK\x00\r\n")
    closer(chan)
    assert chan.command("AT").final == "OK"


def test_echo_with_cr_only_and_urc_before_echo(closer):
    # Huawei: a ^RSSI may come before the echo, and the echo ends in CR alone.
    chan, _ = make(lambda c: b"\r\n^RSSI: 17\r\n" + c.encode() + b"\r\r\n+CSQ: 17,99\r\n\r\nOK\r\n")
    closer(chan)
    resp = chan.command("AT+CSQ")
    assert resp.lines == ("+CSQ: 17,99",)
    urc = next_urc(chan)
    assert (urc.name, urc.args) == ("^RSSI", "17")


def test_echo_after_reset_is_not_data(closer):
    # Trap: the modem reset and turned echo back on; echo lines must not become answers.
    chan, _ = make(lambda c: c.encode() + b"\r" + b"\r\n866123456789012\r\n\r\nOK\r\n")
    closer(chan)
    assert chan.command("AT+CGSN").lines == ("866123456789012",)
    assert chan.command("ATI").lines == ("866123456789012",)


def test_stray_echo_of_another_command_is_dropped(closer):
    chan, _ = make(lambda c: b"ATE0\r\r\nOK\r\n" if c == "AT" else ok("x"))
    closer(chan)
    assert chan.command("AT").lines == ()


def test_cms_error_is_final_without_ok(closer):
    chan, _ = make(lambda c: b"\r\n+CMS ERROR: 321\r\n")
    closer(chan)
    with pytest.raises(CmsError) as info:
        chan.command("AT+CMGR=9")
    assert info.value.code == 321
    assert "/dev/fake0" in str(info.value) and "AT+CMGR=9" in str(info.value)


def test_cms_error_without_number(closer):
    chan, _ = make(lambda c: b"\r\n+CMS ERROR\r\n")
    closer(chan)
    with pytest.raises(CmsError) as info:
        chan.command("AT+CMGS=20")
    assert info.value.code is None


def test_cme_error_verbose_text_maps_to_code(closer):
    chan, _ = make(lambda c: b"\r\n+CME ERROR: SIM busy\r\n")
    closer(chan)
    with pytest.raises(CmeError) as info:
        chan.command("AT+CPIN?")
    assert info.value.code == 14
    assert info.value.text == "SIM busy"


@pytest.mark.parametrize("final", ["ERROR", "COMMAND NOT SUPPORT", "NO CARRIER"])
def test_other_failure_finals(closer, final):
    chan, _ = make(lambda c: f"\r\n{final}\r\n".encode())
    closer(chan)
    with pytest.raises(CommandError) as info:
        chan.command("AT+FOO")
    assert info.value.final == final


def test_creg_answer_vs_unsolicited(closer):
    # "+CREG: 0,1" answers AT+CREG?; "+CREG: 1" arriving during another command is a URC.
    def answer(cmd: str) -> bytes:
        if cmd == "AT+CREG?":
            return ok("+CREG: 0,1")
        return b"\r\n+CREG: 1\r\n" + ok("+CSQ: 3,0")

    chan, _ = make(answer)
    closer(chan)
    assert chan.command("AT+CREG?").lines == ("+CREG: 0,1",)
    assert chan.urcs.empty()
    assert chan.command("AT+CSQ").lines == ("+CSQ: 3,0",)
    urc = next_urc(chan)
    assert (urc.name, urc.args) == ("+CREG", "1")


def test_bare_urc_words_and_cpin(closer):
    chan, fake = make()
    closer(chan)
    fake.inject(b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nCall Ready\r\n\r\nSMS Ready\r\n")
    names = [next_urc(chan).name for _ in range(4)]
    assert names == ["RDY", "+CPIN", "CALL READY", "SMS READY"]


def test_late_reply_after_timeout_does_not_shift_later_replies(closer):
    # Trap: a reply that arrives after its command timed out must not answer the next command.
    chan, fake = make(lambda c: None)  # AT+COPS? is too slow: answered below
    closer(chan)
    with pytest.raises(CommandTimeout):
        chan.command("AT+COPS?", timeout=0.05)
    # Now the slow answer comes, glued to the answer to what we send next.
    fake.responder = lambda c: (
        ok('+COPS: 0,0,"Late"') + ok("+CMEE: 2")
        if c == "AT+CMEE?"
        else ok("+CSQ: 21,99")
        if c == "AT+CSQ"
        else None
    )
    assert chan.command("AT+CSQ").lines == ("+CSQ: 21,99",)
    assert chan.command("AT+CSQ").lines == ("+CSQ: 21,99",)
    assert fake.commands.count("AT+CMEE?") == 1


def test_late_reply_while_idle_is_dropped_without_probe(closer):
    chan, fake = make(lambda c: None)
    closer(chan)
    with pytest.raises(CommandTimeout):
        chan.command("AT+COPS?", timeout=0.05)
    fake.inject(ok('+COPS: 0,0,"Late"'))
    fake.wait_drained()
    fake.responder = lambda c: ok("+CSQ: 1,0")
    assert chan.command("AT+CSQ").lines == ("+CSQ: 1,0",)
    assert "AT+CMEE?" not in fake.commands
    assert chan.urcs.empty()  # the late +COPS line was not passed up as a URC


def test_reply_never_comes_probe_resyncs(closer):
    chan, fake = make(lambda c: ok("+CMEE: 2") if c == "AT+CMEE?" else None)
    closer(chan)
    with pytest.raises(CommandTimeout):
        chan.command("AT+CGMI", timeout=0.05)
    fake.responder = lambda c: ok("+CMEE: 2") if c == "AT+CMEE?" else ok("SIMCOM")
    assert chan.command("AT+CGMI").lines == ("SIMCOM",)


def test_probe_that_timed_out_is_not_reused(closer):
    chan, fake = make(lambda c: None)
    closer(chan)
    with pytest.raises(CommandTimeout):
        chan.command("AT+CGMI", timeout=0.05)
    with pytest.raises(CommandTimeout):
        chan.command("AT+CGMI", timeout=0.05)  # the AT+CMEE? probe times out
    # Both late answers arrive together with the answers to the new probe and command.
    fake.responder = lambda c: (
        ok("SIMCOM") + ok("+CMEE: 2") + ok('+CSCS: "IRA"')
        if c == "AT+CSCS?"
        else ok("SIMCOM")
        if c == "AT+CGMI"
        else None
    )
    assert chan.command("AT+CGMI").lines == ("SIMCOM",)
    assert fake.commands[-2:] == ["AT+CSCS?", "AT+CGMI"]


def test_prompt_pdu_and_cmgs(closer):
    pdu = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"

    def answer(cmd: str) -> bytes | None:
        if cmd.startswith("AT+CMGS="):
            return b"\r\n> "
        if cmd.startswith("PDU:"):
            return b"\r\n> " + pdu.encode() + b"\x1a\r\n+CMGS: 42\r\n\r\nOK\r\n"
        return None

    chan, fake = make(answer)
    closer(chan)
    resp = chan.send_with_prompt("AT+CMGS=23", pdu)
    assert resp.prefixed("+CMGS") == ["42"]
    assert fake.commands == ["AT+CMGS=23", "PDU:" + pdu]


def test_cms_error_instead_of_prompt(closer):
    chan, _ = make(lambda c: b"\r\n+CMS ERROR: 331\r\n")
    closer(chan)
    with pytest.raises(CmsError) as info:
        chan.send_with_prompt("AT+CMGS=23", "00")
    assert info.value.code == 331


def test_prompt_timeout_sends_esc(closer):
    # Trap: no "> " -> send ESC so the modem does not swallow our next command as message text.
    chan, fake = make(lambda c: ok("+CMEE: 2") if c == "AT+CMEE?" else None)
    closer(chan)
    with pytest.raises(PromptTimeout):
        chan.send_with_prompt("AT+CMGS=23", "00", prompt_timeout=0.05)
    assert fake.commands[-1] == "<ESC>"
    assert not any(c.startswith("PDU:") for c in fake.commands)
    fake.responder = lambda c: ok("+CMEE: 2") if c == "AT+CMEE?" else ok("+CSQ: 2,0")
    assert chan.command("AT+CSQ").lines == ("+CSQ: 2,0",)


def test_second_thread_waits_while_pdu_is_typed(closer):
    # Trap: a signal query from another thread must not be written between "> " and Ctrl-Z.
    pdu = "0011"

    def answer(cmd: str) -> bytes | None:
        if cmd.startswith("AT+CMGS="):
            return b"\r\n> "
        if cmd == "AT+CSQ":
            return ok("+CSQ: 9,9")
        return None  # the PDU: answered when the test says so

    chan, fake = make(answer)
    closer(chan)
    results: dict[str, object] = {}

    def sender() -> None:
        results["cmgs"] = chan.send_with_prompt("AT+CMGS=2", pdu)

    def asker() -> None:
        results["csq"] = chan.command("AT+CSQ")

    t1 = threading.Thread(target=sender)
    t1.start()
    fake.wait_for_command(lambda c: c.startswith("PDU:"))
    t2 = threading.Thread(target=asker)
    t2.start()
    # While the CMGS job is open the CSQ must not be written.
    t2.join(timeout=0.2)
    assert "AT+CSQ" not in fake.commands
    fake.inject(b"\r\n+CMGS: 7\r\n\r\nOK\r\n")
    t1.join(timeout=5)
    t2.join(timeout=5)
    assert results["cmgs"].prefixed("+CMGS") == ["7"]
    assert results["csq"].lines == ("+CSQ: 9,9",)
    assert fake.commands == ["AT+CMGS=2", "PDU:0011", "AT+CSQ"]


def test_unplug_raises_port_gone_now_and_later_and_tells_consumer(closer):
    chan, fake = make(lambda c: None)
    closer(chan)
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            chan.command("AT+CSQ", timeout=5)
        except PortGone as exc:
            errors.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    fake.wait_for_command(lambda c: c == "AT+CSQ")
    fake.unplug()
    t.join(timeout=5)
    assert len(errors) == 1 and "/dev/fake0" in str(errors[0])
    gone = next_urc(chan)
    assert isinstance(gone, PortGone)
    with pytest.raises(PortGone):
        chan.command("AT")


def test_write_blocked_by_flow_control_is_a_clear_timeout(closer):
    chan, fake = make(rtscts=True)
    closer(chan)
    fake.block_writes()
    with pytest.raises(CommandTimeout, match="rtscts"):
        chan.command("AT")


@pytest.mark.parametrize("rtscts", [True, False])
def test_rtscts_is_passed_to_the_port(closer, rtscts):
    chan, fake = make(rtscts=rtscts)
    closer(chan)
    assert fake.open_kwargs["rtscts"] is rtscts


@pytest.mark.parametrize("rtscts", [True, False])
def test_open_serial_sets_rtscts_on_a_real_pyserial_port(rtscts):
    ser = open_serial("loop://", baudrate=9600, rtscts=rtscts, read_timeout=0.1, write_timeout=1)
    try:
        assert ser.rtscts is rtscts
        assert ser.baudrate == 9600
    finally:
        ser.close()


def test_open_missing_port_is_port_gone():
    chan = ATChannel("/dev/does-not-exist-ttyUSB9")
    with pytest.raises(PortGone, match="does-not-exist"):
        chan.open()


def test_pin_is_masked_in_errors(closer):
    chan, _ = make(lambda c: b"\r\n+CME ERROR: 16\r\n")
    closer(chan)
    with pytest.raises(CmeError) as info:
        chan.command('AT+CPIN="1234"')
    assert "1234" not in str(info.value)
    assert info.value.code == 16


def test_unknown_unsolicited_line_is_passed_up(closer):
    chan, fake = make()
    closer(chan)
    fake.inject(b"\r\n+XYZ: 1\r\nHELLO\r\n")
    assert next_urc(chan).name == "+XYZ"
    assert next_urc(chan).name == "HELLO"


def test_split_args():
    assert split_args('0,"SM",3') == ["0", "SM", "3"]
    assert split_args('"a,b",,1') == ["a,b", "", "1"]


def test_take_over_abandons_a_message_left_at_the_prompt(closer):
    # A modem at "> " answers ESC as it drops the half-typed message; the probe then finds it
    # in step, and the first command gets its own answer.
    answers = {"<ESC>": ok(), "AT+CMEE?": ok("+CMEE: 2"), "AT": ok()}
    chan, fake = make(answers.get)
    closer(chan)
    chan.take_over()
    assert chan.command("AT").final == "OK"
    assert fake.commands == ["<ESC>", "AT+CMEE?", "AT"]


def test_take_over_drops_answers_owed_to_an_earlier_owner(closer):
    # A process killed after typing a message leaves "+CMGS: 5" and OK to come: they must not
    # be taken as the answer to our first command (and every answer after be one behind).
    owed = b"\r\n+CMGS: 5\r\n\r\nOK\r\n"
    answers = {"AT+CMEE?": owed + ok("+CMEE: 2"), "AT+CGSN": ok("351234567890123")}
    chan, fake = make(answers.get)
    closer(chan)
    chan.take_over()
    assert chan.command("AT+CGSN").lines == ("351234567890123",)
    assert fake.commands == ["<ESC>", "AT+CMEE?", "AT+CGSN"]
