"""Fault injection on simulated modems: each kind, as a client on the pty sees it."""

from __future__ import annotations

import os
import re
import time

import pytest
import serial

from gateway.modem import pdu as codec
from gateway.sim import FaultError, Network
from gateway.sim.terminal import Terminal


@pytest.fixture
def net(tmp_path):
    with Network(tmp_path, seed=5) as network:
        yield network


def ready(modem) -> Terminal:
    t = Terminal(modem.port)
    t.command("ATE0")
    t.command("AT+CMGF=0")
    return t


def send(t: Terminal, part: codec.SubmitPart) -> str:
    t.command(f"AT+CMGS={part.length}")
    t.write(part.pdu + "\x1a")
    t.expect(rb"\r\n(\+CMGS: \d+\r\n\r\nOK|\+CMS ERROR[^\r]*)\r\n")
    return t.consumed.decode()


def test_unknown_fault_and_parameter_are_refused(net):
    m = net.add_modem()
    with pytest.raises(FaultError, match="unknown fault kind 'melt'"):
        m.set_fault("melt")
    with pytest.raises(FaultError, match="takes"):
        m.set_fault("hang", minutes=3)


def test_hang_stops_answering_until_cleared(net):
    m = net.add_modem()
    with ready(m) as t:
        m.set_fault("hang")
        t.write("AT\r")
        with pytest.raises(TimeoutError):
            t.expect(rb"OK", timeout=0.3)
        m.clear_fault("hang")
        assert t.command("AT") == "\r\nOK\r\n"


def test_hang_with_duration_ends_by_itself(net):
    m = net.add_modem()
    with ready(m) as t:
        m.set_fault("hang", duration=0.1)
        assert m.wait_fault_cleared("hang", timeout=3)
        assert t.command("AT") == "\r\nOK\r\n"


def test_unplug_closes_the_port_and_replug_follows_with_a_new_pty(net):
    m = net.add_modem(family="huawei")
    link, old = m.port, m.device
    t = Terminal(link)
    t.command("ATE0")
    m.set_fault("unplug")
    assert not os.path.lexists(link) and m.device is None
    with pytest.raises(serial.SerialException):
        for _ in range(100):  # the reader sees EOF/EIO at once; bounded in case it does not
            t.serial.read(1)
    t.close()
    m.replug()
    assert os.path.islink(link) and m.device != old and os.readlink(link) == m.device
    with Terminal(link) as t2:
        # A fresh boot: echo is on again (boot URCs may still be in flight when we open).
        assert t2.command("AT").endswith("AT\r\r\nOK\r\n")


def test_unplug_with_duration_comes_back(net):
    m = net.add_modem()
    old = m.device
    m.set_fault("unplug", duration=0.1)
    assert m.wait_plugged(timeout=3)
    assert m.device != old and "unplug" not in m.faults
    with Terminal(m.port) as t:
        assert t.command("AT").endswith("OK\r\n")


def test_messages_wait_in_the_network_while_unplugged(net):
    m = net.add_modem()
    h = net.add_handset("+15551230001")
    m.set_fault("unplug")
    h.send(m.number, "while you were out")
    m.replug()
    with Terminal(m.port) as t:
        t.command("AT")
        assert m.stored() and codec.decode(m.stored()[0]["pdu"]).text == "while you were out"


def test_usb_reset_reenumerates(net):
    m = net.add_modem(family="quectel", boot_time=0, reset_time=0.05)
    old = m.device
    with Terminal(m.port) as t:
        t.command("ATE0")
        with pytest.raises(serial.SerialException):  # the OK, then the port goes away
            assert t.command("AT+CFUN=1,1") == "\r\nOK\r\n"
            for _ in range(100):
                t.serial.read(1)
    assert m.wait_plugged(timeout=3)
    assert m.device != old
    with Terminal(m.port) as t:
        assert t.command("AT").endswith("AT\r\r\nOK\r\n")


def test_garbage_is_mixed_into_output(net):
    m = net.add_modem()
    with ready(m) as t:
        m.set_fault("garbage", probability=1.0, max_bytes=4)
        out = t.command("AT+CGMI").encode("latin-1")
        assert out != b"\r\nGeneric\r\n\r\nOK\r\n"
        assert out.endswith(b"\r\nOK\r\n") and b"Generic" in out
        m.clear_fault("garbage")
        assert t.command("AT") == "\r\nOK\r\n"


def test_cms_error_on_the_second_of_three_parts(net):
    m = net.add_modem()
    h = net.add_handset("+15551230001")
    parts = codec.encode_submit(h.number, "x" * 400)
    assert len(parts) == 3
    m.set_fault("cms_error", code=500, skip=1, count=1)
    with ready(m) as t:
        results = [send(t, p) for p in parts]
    assert "+CMGS:" in results[0] and "+CMGS:" in results[2]
    assert results[1] == "\r\n+CMS ERROR: 500\r\n"
    assert len(m.sent) == 2


def test_cms_error_without_a_number_and_on_reads(net):
    m = net.add_modem()
    with ready(m) as t:
        m.set_fault("cms_error", code=None, commands=["CMGS", "CMGL"])
        assert t.command("AT+CMGL=4") == "\r\n+CMS ERROR\r\n"
        assert send(t, codec.encode_submit("+15551230001", "x")[0]) == "\r\n+CMS ERROR\r\n"
        m.set_fault("cms_error", probability=0.0)
        assert "+CMGS:" in send(t, codec.encode_submit("+15551230001", "x")[0])


def test_no_network(net):
    m = net.add_modem()
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        t.command("AT+CMEE=1")
        m.set_fault("no_network")
        assert "+CREG: 0,2" in t.command("AT+CREG?")
        assert send(t, codec.encode_submit(h.number, "x")[0]) == "\r\n+CMS ERROR: 331\r\n"
        assert t.command('AT+CUSD=1,"*100#",15') == "\r\n+CME ERROR: 30\r\n"
        h.send(m.number, "held by the network")
        assert t.command("AT") == "\r\nOK\r\n"
        m.clear_fault("no_network")
        t.expect(rb'\+CMTI: "SM",1\r\n')


def test_pin_fault(net):
    m = net.add_modem()
    with ready(m) as t:
        m.set_fault("pin", pin="2468")
        t.expect(rb"\+CPIN: SIM PIN\r\n")
        assert "+CMS ERROR: 311" in t.command("AT+CMGL=4")
        assert t.command('AT+CPIN="2468"') == "\r\nOK\r\n"
        assert "READY" in t.command("AT+CPIN?")
    assert "pin" not in m.faults


def test_slow_network_delays_the_send_answer(net):
    m = net.add_modem()
    m.set_fault("slow", send_latency=0.3)
    with ready(m) as t:
        start = time.monotonic()
        assert "+CMGS:" in send(t, codec.encode_submit("+15551230001", "x")[0])
        assert time.monotonic() - start >= 0.3


def test_urcs_wait_for_the_answer_while_a_command_runs(net):
    m = net.add_modem(command_latency=0.2)
    h = net.add_handset("+15551230001")
    with Terminal(m.port) as t:
        t.write("AT+CSQ\r")
        t.expect(rb"^AT\+CSQ\r")  # the echo: the modem is now working on the command
        h.send(m.number, "during")
        t.expect(rb'\+CMTI: "SM",1\r\n')
        assert t.consumed == b'\r\n+CSQ: 20,99\r\n\r\nOK\r\n\r\n+CMTI: "SM",1\r\n'


def test_injected_urc_inside_a_response(net):
    m = net.add_modem()
    with ready(m) as t:
        m.inject_urc('+CMTI: "SM",3', where="in_response")
        assert t.command("AT+CSQ") == '\r\n+CSQ: 20,99\r\n\r\n+CMTI: "SM",3\r\n\r\nOK\r\n'


def test_pdu_line_gap_and_huawei_chatter(net):
    m = net.add_modem(family="huawei", urc_pdu_gap=0.03, chatter_interval=0.05)
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        t.command("AT+CNMI=2,2,0,0,0")
        h.send(m.number, "gap")
        t.expect(rb"\+CMT: ,\d+\r\n[0-9A-F]+\r\n")
        t.expect(rb"\^BOOT:[\d,]+\r\n")
        assert re.search(rb"\^RSSI:20", t.expect(rb"\^RSSI:\d+\r\n").group(0))


# -- faults armed for a moment of the next send ------------------------------------------------


def test_a_fault_armed_for_the_send_command_swallows_it(net):
    m = net.add_modem()
    part = codec.encode_submit("+15551230001", "x")[0]
    with ready(m) as t:
        m.set_fault("hang", when="send")
        assert m.summary()["armed"] == [{"kind": "hang", "when": "send"}]
        assert t.command("AT") == "\r\nOK\r\n"  # not a send: nothing fires
        t.write(f"AT+CMGS={part.length}\r")
        with pytest.raises(TimeoutError):
            t.expect(rb">", timeout=0.3)
        assert m.wait_fired(timeout=1) and "hang" in m.faults
        m.clear_fault("hang")
        assert t.command("AT") == "\r\nOK\r\n"
    assert m.sent == []


def test_a_fault_armed_for_the_prompt_begins_while_the_pdu_is_written(net):
    m = net.add_modem()
    part = codec.encode_submit("+15551230001", "x")[0]
    with ready(m) as t:
        m.set_fault("hang", when="prompt")
        t.command(f"AT+CMGS={part.length}")  # up to the "> " prompt
        assert m.wait_fired(timeout=1) and "hang" in m.faults
        t.write(part.pdu + "\x1a")
        with pytest.raises(TimeoutError):
            t.expect(rb"OK|ERROR", timeout=0.3)
        m.clear_fault("hang")
        # It forgot the half-written message: the next line is a command again.
        assert t.command("AT") == "\r\nOK\r\n"
    assert m.sent == []


def test_a_fault_armed_after_the_network_took_the_part_loses_only_the_answer(net):
    m = net.add_modem()
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        m.set_fault("hang", when="submitted")
        part = codec.encode_submit(h.number, "it went")[0]
        t.command(f"AT+CMGS={part.length}")
        t.write(part.pdu + "\x1a")
        with pytest.raises(TimeoutError):
            t.expect(rb"OK", timeout=0.3)
    assert h.wait_for_message(timeout=3).text == "it went" and len(m.sent) == 1


def test_a_fault_armed_between_parts_begins_after_a_part_that_is_not_the_last(net):
    m = net.add_modem()
    h = net.add_handset("+15551230001")
    with ready(m) as t:
        m.set_fault("cms_error", when="between_parts", code=331)
        assert "+CMGS:" in send(t, codec.encode_submit(h.number, "single")[0])
        assert m.armed  # a message of one part has no "between"
        parts = codec.encode_submit(h.number, "x" * 400)
        results = [send(t, p) for p in parts]
    assert "+CMGS:" in results[0]
    assert results[1:] == ["\r\n+CMS ERROR: 331\r\n"] * 2
    assert not m.armed and "cms_error" in m.faults


def test_unknown_moment_is_refused_and_clear_disarms(net):
    m = net.add_modem()
    with pytest.raises(FaultError, match="unknown moment"):
        m.set_fault("hang", when="later")
    m.set_fault("hang", when="prompt")
    m.set_fault("unplug", when="send")
    m.clear_fault("hang")
    assert [a["kind"] for a in m.summary()["armed"]] == ["unplug"]
    m.clear_fault()
    assert m.summary()["armed"] == []
