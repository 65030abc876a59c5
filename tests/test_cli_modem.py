"""`gateway modem --port PATH VERB` over the simulator: JSON out, nothing deleted, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.sim import Network, SimModem

PEER = "+15551230001"


@pytest.fixture
def net(tmp_path: Path):
    with Network(tmp_path, seed=5, reorder_probability=0.0) as network:
        network.add_handset(PEER)
        yield network


def run(capsys, port: str, *argv: str) -> tuple[int, dict]:
    """Run the CLI in-process; the exit code and the one JSON document it printed."""
    code = main(["modem", "--port", port, "--timeout", "2", *argv])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return code, json.loads(out[0])


def settle(sim: SimModem) -> None:
    """Deliveries posted to the simulated modem before this have been handled (a control call
    runs after them on the modem thread; the same signal says nothing)."""
    sim.set_signal(sim.signal)


@pytest.mark.parametrize("family", ["huawei", "simcom", "quectel"])
def test_info(net, capsys, family):
    sim = net.add_modem(family, boot_time=0.0)
    code, out = run(capsys, sim.port, "info")
    assert code == 0
    assert out["port"] == sim.port
    assert out["family"] == family
    assert (out["imei"], out["imsi"], out["iccid"]) == (sim.imei, sim.imsi, sim.iccid)
    assert out["signal"]["rssi"] == sim.signal and out["signal"]["bars"] > 0
    assert out["registration"]["registered"] is True
    assert out["operator"] == "SimNet"
    assert out["storage"]["read"]["total"] == 30
    assert out["storage"]["full"] is False
    for key in ("manufacturer", "model", "firmware", "number", "status_reports"):
        assert key in out


def test_signal(net, capsys):
    sim = net.add_modem("generic", signal=9)
    code, out = run(capsys, sim.port, "signal")
    assert code == 0
    assert (out["signal"]["rssi"], out["signal"]["dbm"], out["signal"]["bars"]) == (9, -95, 1)
    assert out["registration"]["text"]
    assert out["operator"] == "SimNet"


def test_send_single_without_status_report(net, capsys):
    sim = net.add_modem("generic")
    code, out = run(capsys, sim.port, "send", PEER, "hello from the field")
    assert code == 0
    assert out["to"] == PEER and out["status_report"] is False
    assert [(p["seq"], p["total"]) for p in out["parts"]] == [(1, 1)]
    assert out["parts"][0]["message_reference"] == sim.sent[-1].reference
    assert sim.sent[-1].status_report_request is False
    assert net.handset(PEER).wait_for_message(timeout=5).text == "hello from the field"


def test_send_multipart_emoji_with_status_report(net, capsys):
    sim = net.add_modem("quectel", boot_time=0.0)
    text = "Thanks! 👍 " * 20
    code, out = run(capsys, sim.port, "send", PEER, text, "--status-report")
    assert code == 0
    assert out["status_report"] is True
    assert len(out["parts"]) > 1
    assert all(p["total"] == len(out["parts"]) for p in out["parts"])
    assert all(part.status_report_request for part in sim.sent)
    assert net.handset(PEER).wait_for_message(timeout=5).text == text


def test_list_decodes_and_deletes_nothing(net, capsys):
    sim = net.add_modem("generic")
    handset = net.handset(PEER)
    handset.send(to=sim.number, text="first")
    handset.send(to=sim.number, text="é second")
    sim.deliver("07910100000000F0040B91515521")  # cut short: not a whole SMS-DELIVER
    settle(sim)
    before = sim.stored()
    assert len(before) == 3

    code, out = run(capsys, sim.port, "list")
    assert code == 0
    assert out["storage"] == "SM"
    good = [m for m in out["messages"] if "error" not in m]
    bad = [m for m in out["messages"] if "error" in m]
    assert [m["text"] for m in good] == ["first", "é second"]
    assert all(m["number"] == PEER and m["type"] == "deliver" for m in good)
    assert len(bad) == 1
    assert set(bad[0]) == {"index", "storage", "pdu", "error"}
    assert bad[0]["pdu"] == "07910100000000F0040B91515521"
    assert [m["index"] for m in sim.stored()] == [m["index"] for m in before]


def test_ussd(net, capsys):
    sim = net.add_modem("huawei", boot_time=0.0)  # packed GSM 7-bit hex both ways
    code, out = run(capsys, sim.port, "ussd", "*100#")
    assert code == 0
    assert out["code"] == "*100#"
    assert out["text"] == "Your balance is 12.34 USD."


def test_pin(net, capsys):
    sim = net.add_modem("generic", pin="2468")
    code, out = run(capsys, sim.port, "--pin", "2468", "info")
    assert code == 0 and out["imei"] == sim.imei


# -- errors -------------------------------------------------------------------------------------


def test_no_such_port(capsys, tmp_path):
    port = str(tmp_path / "ttyUSB9")
    code, out = run(capsys, port, "info")
    assert code == 1
    assert out["error"]["type"] == "PortGone"
    assert out["error"]["port"] == port
    assert port in out["error"]["message"]


def test_pin_required_but_not_given(net, capsys):
    sim = net.add_modem("generic", pin="2468")
    code, out = run(capsys, sim.port, "signal")
    assert code == 1
    assert out["error"]["type"] == "SimPinRequired"
    assert "PIN" in out["error"]["message"]
    assert sim.pin_tries == 3  # nothing was guessed


def test_wrong_pin_entered_once(net, capsys):
    sim = net.add_modem("generic", pin="2468")
    code, out = run(capsys, sim.port, "--pin", "1111", "info")
    assert code == 1
    assert out["error"]["type"] == "SimPinRejected"
    assert sim.pin_tries == 2


def test_send_refused_by_the_network(net, capsys):
    sim = net.add_modem("generic")
    sim.set_fault("cms_error", code=500)
    code, out = run(capsys, sim.port, "send", PEER, "nope")
    assert code == 1
    err = out["error"]
    assert err["type"] == "PartialSendError"
    assert err["sent"] == [] and err["failed_part"] == 1
    assert "+CMS ERROR: 500" in err["message"]


def test_bad_number(net, capsys):
    sim = net.add_modem("generic")
    code, out = run(capsys, sim.port, "send", "not-a-number", "hi")
    assert code == 1
    assert out["error"]["type"] == "CodecError"
    assert not sim.sent


def test_unplugged_modem(net, capsys):
    sim = net.add_modem("generic")
    port = sim.port
    sim.unplug()
    code, out = run(capsys, port, "list")
    assert code == 1
    assert out["error"]["type"] == "PortGone"
