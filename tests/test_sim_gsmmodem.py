"""Realism: python-gsmmodem-new's GsmModem, a driver nobody here wrote, runs unchanged against
simulated modems: it starts them up, sends an SMS that reaches a handset (with its delivery
report), and receives one from a handset through its callback."""

from __future__ import annotations

import threading

import pytest

from gateway.modem.sim import Network

gsmmodem = pytest.importorskip("gsmmodem.modem")


@pytest.mark.parametrize("family", ["generic", "huawei", "quectel", "simcom", "sierra", "ublox"])
def test_gsmmodem_sends_and_receives(tmp_path, family):
    received: list = []
    got_sms = threading.Event()
    got_report = threading.Event()

    def on_sms(sms) -> None:
        received.append(sms)
        got_sms.set()

    with Network(tmp_path, seed=1) as net:
        m = net.add_modem(family=family, number="+15550000001", boot_time=0)
        h = net.add_handset("+15551230001")
        modem = gsmmodem.GsmModem(
            m.port,
            115200,
            smsReceivedCallbackFunc=on_sms,
            smsStatusReportCallback=lambda report: got_report.set(),
        )
        modem.connect()
        try:
            assert modem.imei == m.imei
            assert modem.networkName == "SimNet"
            sent = modem.sendSms(h.number, "hello from gsmmodem")
            assert h.wait_for_message(timeout=5).text == "hello from gsmmodem"
            # Its +CDSI/+CMTI handler reads only the first URC of a burst (a known weakness,
            # see the traps), so the handset waits for the report to be handled.
            assert got_report.wait(5)
            assert sent.reference == m.sent[-1].reference
            h.send(m.number, "hello to gsmmodem")
            assert got_sms.wait(5)
            # Its handler thread deletes the message after calling back: let it finish before
            # closing, or it fails on the closed port after this test has ended.
            for thread in threading.enumerate():
                if "HandleModemNotification" in thread.name:
                    thread.join(5)
        finally:
            modem.close()
    [sms] = received
    assert (sms.number, sms.text) == ("+15551230001", "hello to gsmmodem")
