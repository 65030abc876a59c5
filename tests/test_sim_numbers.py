"""Numbers on the simulated network, as on a real one: a number nobody has is not invented (unless
``auto_handsets`` asks for it); a text to it is accepted by the modem and fails with a permanent
"not obtainable" status report; a handset texting a short code reaches the modem that serves it,
or is refused with an error, never a fake handset."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from gateway.modem import pdu as codec
from gateway.sim import ControlServer, Network, NoSuchNumber, SimControl
from gateway.sim.terminal import Terminal

gsmpdu = pytest.importorskip("gsmmodem.pdu")

NOBODY = "+15559870000"
SHORT = "55123"


@pytest.fixture
def net(tmp_path):
    with Network(tmp_path, seed=3, status_report_delay=0) as network:
        yield network


def pdu_mode(modem, cnmi: str = "2,1,0,1,0") -> Terminal:
    t = Terminal(modem.port)
    t.command("ATE0")
    t.command("AT+CMGF=0")
    t.command(f"AT+CNMI={cnmi}")
    return t


def send_with_report(t: Terminal, to: str, text: str) -> tuple[int, str]:
    """Send one part asking for a status report; (TP-MR, the +CDS report's PDU)."""
    part = codec.encode_submit(to, text, status_report=True)[0]
    assert t.command(f"AT+CMGS={part.length}").endswith("\r\n> ")
    t.write(part.pdu + "\x1a")
    mr = int(t.expect(rb"\r\n\+CMGS: (\d+)\r\n\r\nOK\r\n").group(1))
    report = t.expect(rb"\r\n\+CDS: \d+\r\n([0-9A-F]+)\r\n").group(1).decode()
    return mr, report


def test_unknown_number_is_accepted_then_reported_not_obtainable(net):
    m = net.add_modem(family="generic", number="+15550000001")
    with pdu_mode(m) as t:
        mr, report_pdu = send_with_report(t, NOBODY, "anyone there?")
    # Our codec: a permanent error about this part.
    report = codec.decode(report_pdu)
    assert isinstance(report, codec.StatusReport)
    assert (report.reference, report.number, report.status) == (mr, NOBODY, 0x43)
    assert report.status_category == "failed" and not report.delivered
    assert report.status_meaning == "not obtainable"
    # A decoder nobody here wrote reads the same report.
    theirs = gsmpdu.decodeSmsPdu(report_pdu)
    assert theirs["type"] == "SMS-STATUS-REPORT"
    assert (theirs["reference"], theirs["number"], theirs["status"]) == (mr, NOBODY, 0x43)
    # Nothing was invented for the number.
    assert net.handsets == []
    assert [e["kind"] for e in net.traffic] == ["submit"]


def test_text_mode_send_to_an_unknown_number_gets_its_failed_report(net):
    m = net.add_modem(family="simcom", number="+15550000001", boot_time=0)
    with Terminal(m.port) as t:
        t.command("ATE0")
        t.command("AT+CNMI=2,1,0,1,0")
        t.command("AT+CSMP=49,167,0,0")  # TP-SRR set: a status report, please
        assert t.command(f'AT+CMGS="{NOBODY}"') == "\r\n> "
        t.write("plain text\x1a")
        mr = int(t.expect(rb"\+CMGS: (\d+)\r\n\r\nOK\r\n").group(1))
        cds = t.expect(rb"\+CDS: ([^\r]*)\r\n").group(1).decode()
    # Text mode: +CDS: <fo>,<mr>,,,<scts>,<dt>,<st>
    fields = cds.split(",")
    assert int(fields[1]) == mr and int(fields[-1]) == 0x43, cds
    assert net.handsets == []


def test_auto_handsets_invents_subscribers_but_never_a_short_code(tmp_path):
    with Network(tmp_path, seed=3, status_report_delay=0, auto_handsets=True) as net:
        m = net.add_modem(family="generic", number="+15550000001")
        with pdu_mode(m) as t:
            _, report = send_with_report(t, NOBODY, "made up")
            assert codec.decode(report).status == 0x00
            _, report = send_with_report(t, "55124", "short")
            assert codec.decode(report).status == 0x43
        assert [h.number for h in net.handsets] == [NOBODY]
        assert net.handset(NOBODY).wait_for_message().text == "made up"


def test_handset_texting_a_number_nobody_has_is_refused(net):
    h = net.add_handset("+15551230001")
    net.add_modem(family="generic", number="+15550000001")
    for to in (SHORT, NOBODY):
        with pytest.raises(NoSuchNumber, match=re.escape(f"not delivered: no such number {to}")):
            h.send(to, "hello?")
    assert [h.number for h in net.handsets] == ["+15551230001"]
    assert [e["kind"] for e in net.traffic] == ["refused", "refused"]


def test_handset_texting_a_served_short_code_reaches_the_modem(net):
    h = net.add_handset("+15551230001")
    m = net.add_modem(family="generic", number="+15550000001")
    net.serve_number(SHORT, m)
    assert net.served_numbers(m) == [SHORT]
    with pdu_mode(m, cnmi="2,1,0,0,0") as t:
        h.send(SHORT, "JOIN")
        index = int(t.expect(rb'\+CMTI: "SM",(\d+)\r\n').group(1))
        out = t.command(f"AT+CMGR={index}")
    got = codec.decode(out.split("\r\n")[2])
    assert (got.number, got.text) == ("+15551230001", "JOIN")
    assert net.handsets == [h]


def test_control_api_refuses_a_send_to_no_such_number(net):
    h = net.add_handset("+15551230001")
    m = net.add_modem(family="generic", number="+15550000001")
    net.serve_number(SHORT, m)
    control = SimControl(net)
    assert control.modems()[0]["serves"] == [SHORT]
    server = ControlServer(control).start()
    try:
        req = urllib.request.Request(
            f"{server.url}/handsets/{h.number}/send",
            data=json.dumps({"to": "55999", "text": "hi"}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 400
        assert json.loads(err.value.read()) == {"error": "not delivered: no such number 55999"}
    finally:
        server.close()
    assert net.handsets == [h]


@pytest.mark.parametrize("auto", [False, True])
def test_gateway_sim_command_takes_auto_handsets(tmp_path, auto):
    """``gateway sim --auto-handsets``: a text to a made-up number creates its handset;
    without the flag one handset texting a number nobody has gets the network's refusal."""
    args = ["--modems", "1", "--handsets", "1", "--dir", str(tmp_path)]
    args += ["--auto-handsets"] if auto else []
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.commands.sim",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while "control" not in (lines[-1] if lines else {}):
            line = proc.stdout.readline()
            assert line, f"gateway sim exited: {proc.wait()} {proc.stderr.read()}"
            lines.append(json.loads(line))
        url = lines[-1]["control"]
        req = urllib.request.Request(
            f"{url}/handsets/+15551230001/send",
            data=json.dumps({"to": NOBODY, "text": "hi"}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        if auto:
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.status == 200
            with urllib.request.urlopen(f"{url}/handsets", timeout=5) as resp:
                numbers = [h["number"] for h in json.loads(resp.read())]
            assert numbers == ["+15551230001", NOBODY]
        else:
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=5)
            assert err.value.code == 400
            assert (
                json.loads(err.value.read())["error"] == f"not delivered: no such number {NOBODY}"
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
