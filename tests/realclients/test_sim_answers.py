"""What Gammu, smsd and python-gsmmodem needed from the simulator, AT command by AT command, as
real modems answer (no client binary needed): Huawei's ^CURC and ^PORTSEL, +CGATT, +COPS in the
numeric format, +CUSD in the +CSCS character set, and status reports after a network's delay."""

from __future__ import annotations

import re
import time

import pytest

from gateway.config import ConfigError, parse_config
from gateway.modem import pdu as codec
from gateway.sim import Network
from gateway.sim.terminal import Terminal
from gateway.sim.tpdu import unpack_gsm7

from .simproc import FAMILIES

BALANCE = "Your balance is 12.34 USD."


@pytest.fixture
def net(tmp_path):
    with Network(tmp_path, seed=4, status_report_delay=0) as network:
        yield network


def term(modem) -> Terminal:
    t = Terminal(modem.port)
    t.command("ATE0")
    return t


def test_huawei_curc_0_is_accepted_and_silences_periodic_reports(net):
    m = net.add_modem(family="huawei")
    with term(m) as t:
        assert t.command("AT^CURC?") == "\r\n^CURC: 1\r\n\r\nOK\r\n"
        m.set_signal(17)  # with ^CURC=1 the ^RSSI overtakes the next answer
        assert t.command("AT") == "\r\n^RSSI:17\r\n\r\nOK\r\n"
        assert t.command("AT^CURC=0") == "\r\nOK\r\n"
        m.set_signal(12)
        assert t.command("AT") == "\r\nOK\r\n"
        assert t.command("AT^CURC?") == "\r\n^CURC: 0\r\n\r\nOK\r\n"
        assert t.command("AT^PORTSEL=1") == "\r\nOK\r\n"


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "huawei"])
def test_other_families_have_no_huawei_commands(net, family):
    m = net.add_modem(family=family, boot_time=0)
    with term(m) as t:
        assert t.command("AT^CURC=0") == "\r\nERROR\r\n"
        assert t.command("AT^PORTSEL=1") == "\r\nERROR\r\n"


@pytest.mark.parametrize("family", FAMILIES)
def test_cgatt_attached_while_registered(net, family):
    m = net.add_modem(family=family, boot_time=0)
    with term(m) as t:
        assert t.command("AT+CGATT?") == "\r\n+CGATT: 1\r\n\r\nOK\r\n"
        assert t.command("AT+CGATT=?") == "\r\n+CGATT: (0,1)\r\n\r\nOK\r\n"
        assert t.command("AT+CGATT=0") == "\r\nOK\r\n"
        assert t.command("AT+CGATT?") == "\r\n+CGATT: 0\r\n\r\nOK\r\n"
        assert t.command("AT+CGATT=1") == "\r\nOK\r\n"
        m.set_fault("no_network")
        assert t.command("AT+CGATT?") == "\r\n+CGATT: 0\r\n\r\nOK\r\n"


def test_cops_answers_in_the_format_set(net):
    m = net.add_modem(family="generic")
    with term(m) as t:
        assert t.command("AT+COPS?") == '\r\n+COPS: 0,0,"SimNet"\r\n\r\nOK\r\n'
        assert t.command("AT+COPS=3,2") == "\r\nOK\r\n"
        assert t.command("AT+COPS?") == '\r\n+COPS: 0,2,"00101"\r\n\r\nOK\r\n'
        assert t.command("AT+COPS=3,0") == "\r\nOK\r\n"
        assert t.command("AT+COPS?") == '\r\n+COPS: 0,0,"SimNet"\r\n\r\nOK\r\n'


def ucs2(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "huawei"])
def test_cusd_in_ucs2_both_ways(net, family):
    """What Gammu does: AT+CSCS="UCS2", the code in hex, the answer read as hex."""
    m = net.add_modem(family=family, boot_time=0)
    with term(m) as t:
        t.command('AT+CSCS="UCS2"')
        assert t.command(f'AT+CUSD=1,"{ucs2("*100#")}",15') == "\r\nOK\r\n"
        answer = t.expect(rb'\+CUSD: 0,"([0-9A-F]+)",15\r\n').group(1).decode()
        assert bytes.fromhex(answer).decode("utf-16-be") == BALANCE
        t.command("AT+CMEE=1")
        assert t.command('AT+CUSD=1,"*100#",15') == "\r\n+CME ERROR: 50\r\n"  # not UCS2 hex


def test_cusd_in_the_gsm_character_set(net):
    m = net.add_modem(family="generic")
    with term(m) as t:
        t.command('AT+CSCS="GSM"')
        t.command('AT+CUSD=1,"*100#",15')
        t.expect(rb'\+CUSD: 0,"Your balance is 12\.34 USD\.",15\r\n')
        assert t.command("AT+CUSD?") == "\r\n+CUSD: 1\r\n\r\nOK\r\n"


def test_huawei_ussdmode_1_stays_packed_whatever_the_character_set(net):
    m = net.add_modem(family="huawei")
    with term(m) as t:
        t.command('AT+CSCS="UCS2"')
        t.command('AT+CUSD=1,"AA180C3602",15')  # "*100#" packed, as Gammu sends to a Huawei
        packed = t.expect(rb'\+CUSD: 0,"([0-9A-F]+)",15\r\n').group(1).decode()
    assert unpack_gsm7(packed) == BALANCE


# -- status reports after the network's delay -----------------------------------------------


def send_with_report(t: Terminal, to: str, text: str) -> float:
    """Send one part asking for a report; the time its +CMGS answer arrived."""
    part = codec.encode_submit(to, text, status_report=True)[0]
    t.command("AT+CMGF=0")
    t.command("AT+CNMI=2,1,0,2,0")
    assert t.command(f"AT+CMGS={part.length}").endswith("> ")
    t.write(part.pdu + "\x1a")
    t.expect(rb"\+CMGS: \d+\r\n\r\nOK\r\n")
    return time.monotonic()


def test_default_report_delay_is_a_realistic_one_to_three_seconds(tmp_path):
    with Network(tmp_path, seed=4) as net:
        assert net.status_report_delay == (1.0, 3.0)
        m = net.add_modem(family="generic")
        h = net.add_handset("+15551230001")
        with term(m) as t:
            answered = send_with_report(t, h.number, "report later")
            h.wait_for_message()
            t.expect(rb'\+CDSI: "SM",\d+\r\n', timeout=5)
            waited = time.monotonic() - answered
    assert 0.9 <= waited <= 3.5, waited


def test_a_handset_has_its_own_delay_and_instant_reports_is_a_fault(net):
    m = net.add_modem(family="generic")
    h = net.add_handset("+15551230001", report_delay=60)
    with term(m) as t:
        send_with_report(t, h.number, "slow network")
        h.wait_for_message()
        assert b"CDSI" not in t.read_for(0.3)  # a minute to go
        m.set_fault("instant_reports")
        send_with_report(t, h.number, "at once")
        t.expect(rb'\+CDSI: "SM",\d+\r\n', timeout=3)


def test_instant_reports_land_inside_the_next_send(net):
    """The race the fault keeps: the report of part 1 comes out with part 2's exchange."""
    m = net.add_modem(family="generic")
    h = net.add_handset("+15551230001", report_delay=60)
    m.set_fault("instant_reports")
    parts = codec.encode_submit(h.number, "y" * 200, status_report=True)
    with term(m) as t:
        t.command("AT+CMGF=0")
        t.command("AT+CNMI=2,1,0,2,0")
        said = ""
        for part in parts:
            said += t.command(f"AT+CMGS={part.length}")
            t.write(part.pdu + "\x1a")
            t.expect(rb"\+CMGS: \d+\r\n\r\nOK\r\n")
            said += t.consumed.decode()
        said += t.read_for(0.3).decode()
    assert len(re.findall(r'\+CDSI: "SM",\d+', said)) == 2, said


def test_report_delay_must_be_sensible(tmp_path):
    with pytest.raises(ValueError, match="status report delay"):
        Network(tmp_path, status_report_delay=(3, 1))
    with Network(tmp_path, status_report_delay=0) as net, pytest.raises(ValueError):
        net.add_handset("+15551230001", report_delay=-1)


def test_config_sets_the_simulated_network_report_delay():
    sim = parse_config("simulator:\n  status_report_delay: 0.5\n", "gw.yaml").simulator
    assert sim is not None and sim.status_report_delay == 0.5
    assert parse_config("simulator: {}\n", "gw.yaml").simulator.status_report_delay is None
    with pytest.raises(ConfigError, match="status_report_delay"):
        parse_config("simulator:\n  status_report_delay: -1\n", "gw.yaml")


@pytest.mark.parametrize(
    ("family", "answer"),
    [("simcom", "+CBC: 0,85,4012"), ("quectel", "+CBC: 0,85,3950"), ("huawei", None)],
)
def test_battery_on_modules_with_a_supply_only(net, family, answer):
    """`gammu battery`: a SIM800 or EC25 measures its supply; a USB stick answers ERROR."""
    m = net.add_modem(family=family, boot_time=0)
    with term(m) as t:
        out = t.command("AT+CBC")
    assert out == (f"\r\n{answer}\r\n\r\nOK\r\n" if answer else "\r\nERROR\r\n")


@pytest.mark.parametrize("year", ["20", "2020"])  # Gammu writes four digits to a Huawei
def test_clock_reads_network_time_and_keeps_what_is_set(net, year):
    m = net.add_modem(family="generic")
    with term(m) as t:
        now = t.command("AT+CCLK?")
        assert re.fullmatch(r'\r\n\+CCLK: "\d\d/\d\d/\d\d,\d\d:\d\d:\d\d\+00"\r\n\r\nOK\r\n', now)
        assert t.command(f'AT+CCLK="{year}/01/02,10:30:00+04"') == "\r\nOK\r\n"
        assert t.command("AT+CCLK?").startswith('\r\n+CCLK: "20/01/02,10:30:0')
        t.command("AT+CMEE=1")
        assert t.command('AT+CCLK="yesterday"') == "\r\n+CME ERROR: 50\r\n"
