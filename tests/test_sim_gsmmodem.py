"""Realism: python-gsmmodem-new's GsmModem, a driver nobody here wrote, runs unchanged against
simulated modems: it starts them up with delivery reports on, sends an SMS that reaches a handset
and waits for its delivery report (which comes back after a network's delay, as on a real
network), and receives one from a handset through its callback."""

from __future__ import annotations

import threading

import pytest

from gateway.sim import Network

gsmmodem = pytest.importorskip("gsmmodem.modem")


@pytest.mark.parametrize("family", ["generic", "huawei", "quectel", "simcom", "sierra", "ublox"])
def test_gsmmodem_sends_and_receives(tmp_path, family):
    received: list = []
    got_sms = threading.Event()
    got_report = threading.Event()

    def on_sms(sms) -> None:
        received.append(sms)
        got_sms.set()

    # Half a second: as on a real network the report comes after the +CMGS answer, not inside it,
    # without the full 1-3 s default per family.
    with Network(tmp_path, seed=1, status_report_delay=0.5) as net:
        m = net.add_modem(family=family, number="+15550000001", boot_time=0)
        h = net.add_handset("+15551230001")
        modem = gsmmodem.GsmModem(
            m.port,
            115200,
            smsReceivedCallbackFunc=on_sms,
            smsStatusReportCallback=lambda report: got_report.set(),
            requestDelivery=True,
        )
        modem.connect()
        try:
            assert modem.imei == m.imei
            assert modem.networkName == "SimNet"
            sent = modem.sendSms(
                h.number, "hello from gsmmodem", waitForDeliveryReport=True, deliveryTimeout=10
            )
            assert m.sent[-1].status_report_request  # AT+CSMP=49: TP-SRR set
            assert sent.reference == m.sent[-1].reference
            assert sent.status == gsmmodem.SentSms.DELIVERED
            assert [x.text for x in h.inbox] == ["hello from gsmmodem"]
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


def test_gsmmodem_sees_a_text_to_a_number_nobody_has_fail(tmp_path):
    """The network invents no phone for the number: GsmModem's send is accepted (a TP-MR) and
    its delivery report, read by GsmModem's own decoder, says failed with TP-Status 0x43."""
    reports: list = []
    with Network(tmp_path, seed=1, status_report_delay=0.2) as net:
        m = net.add_modem(family="generic", number="+15550000001", boot_time=0)
        modem = gsmmodem.GsmModem(
            m.port, 115200, smsStatusReportCallback=reports.append, requestDelivery=True
        )
        modem.connect()
        try:
            sent = modem.sendSms(
                "+15559870000", "anyone there?", waitForDeliveryReport=True, deliveryTimeout=10
            )
        finally:
            modem.close()
        assert net.handsets == []
    assert sent.reference == m.sent[-1].reference
    assert sent.status == gsmmodem.SentSms.FAILED
    assert sent.report.deliveryStatus == 0x43
