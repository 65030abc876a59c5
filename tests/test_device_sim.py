"""The Modem driver over the simulator on real ptys: every family, real messages, faults."""

from __future__ import annotations

import queue

import pytest

from gateway.modem import pdu as pdumod
from gateway.modem.at import CmsError, CommandTimeout
from gateway.modem.device import (
    Modem,
    ModemSettings,
    PartialSendError,
    SimPinRejected,
    decode_stored,
)
from gateway.modem.urc import (
    DirectMessage,
    DirectStatusReport,
    ModemGone,
    NewMessage,
    SignalChanged,
    StorageFull,
)
from gateway.sim import FAMILIES, Network

SETTINGS = ModemSettings(
    command_timeout=3.0,
    retry_delay=0.02,
    sms_ready_timeout=5.0,
    startup_timeout=5.0,
    reset_timeout=10.0,
    send_timeout=5.0,
)
PEER = "+15551230001"


@pytest.fixture
def net(tmp_path):
    with Network(tmp_path, seed=3, reorder_probability=0.0, status_report_delay=0) as network:
        network.add_handset(PEER)
        yield network


@pytest.fixture
def modems():
    opened: list[Modem] = []

    def _open(sim, settings: ModemSettings = SETTINGS, **kwargs) -> Modem:
        modem = Modem(str(sim.port), settings, **kwargs)
        opened.append(modem)
        modem.open()
        return modem

    yield _open
    for m in opened:
        m.close()


def events_of(modem: Modem, kind: type, count: int, timeout: float = 5.0) -> list:
    out = []
    while len(out) < count:
        event = modem.events.get(timeout=timeout)
        if isinstance(event, kind):
            out.append(event)
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_family_round_trip(net, modems, family):
    sim = net.add_modem(family=family, boot_time=0.05)
    modem = modems(sim)
    ident = modem.identify()
    assert (ident.imei, ident.iccid, ident.imsi) == (sim.imei, sim.iccid, sim.imsi)
    assert ident.family == family
    assert modem.signal().bars > 0
    assert modem.registration().registered

    text = "out " * 60
    sent = modem.send_text(PEER, text, status_report=False)
    assert len(sent) == 2
    assert net.handset(PEER).wait_for_message(timeout=5).text == text

    net.handset(PEER).send(to=sim.number, text="back " * 50)
    notices = events_of(modem, NewMessage, 2)
    texts = []
    for notice in notices:
        stored = modem.read(notice.index, notice.storage)
        texts.append(decode_stored(stored).text)
        modem.delete(notice.index, notice.storage)
    assert "".join(texts) == "back " * 50
    assert sim.stored() == []


def test_status_report_bit_follows_configuration(net, modems):
    sim = net.add_modem(family="generic")
    modem = modems(sim)
    mr_off = modem.send_text(PEER, "no report", status_report=False)[0].message_reference
    mr_on = modem.send_text(PEER, "report", status_report=True)[0].message_reference
    assert [p.status_report_request for p in sim.sent] == [False, True]
    report = events_of(modem, DirectStatusReport, 1)[0]
    assert pdumod.decode(report.pdu).reference == mr_on != mr_off


def test_cmt_and_cds_split_by_a_gap_with_csms_1(net, modems):
    # +CMT/+CDS header and PDU 30 ms apart; phase 2+ so every one is acknowledged with CNMA.
    sim = net.add_modem(family="simcom", urc_pdu_gap=0.03, boot_time=0.05, cnma_timeout=2.0)
    settings = ModemSettings(**{**SETTINGS.__dict__, "direct_messages": True})
    modem = modems(sim, settings)
    assert modem.message_service == 1
    net.handset(PEER).send(to=sim.number, text="direct " * 30)
    direct = events_of(modem, DirectMessage, 2)
    decoded = sorted((pdumod.decode(d.pdu) for d in direct), key=lambda m: m.concat.seq)
    assert "".join(m.text for m in decoded) == "direct " * 30
    modem.send_text(PEER, "x", status_report=True)
    assert events_of(modem, DirectStatusReport, 1)
    assert sim.stored() == []


def test_pin_from_config(net, modems):
    sim = net.add_modem(family="quectel", pin="4321", boot_time=0.05)
    modem = modems(sim, ModemSettings(**{**SETTINGS.__dict__, "pin": "4321"}))
    assert modem.is_open


def test_wrong_pin_not_retried(net):
    sim = net.add_modem(family="generic", pin="4321")
    modem = Modem(str(sim.port), ModemSettings(**{**SETTINGS.__dict__, "pin": "0000"}))
    with pytest.raises(SimPinRejected):
        modem.open()
    with pytest.raises(SimPinRejected):
        modem.open()
    modem.close()
    assert sim.pin_tries == 2  # one attempt spent, two left: the SIM is nowhere near PUK


def test_cms_error_on_part_2_of_3(net, modems):
    sim = net.add_modem(family="generic")
    modem = modems(sim)
    sim.set_fault("cms_error", skip=1, count=1, code=500)
    parts = pdumod.encode_submit(PEER, "z" * 400)
    with pytest.raises(PartialSendError) as info:
        modem.send_parts(parts)
    assert [p.seq for p in info.value.sent] == [1]
    assert info.value.failed.seq == 2
    assert len(sim.sent) == 1


def test_cms_error_without_number(net, modems):
    sim = net.add_modem(family="ublox")
    modem = modems(sim)
    sim.set_fault("cms_error", code=None)
    part = pdumod.encode_submit(PEER, "hi")[0]
    with pytest.raises(CmsError) as info:
        modem.send_pdu(part.pdu, part.length)
    assert info.value.code is None


def test_garbage_bytes_are_survived(net, modems):
    sim = net.add_modem(family="huawei")
    modem = modems(sim)
    sim.set_fault("garbage", probability=1.0)
    for _ in range(5):
        assert modem.signal().rssi == 20
    assert modem.identify().imei == sim.imei


def test_hang_then_recover(net, modems):
    sim = net.add_modem(family="generic")
    modem = modems(sim, ModemSettings(**{**SETTINGS.__dict__, "command_timeout": 0.3}))
    sim.set_fault("hang")
    with pytest.raises(CommandTimeout):
        modem.signal()
    sim.clear_fault("hang")
    assert modem.signal().rssi == 20
    assert modem.operator() == "SimNet"


def test_unplug_and_replug(net, modems):
    sim = net.add_modem(family="quectel", boot_time=0.05)
    modem = modems(sim)
    sim.unplug()
    gone = events_of(modem, ModemGone, 1)[0]
    assert str(sim.port) in str(gone.error)
    sim.replug()
    assert sim.wait_plugged(5)
    again = modems(sim)
    assert again.identify().imei == sim.imei


def test_storage_full(net, modems):
    sim = net.add_modem(family="huawei", storage_capacity=2)
    modem = modems(sim)
    net.handset(PEER).send(to=sim.number, text="one")
    net.handset(PEER).send(to=sim.number, text="two")
    events_of(modem, NewMessage, 2)
    assert modem.storage_usage().full
    net.handset(PEER).send(to=sim.number, text="three")
    assert events_of(modem, StorageFull, 1)  # Huawei says ^SMMEMFULL


def test_cmti_inside_csq_answer(net, modems):
    sim = net.add_modem(family="generic")
    modem = modems(sim)
    net.handset(PEER).send(to=sim.number, text="first")
    first = events_of(modem, NewMessage, 1)[0]
    sim.inject_urc(f'+CMTI: "SM",{first.index}', where="in_response")
    assert modem.signal().rssi == 20
    again = events_of(modem, NewMessage, 1)[0]
    assert decode_stored(modem.read(again.index, again.storage)).text == "first"


def test_urc_before_echo(net, modems):
    sim = net.add_modem(family="huawei")
    modem = modems(sim)
    sim.inject_urc("^RSSI:7", where="before_echo")
    assert modem.signal().rssi == 20
    assert events_of(modem, SignalChanged, 1)[0].signal.rssi == 7


@pytest.mark.parametrize("family", ["simcom", "huawei"])
def test_empty_slot_reads_as_none(net, modems, family):
    sim = net.add_modem(family=family, boot_time=0.05)
    modem = modems(sim)
    assert modem.read(7) is None


@pytest.mark.parametrize("family", ["simcom", "quectel"])
def test_reset_comes_back(net, modems, family):
    sim = net.add_modem(family=family, boot_time=0.05)
    modem = modems(sim)
    modem.reset()
    assert modem.is_open
    assert modem.signal().rssi == 20
    net.handset(PEER).send(to=sim.number, text="after reset")
    notice = events_of(modem, NewMessage, 1)[0]
    assert decode_stored(modem.read(notice.index, notice.storage)).text == "after reset"


def test_no_event_left_behind(net, modems):
    sim = net.add_modem(family="generic")
    modem = modems(sim)
    modem.ping()
    with pytest.raises(queue.Empty):
        events_of(modem, NewMessage, 1, timeout=0.05)


@pytest.mark.parametrize("template", ["{length}", ",,{length}"])
def test_cmgr_header_shapes_from_public_logs_over_the_pty(net, modems, template):
    """``+CMGR: 24`` and ``+CMGR: ,,92`` (no status) come byte for byte from the simulator; the
    driver reads the message all the same."""
    sim = net.add_modem(family="generic", cmgr_header=template)
    modem = modems(sim)
    net.handset(PEER).send(to=sim.number, text="short")
    (notice,) = events_of(modem, NewMessage, 1)
    stored = modem.read(notice.index, notice.storage)
    assert stored.status is None  # the header carried no status
    assert stored.length == len(stored.pdu) // 2 - 1 - int(stored.pdu[:2], 16)
    assert decode_stored(stored).text == "short"
