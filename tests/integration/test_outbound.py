"""Outbound over the simulator: single, multipart and emoji texts reach the handset intact,
from the short code's modem number, with a TP-MR per part; status reports (one per part) roll
the message up to delivered, or to failed."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.modem import pdu as smspdu

from .harness import ALERTS, ALICE, BOB, NUM_A, NUM_C, SUPPORT

LONG = "".join(f"Line {i:02d} of a long notice about the school trip. " for i in range(9))[:400]


def _sent_by(gateway, modem_id: str) -> list:
    """The simulator's record of what the modem of that config id wrote."""
    imei = gateway.config.modem(modem_id).imei
    return list(gateway.net.modem(imei).sent)


def test_single_text_is_sent_then_delivered(gateway):
    alice = gateway.net.handset(ALICE)
    alice.set_reachable(False)  # the network holds it: we can see 'sent' before 'delivered'
    acc = gateway.services.outbox.submit("Hello Alice", to=ALICE, short_code=SUPPORT)
    assert acc.created and acc.parts == 1 and acc.phone == ALICE
    gateway.wait_status(acc.message_id, "sent")
    [part] = gateway.parts(acc.message_id)
    assert part["status"] == "sent" and part["modem_id"] == "a" and part["sent_at"]
    [record] = _sent_by(gateway, "a")
    assert part["tp_mr"] == record.reference and record.status_report_request

    alice.set_reachable(True)
    msg = alice.wait_for_message(timeout=5)
    assert (msg.text, msg.sender) == ("Hello Alice", NUM_A)
    gateway.wait_status(acc.message_id, "delivered")
    [part] = gateway.parts(acc.message_id)
    assert part["status"] == "delivered" and part["report_status"] == 0


def test_multipart_text_arrives_whole_with_a_report_per_part(gateway):
    bob = gateway.net.handset(BOB)
    bob.set_reachable(False)
    acc = gateway.services.outbox.submit(LONG, to=BOB, short_code=ALERTS)
    assert len(LONG) == 400 and acc.parts == 3 and acc.encoding == "gsm7"
    gateway.wait_status(acc.message_id, "sent")
    parts = gateway.parts(acc.message_id)
    records = _sent_by(gateway, "c")
    assert [p["seq"] for p in parts] == [1, 2, 3]
    assert [p["tp_mr"] for p in parts] == [r.reference for r in records]
    assert all(p["status"] == "sent" and p["modem_id"] == "c" for p in parts)
    assert gateway.message(acc.message_id)["concat_ref"] is not None

    bob.set_reachable(True)
    msg = bob.wait_for_message(timeout=5)
    assert (msg.text, msg.sender, msg.parts) == (LONG, NUM_C, 3)
    gateway.wait_status(acc.message_id, "delivered")
    assert [p["status"] for p in gateway.parts(acc.message_id)] == ["delivered"] * 3
    reports = gateway.store.db.q(
        "SELECT * FROM inbound_pdus WHERE kind = 'status-report' AND modem_id = 'c'"
    )
    assert len(reports) == 3  # one per part, each stored once


def test_emoji_shortcode_is_expanded_and_arrives_intact(gateway):
    acc = gateway.services.outbox.submit(
        "Great job :thumbsup: see you 🎉", to=ALICE, short_code=SUPPORT
    )
    assert acc.encoding == "ucs2"
    msg = gateway.net.handset(ALICE).wait_for_message(timeout=5)
    assert msg.text == "Great job 👍 see you 🎉"
    assert msg.sender == NUM_A
    gateway.wait_status(acc.message_id, "delivered")
    assert gateway.message(acc.message_id)["body"] == "Great job 👍 see you 🎉"


def test_a_failed_status_report_fails_the_message(gateway):
    # A number the simulated network does not know: it answers "not obtainable" (0x43).
    gateway.net.auto_handsets = False
    acc = gateway.services.outbox.submit("Anyone there?", to="+15559870000", short_code=SUPPORT)
    gateway.wait_status(acc.message_id, "failed")
    row = gateway.message(acc.message_id)
    assert row["error"]
    [part] = gateway.parts(acc.message_id)
    assert part["status"] == "failed" and part["report_status"] == 0x43


def test_a_failed_report_for_one_part_fails_a_multipart_message(gateway):
    bob = gateway.net.handset(BOB)
    bob.set_reachable(False)  # no report from the network: we play it
    acc = gateway.services.outbox.submit(LONG, to=BOB, short_code=SUPPORT)
    gateway.wait_status(acc.message_id, "sent")
    first, second, _third = gateway.parts(acc.message_id)
    at = datetime.now(UTC)

    def report(part, status: int) -> str:
        return smspdu.encode_status_report(BOB, part["tp_mr"], status, submitted=at, discharged=at)

    inbound = gateway.services.inbound
    assert inbound.receive(first["modem_id"], report(first, 0x00)).message_id == acc.message_id
    assert gateway.message(acc.message_id)["status"] == "sent"
    got = inbound.receive(second["modem_id"], report(second, 0x46))  # validity expired
    assert got.message_id == acc.message_id
    row = gateway.message(acc.message_id)
    assert row["status"] == "failed" and row["error"]
    statuses = [p["status"] for p in gateway.parts(acc.message_id)]
    assert statuses == ["delivered", "failed", "sent"]
    # The same report read again (a sweep after +CDS) changes nothing and is stored once.
    again = inbound.receive(second["modem_id"], report(second, 0x46))
    assert not again.new


def test_status_reports_off_sends_pdus_without_srr(start_gateway):
    gw = start_gateway(modem_extra={"c": "status_reports: false"})
    gw.wait_up("a", "c")
    off = gw.services.outbox.submit(LONG, to=ALICE, short_code=ALERTS)
    on = gw.services.outbox.submit("with a report", to=BOB, short_code=SUPPORT)
    gw.wait_status(off.message_id, "sent")
    gw.wait_status(on.message_id, "delivered")
    records = _sent_by(gw, "c")
    assert len(records) == 3 and not any(r.status_report_request for r in records)
    for r in records:
        assert not smspdu.decode(r.pdu, smsc=True).status_report_request
    assert all(r.status_report_request for r in _sent_by(gw, "a"))
    # Without reports the message stays 'sent' (nothing comes back to roll it up).
    msg = gw.net.handset(ALICE).wait_for_message(timeout=5)
    assert msg.text == LONG
    assert gw.message(off.message_id)["status"] == "sent"


def test_reports_that_overtake_the_cmgs_answer_still_count(start_gateway):
    # With slow sends the simulator's status report comes right after the +CMGS answer, on
    # another thread than the sender's, often before the TP-MR is recorded.
    gw = start_gateway(latency=0.3)
    gw.wait_up("a", "b")
    ids = [
        gw.services.outbox.submit(f"Report race {i}", to=f"+1555888{i:04d}", short_code=SUPPORT)
        for i in range(4)
    ]
    for acc in ids:
        gw.wait_status(acc.message_id, "delivered", timeout=6)
