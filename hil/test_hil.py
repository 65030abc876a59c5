"""The end-to-end suite: one modem from start-up to recovery, through the gateway's own
ModemManager and Modem. Against the simulator by default; unchanged against a real modem with
GATEWAY_HIL_PORT (and GATEWAY_HIL_PEER): see docs/hil.md.

The tests run in file order and share one modem (as the daemon would); each stands alone in
what it checks. On hardware the slow ones (waiting for a person to text back, or for the
network's status report) have a long ceiling.
"""

from __future__ import annotations

import queue
import re
import time

import pytest

from gateway.modem import pdu as pdumod
from gateway.modem.device import decode_stored
from gateway.sim.identity import luhn_valid

SLOW = pytest.mark.timeout(1200)  # hardware: a person texts back, the network reports back


def test_startup(gateway, target):
    status = gateway.status()
    assert status.state == "up", status.last_error
    assert gateway.modem.is_open
    assert gateway.modem.storage  # a message memory was selected
    assert gateway.modem.status_report_routing in ("direct", "stored", "none")
    assert status.storage is not None and status.storage.read.total > 0
    assert status.port == target.port


def test_identity(gateway, target):
    ident = gateway.modem.identify()
    assert ident.imei and len(ident.imei) == 15 and luhn_valid(ident.imei), ident.imei
    assert ident.imsi and re.fullmatch(r"\d{6,15}", ident.imsi), ident.imsi
    assert ident.iccid and re.fullmatch(r"89\d{16,20}", ident.iccid), ident.iccid
    assert ident.manufacturer and ident.model
    if target.sim is not None:
        sim = target.sim
        assert (ident.imei, ident.imsi, ident.iccid) == (sim.imei, sim.imsi, sim.iccid)
        assert ident.family == sim.family


def test_signal_and_registration(gateway):
    signal = gateway.modem.signal()
    assert 0 <= signal.rssi <= 31, f"no usable signal (CSQ {signal.rssi})"
    assert signal.dbm is not None and -113 <= signal.dbm <= -51
    registration = gateway.modem.registration()
    assert registration.registered, registration.status_text
    assert gateway.modem.operator()


def _send(gateway, target, text: str, *, status_report: bool = False):
    peer = target.require_peer()
    parts = gateway.modem.send_text(peer, text, status_report=status_report)
    assert all(0 <= p.message_reference <= 255 for p in parts)
    assert [p.seq for p in parts] == list(range(1, len(parts) + 1))
    return parts


def test_send_single(gateway, target, tag):
    text = f"HIL single {tag}"
    parts = _send(gateway, target, text)
    assert len(parts) == 1
    target.peer_got(text)


def test_send_multipart(gateway, target, tag):
    text = f"HIL multipart {tag}: " + " ".join(f"word{i:03d}" for i in range(45))
    assert pdumod.encode_submit("+10000000000", text)[0].total == 3
    parts = _send(gateway, target, text)
    assert len(parts) == 3 and {p.total for p in parts} == {3}
    target.peer_got(text)


def test_send_emoji(gateway, target, tag):
    text = f"HIL emoji {tag} 👋🏽 café ✓ 🇬🇧"
    parts = _send(gateway, target, text)
    assert len(parts) == 1
    target.peer_got(text)


@SLOW
def test_status_report(gateway, target, tag):
    parts = _send(gateway, target, f"HIL report {tag}", status_report=True)
    mr = parts[0].message_reference
    report, source = gateway.inbox.wait_for(
        lambda d, _src: isinstance(d, pdumod.StatusReport) and d.reference == mr, target.wait
    )
    assert report.status_category == "delivered", report.status_meaning
    assert source in ("+CDS",) or source.startswith(("+CMTI", "sweep"))


@SLOW
def test_receive_from_handset(gateway, target, tag):
    target.require_peer()
    text = f"HIL receive {tag}"
    received = gateway.status().received
    target.peer_texts(text)
    msg, source = gateway.inbox.wait_for(
        lambda d, _src: isinstance(d, pdumod.Deliver) and d.text == text, target.wait
    )
    assert source.startswith("+CMT")  # told by the modem (+CMTI, or +CMT when routed)
    assert msg.number.lstrip("+")[-8:] == target.peer.lstrip("+")[-8:]
    # Committed (on_pdu returned), then deleted from the SIM.
    gateway.wait_status(lambda s: s.received > received, 30.0)
    assert text not in _stored_texts(gateway)


@SLOW
def test_storage_sweep(gateway, target, tag):
    # A message whose commit fails stays on the SIM; a sweep commits it, then deletes it.
    target.require_peer()
    text = f"HIL sweep {tag}"
    gateway.inbox.refuse.set()
    try:
        target.peer_texts(text)
        gateway.inbox.refused.get(timeout=target.wait)
        assert text in _stored_texts(gateway)
    finally:
        gateway.inbox.refuse.clear()
    received = gateway.status().received
    gateway.manager.request_sweep("hil")
    _msg, source = gateway.inbox.wait_for(
        lambda d, _src: isinstance(d, pdumod.Deliver) and d.text == text, 60.0
    )
    assert source.startswith("sweep")
    gateway.wait_status(lambda s: s.received > received, 30.0)
    assert text not in _stored_texts(gateway)


@SLOW
def test_recovery_from_reset(gateway, target, tag):
    device_before = target.sim.device if target.sim is not None else None
    gateway.manager.request_reset("hil")
    gateway.wait_status(lambda s: s.state == "starting", 30.0)
    status = gateway.wait_status(lambda s: s.state != "starting", 180.0)
    assert status.state == "up", status.last_error
    assert gateway.manager.modem("hil") is gateway.modem
    assert gateway.modem.is_open
    gateway.modem.ping()
    _wait_registered(gateway, 10.0 if target.sim is not None else 120.0)
    if target.sim is not None:
        if target.sim.profile.reset_reenumerates:
            assert target.sim.device != device_before  # back on a new port behind the link
        # Indications were set up again: a new message still arrives by itself.
        text = f"HIL after reset {tag}"
        target.peer_texts(text)
        gateway.inbox.wait_for(lambda d, _src: getattr(d, "text", None) == text, target.wait)


def _stored_texts(gateway) -> list[str]:
    """The texts in the modem's storage now (a corrupt entry shows as its error)."""
    texts = []
    for stored in gateway.modem.list_messages():
        decoded = decode_stored(stored)
        texts.append(getattr(decoded, "text", None) or getattr(decoded, "error", ""))
    return texts


def _wait_registered(gateway, timeout: float) -> None:
    """A reset modem registers again within seconds to a minute. Asked again on every status
    change (an unsolicited +CREG is one) and at least once a second."""
    deadline = time.monotonic() + timeout
    while not gateway.modem.registration().registered:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"not registered again {timeout:.0f} s after the reset")
        try:
            gateway.inbox.statuses.get(timeout=min(1.0, left))
        except queue.Empty:
            continue
