"""The simulator's control API (Python object and JSON over HTTP) and the ``gateway sim`` command,
including ``--device`` on a serial port (here: a pty pair this test creates)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import tty
import urllib.error
import urllib.request
from http.client import HTTPConnection

import pytest

from gateway.sim import ControlServer, Network, SimControl, UnknownHandset, UnknownModem
from gateway.sim.terminal import Terminal


@pytest.fixture
def net(tmp_path):
    with Network(tmp_path, seed=9) as network:
        yield network


def http(method: str, url: str, body: dict | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_control_object(net):
    m = net.add_modem(family="huawei", number="+15550000001")
    net.add_handset("+15551230001")
    c = SimControl(net)
    [summary] = c.modems()
    assert {k: summary[k] for k in ("port", "imei", "iccid", "number")} == {
        "port": m.port,
        "imei": m.imei,
        "iccid": m.iccid,
        "number": m.number,
    }
    assert c.handsets()[0]["number"] == "+15551230001"
    assert c.send("+15551230001", m.number, "hi")["parts"] == 1
    assert c.set_fault(m.imei, "no_network")["faults"] == {"no_network": {}}
    assert c.clear_fault(m.imei)["faults"] == {}
    with pytest.raises(UnknownModem):
        c.set_fault("000", "hang")
    with pytest.raises(UnknownHandset):
        c.inbox("+19999")
    c.add_handset("+15551230002")
    assert c.send("+15551230002", "+15551230001", "between phones")["parts"] == 0
    assert c.inbox("+15551230001")[0]["text"] == "between phones"


def test_control_over_http(net):
    m = net.add_modem(family="generic", number="+15550000001")
    h = net.add_handset("+15551230001")
    server = ControlServer(SimControl(net)).start()
    try:
        url = server.url
        assert url.startswith("http://127.0.0.1:")
        status, modems = http("GET", url + "/modems")
        assert status == 200 and modems[0]["imei"] == m.imei
        status, handsets = http("GET", url + "/handsets")
        assert status == 200 and handsets == [h.summary()]
        with Terminal(m.port) as t:
            t.command("ATE0")
            status, body = http(
                "POST", url + "/handsets/+15551230001/send", {"to": m.number, "text": "via http"}
            )
            assert status == 200 and body["parts"] == 1
            t.expect(rb'\+CMTI: "SM",1\r\n')
            # The modem answers the handset; the inbox shows it.
            from gateway.modem import pdu as codec

            part = codec.encode_submit(h.number, "answer")[0]
            t.command(f"AT+CMGS={part.length}")
            t.write(part.pdu + "\x1a")
            t.expect(rb"OK\r\n")
        status, inbox = http("GET", url + "/handsets/%2B15551230001/inbox")
        assert status == 200 and [(i["sender"], i["text"]) for i in inbox] == [(m.number, "answer")]

        status, body = http("POST", f"{url}/modems/{m.imei}/fault", {"kind": "hang"})
        assert status == 200 and "hang" in body["faults"]
        status, body = http(
            "POST", f"{url}/modems/{m.imei}/fault", {"kind": "cms_error", "code": 38}
        )
        assert status == 200 and body["faults"]["cms_error"]["code"] == 38
        status, body = http("DELETE", f"{url}/modems/{m.imei}/fault?kind=hang")
        assert status == 200 and list(body["faults"]) == ["cms_error"]
        status, body = http("DELETE", f"{url}/modems/{m.imei}/fault")
        assert body["faults"] == {}

        assert http("POST", f"{url}/modems/{m.imei}/fault", {"kind": "melt"})[0] == 400
        assert http("POST", f"{url}/modems/{m.imei}/fault", {})[0] == 400
        assert http("POST", f"{url}/modems/123/fault", {"kind": "hang"})[0] == 404
        assert http("GET", url + "/handsets/+1999/inbox")[0] == 404
        assert http("POST", url + "/handsets/+15551230001/send", {"text": "no to"})[0] == 400
        assert http("GET", url + "/nothing")[0] == 404
    finally:
        server.close()


def start_cli(*args: str) -> tuple[subprocess.Popen, list[dict]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.commands.sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    while True:
        line = proc.stdout.readline()  # blocks until the simulator prints (or exits)
        if not line:
            raise AssertionError(f"gateway sim exited: {proc.wait()} {proc.stderr.read()}")
        lines.append(json.loads(line))
        if "control" in lines[-1]:
            return proc, lines


def stop_cli(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=10)


def raw_http(server, method: str, path: str, body: bytes | None, headers: dict[str, str]):
    """A request with exactly these headers (a browser's, a rebinding page's), nothing added
    but what http.client always sends (Host unless given, Content-Length)."""
    host, port = server.address
    conn = HTTPConnection(host, port, timeout=5)
    try:
        conn.putrequest(method, path, skip_host="Host" in headers)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_control_api_refuses_what_a_web_page_could_send(net):
    m = net.add_modem()
    net.add_handset("+15551230001")
    server = ControlServer(SimControl(net)).start()
    try:
        fault = f"/modems/{m.imei}/fault"
        hang = json.dumps({"kind": "hang"}).encode()
        # A cross-origin "simple" POST: text/plain (or no type) needs no preflight.
        for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": ctype} if ctype else {}
            status, body = raw_http(server, "POST", fault, hang, headers)
            assert status == 415 and "application/json" in body["error"], ctype
        status, _ = raw_http(server, "POST", f"/modems/{m.imei}/replug", None, {})
        assert status == 415
        # JSON from a page of another site (were a preflight skipped), or from our own port
        # under another name (DNS rebinding), is refused too.
        json_type = {"Content-Type": "application/json"}
        for headers in (
            {**json_type, "Origin": "http://evil.example"},
            {**json_type, "Origin": "null"},
            {**json_type, "Origin": f"http://127.0.0.1:{server.address[1] + 1}"},
            {**json_type, "Host": f"evil.example:{server.address[1]}"},
        ):
            status, body = raw_http(server, "POST", fault, hang, headers)
            assert status == 403 and body["error"], headers
        status, _ = raw_http(server, "GET", "/handsets", None, {"Origin": "http://evil.example"})
        assert status == 403
        assert m.faults == {}
        # Programs on this machine, and the API's own origin, are served.
        own = {**json_type, "Origin": server.url}
        assert raw_http(server, "POST", fault, hang, own)[0] == 200
        assert "hang" in m.faults
        local = {**json_type, "Host": f"localhost:{server.address[1]}"}
        assert raw_http(server, "DELETE", fault, None, local)[0] == 200
        assert m.faults == {}
    finally:
        server.close()


def test_cli_serves_modems_handsets_and_control(tmp_path):
    proc, lines = start_cli(
        "--modems", "2", "--handsets", "1", "--dir", str(tmp_path), "--family", "huawei,simcom"
    )
    try:
        modems = [line for line in lines if "imei" in line]
        assert [m["family"] for m in modems] == ["huawei", "simcom"]
        assert all(set(m) >= {"port", "imei", "iccid", "number"} for m in modems)
        assert {"number": "+15551230001"} in lines
        assert all(m["port"].startswith(str(tmp_path / "by-id")) for m in modems)
        url = lines[-1]["control"]
        with Terminal(modems[0]["port"]) as t:
            t.command("ATE0;+CNMI=2,1,0,0,0")
            status, _ = http(
                "POST",
                url + "/handsets/+15551230001/send",
                {"to": modems[0]["number"], "text": "cli"},
            )
            assert status == 200
            t.expect(rb'\+CMTI: "SM",0\r\n')
    finally:
        assert stop_cli(proc) == 0
    assert not os.path.lexists(modems[0]["port"])


def test_cli_rejects_an_unknown_family(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.commands.sim", "--family", "nokia", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "unknown family" in proc.stderr


def read_until(fd: int, needle: bytes, timeout: float = 5.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{needle!r} not seen; got {out!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            out += os.read(fd, 4096)
    return out


def test_cli_device_mode_serves_one_modem_on_a_serial_port(tmp_path):
    master, slave = os.openpty()
    tty.setraw(master)
    device = os.ttyname(slave)
    proc, lines = start_cli("--device", device, "--family", "quectel", "--handsets", "0")
    try:
        [modem] = [line for line in lines if "imei" in line]
        assert modem["port"] == device and modem["family"] == "quectel"
        os.write(master, b"ATI\r")
        out = read_until(master, b"OK\r\n")
        assert b"ATI\r\r\nQuectel\r\nEC25\r\n" in out
        os.write(master, b"AT+CGSN\r")
        assert modem["imei"].encode() in read_until(master, b"OK\r\n")
    finally:
        assert stop_cli(proc) == 0
        os.close(master)
        os.close(slave)
