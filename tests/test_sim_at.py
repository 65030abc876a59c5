"""The simulated modems' AT command set, driven byte for byte through a real pty with pyserial."""

from __future__ import annotations

import os
import re

import pytest

from gateway.sim import Network
from gateway.sim.identity import luhn_valid
from gateway.sim.terminal import Terminal


@pytest.fixture
def net(tmp_path):
    with Network(tmp_path, seed=7) as network:
        yield network


def open_term(modem) -> Terminal:
    return Terminal(modem.port)


def test_port_is_a_stable_by_id_symlink_to_a_pty(net, tmp_path):
    m = net.add_modem(family="quectel", number="+15550000001")
    assert os.path.islink(m.port)
    assert os.path.dirname(m.port) == str(tmp_path / "by-id")
    assert re.fullmatch(r"usb-Quectel_EC25_\d{8}-if02-port0", os.path.basename(m.port))
    assert os.readlink(m.port) == m.device
    assert m.device.startswith("/dev/pts/")


def test_identities_are_valid_and_deterministic(tmp_path):
    def identities(path):
        with Network(path, seed=42) as n:
            m = n.add_modem(family="generic")
            return m.imei, m.iccid, m.imsi, m.number

    first = identities(tmp_path / "a")
    assert first == identities(tmp_path / "b")
    imei, iccid, imsi, number = first
    assert len(imei) == 15 and luhn_valid(imei)
    assert iccid.startswith("89") and len(iccid) == 20 and luhn_valid(iccid)
    assert imsi.startswith("00101") and len(imsi) == 15
    assert number == "+15550000001"


def test_echo_is_on_until_ate0(net):
    m = net.add_modem(family="generic")
    with open_term(m) as t:
        assert t.command("AT") == "AT\r\r\nOK\r\n"
        assert t.command("ATE0") == "ATE0\r\r\nOK\r\n"
        assert t.command("AT") == "\r\nOK\r\n"
        assert t.command("ATE1") == "\r\nOK\r\n"
        assert t.command("AT") == "AT\r\r\nOK\r\n"


def test_huawei_urc_overtakes_the_echo_which_ends_in_cr(net):
    m = net.add_modem(family="huawei")
    with open_term(m) as t:
        t.command("AT")
        m.set_signal(17)  # ^RSSI waits for the next command line and goes out before its echo
        out = t.command("AT+CSQ")
        assert out == "\r\n^RSSI:17\r\nAT+CSQ\r\r\n+CSQ: 17,99\r\n\r\nOK\r\n"


def test_identity_commands(net):
    m = net.add_modem(family="sierra")
    with open_term(m) as t:
        t.command("ATE0")
        assert "+CGMI" not in t.command("AT+CGMI")
        assert "Sierra Wireless, Incorporated" in t.command("AT+CGMI")
        assert "MC7455" in t.command("AT+CGMM")
        assert m.imei in t.command("AT+CGSN")
        assert m.imsi in t.command("AT+CIMI")
        assert f"ICCID: {m.iccid}" in t.command("AT!ICCID?")
        assert f"ICCID: {m.iccid}" in t.command("AT+ICCID")
        assert f'+CNUM: "","{m.number}",145' in t.command("AT+CNUM")
        assert f"IMEI: {m.imei}" in t.command("ATI")


@pytest.mark.parametrize(
    ("family", "command", "answer"),
    [
        ("simcom", "AT+CCID", "\r\n{iccid}\r\n"),
        ("quectel", "AT+QCCID", "+QCCID: {iccid}"),
        ("ublox", "AT+CCID", "+CCID: {iccid}"),
        ("generic", "AT+ICCID", "+ICCID: {iccid}"),
    ],
)
def test_family_iccid_commands(net, family, command, answer):
    m = net.add_modem(family=family, boot_time=0)
    with open_term(m) as t:
        t.command("ATE0")
        assert answer.format(iccid=m.iccid) in t.command(command)
        assert t.command("AT^ICCID?") == "\r\nERROR\r\n"


def test_huawei_iccid_is_nibble_swapped(net):
    m = net.add_modem(family="huawei")
    swapped = "".join(m.iccid[i + 1] + m.iccid[i] for i in range(0, 20, 2))
    with open_term(m) as t:
        assert f"^ICCID: {swapped}" in t.command("AT^ICCID?")


def test_errors_follow_cmee(net):
    m = net.add_modem(family="generic")
    with open_term(m) as t:
        t.command("ATE0")
        assert t.command("AT+NOSUCH") == "\r\nERROR\r\n"
        assert t.command('AT+CPIN="1111"') == "\r\nERROR\r\n"
        t.command("AT+CMEE=1")
        assert t.command('AT+CPIN="1111"') == "\r\n+CME ERROR: 3\r\n"
        t.command("AT+CMEE=2")
        assert t.command('AT+CPIN="1111"') == "\r\n+CME ERROR: operation not allowed\r\n"
        assert t.command("AT+CMEE?") == "\r\n+CMEE: 2\r\n\r\nOK\r\n"
        assert t.command("AT+NOSUCH") == "\r\nERROR\r\n"


def test_several_commands_on_one_line(net):
    m = net.add_modem(family="generic")
    with open_term(m) as t:
        out = t.command("ATE0V1+CMEE=1;+CMGF=0;+CGMI")
        assert out.endswith("\r\nGeneric\r\n\r\nOK\r\n")
        assert t.command("AT+CMGF?") == "\r\n+CMGF: 0\r\n\r\nOK\r\n"


def test_pin_flow_counts_down_to_puk(net):
    m = net.add_modem(family="generic", pin="4321")
    with open_term(m) as t:
        t.command("ATE0;+CMEE=1")
        assert "+CPIN: SIM PIN" in t.command("AT+CPIN?")
        assert "+CME ERROR: 11" in t.command("AT+CIMI")
        assert "+CMS ERROR: 311" in t.command("AT+CMGL=4")
        assert "+CREG: 0,0" in t.command("AT+CREG?")
        assert "+CME ERROR: 16" in t.command('AT+CPIN="0000"')
        assert "+CME ERROR: 16" in t.command('AT+CPIN="0000"')
        assert "+CPIN: SIM PIN" in t.command("AT+CPIN?")
        assert "+CME ERROR: 16" in t.command('AT+CPIN="0000"')
        assert "+CPIN: SIM PUK" in t.command("AT+CPIN?")
        assert "+CME ERROR: 12" in t.command("AT+CIMI")
        assert "+CME ERROR: 16" in t.command('AT+CPIN="4321"')  # the PIN no longer helps
        assert t.command('AT+CPIN="12345678","1111"') == "\r\nOK\r\n"
        assert "+CPIN: READY" in t.command("AT+CPIN?")
        assert m.pin == "1111"
        assert "+CREG: 0,1" in t.command("AT+CREG?")


def test_right_pin_unlocks_and_the_sim_says_ready(net):
    m = net.add_modem(family="quectel", pin="1234", boot_time=0)
    with open_term(m) as t:
        t.command("ATE0")
        assert '+QPINC: "SC",3,10' in t.command('AT+QPINC="SC"')
        assert t.command('AT+CPIN="1234"') == "\r\nOK\r\n"
        t.expect(rb"\+CPIN: READY\r\n")
        t.expect(rb"\+QIND: SMS DONE\r\n")
        assert m.imsi in t.command("AT+CIMI")


def test_registration_shapes(net):
    q = net.add_modem(family="quectel", boot_time=0)
    h = net.add_modem(family="huawei")
    s = net.add_modem(family="simcom", boot_time=0)
    with open_term(q) as t:
        t.command("ATE0")
        assert t.command("AT+CREG?") == "\r\n+CREG: 0,1\r\n\r\nOK\r\n"
        t.command("AT+CREG=2")
        assert re.search(r'\+CREG: 2,1,"[0-9A-F]{4}","[0-9A-F]{7}",7\r\n', t.command("AT+CREG?"))
        assert "+CEREG: 0,1" in t.command("AT+CEREG?")
        t.command("AT+CREG=1")
        q.set_fault("no_network")
        t.expect(rb"\r\n\+CREG: 2\r\n")
        q.clear_fault("no_network")
        t.expect(rb"\r\n\+CREG: 1\r\n")
        assert '+COPS: 0,0,"SimNet",7' in t.command("AT+COPS?")
    with open_term(h) as t:
        t.command("ATE0;+CREG=2")
        # Huawei: location area and cell id as unquoted hex.
        assert re.search(r"\+CREG: 2,1,[0-9A-F]{4},[0-9A-F]{7}\r\n", t.command("AT+CREG?"))
        assert t.command("AT+CEREG?") == "\r\nERROR\r\n"
    with open_term(s) as t:
        t.command("ATE0;+CGREG=2")
        assert re.search(r'\+CGREG: 2,1,"[0-9A-F]{4}","[0-9A-F]{4}"\r\n', t.command("AT+CGREG?"))
        assert '+COPS: 0,0,"SimNet"\r\n' in t.command("AT+COPS?")


def test_signal_and_operator(net):
    m = net.add_modem(family="generic", signal=23)
    with open_term(m) as t:
        t.command("ATE0")
        assert "+CSQ: 23,99" in t.command("AT+CSQ")
        m.set_fault("no_network")
        assert "+CSQ: 99,99" in t.command("AT+CSQ")
        assert "+COPS: 0\r\n" in t.command("AT+COPS?")


def test_ussd_balance(net):
    m = net.add_modem(family="generic")
    with open_term(m) as t:
        t.command("ATE0")
        assert t.command('AT+CUSD=1,"*100#",15') == "\r\nOK\r\n"
        t.expect(rb'\r\n\+CUSD: 0,"Your balance is 12\.34 USD\.",15\r\n')
        t.command('AT+CUSD=1,"*999#",15')
        t.expect(rb"\r\n\+CUSD: 4\r\n")


def test_huawei_ussd_is_packed_hex_unless_ussdmode_0(net):
    m = net.add_modem(family="huawei")
    with open_term(m) as t:
        t.command("ATE0")
        t.command('AT+CUSD=1,"AA180C3602",15')  # "*100#" packed
        match = t.expect(rb'\+CUSD: 0,"([0-9A-F]+)",15\r\n')
        from gateway.sim.tpdu import unpack_gsm7

        assert unpack_gsm7(match.group(1).decode()).startswith("Your balance is")
        t.command("AT^USSDMODE=0")
        t.command('AT+CUSD=1,"*100#",15')
        t.expect(rb'\+CUSD: 0,"Your balance is 12\.34 USD\.",15\r\n')


def test_cpms_query_and_set(net):
    m = net.add_modem(family="quectel", boot_time=0, storage_capacity=10)
    with open_term(m) as t:
        t.command("ATE0")
        assert '+CPMS: "ME",0,10,"ME",0,10,"ME",0,10' in t.command("AT+CPMS?")
        assert "+CPMS: 0,10,0,10,0,10" in t.command('AT+CPMS="SM","SM","SM"')
        assert "+CPMS: 0,20,0,20,0,20" in t.command('AT+CPMS="MT","MT","MT"')
        assert '("SM","ME","MT")' in t.command("AT+CPMS=?")
        assert "+CMS ERROR: 302" in t.command('AT+CPMS="XX"')


def test_clac_and_unknown(net):
    s = net.add_modem(family="simcom", boot_time=0)
    q = net.add_modem(family="quectel", boot_time=0)
    with open_term(s) as t:
        t.command("ATE0")
        assert t.command("AT+CLAC") == "\r\nERROR\r\n"
    with open_term(q) as t:
        t.command("ATE0")
        assert "AT+CMGS" in t.command("AT+CLAC")


def test_line_without_at_is_ignored_and_junk_before_at_is_skipped(net):
    m = net.add_modem(family="generic")
    with open_term(m) as t:
        t.command("ATE0")
        t.write(b"hello\r")
        assert t.command("\xffAT") == "\r\nOK\r\n"


def test_verbose_off_gives_numeric_codes(net):
    m = net.add_modem(family="generic")
    with open_term(m) as t:
        t.write(b"ATE0V0\r")
        t.expect(rb"^ATE0V0\r0\r")
        t.write(b"AT+NOSUCH\r")
        t.expect(rb"^4\r")
