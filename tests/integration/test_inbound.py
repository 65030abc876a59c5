"""Inbound over the simulator: a multipart reply that arrives out of order is reassembled into
one message; its sender becomes (or is matched to) a profile; a PDU read twice is stored once."""

from __future__ import annotations

from gateway.modem import pdu as smspdu

from .harness import ALICE, BOB, IMEI_A, NUM_A, NUM_C, SUPPORT, wait_until

REPLY = "".join(f"Reply sentence number {i} about the trip, with details. " for i in range(8))


def _inbound(gateway, phone: str):
    return gateway.store.db.q(
        "SELECT * FROM messages WHERE direction = 'in' AND phone = ? ORDER BY id", (phone,)
    )


def _seqs(pdus: list[str]) -> list[int]:
    return [smspdu.decode(p).concat.seq for p in pdus]


def test_out_of_order_multipart_reply_is_reassembled_for_a_new_profile(gateway):
    assert gateway.store.profiles.by_phone(BOB) is None
    pdus = gateway.net.handset(BOB).send(to=NUM_C, text=REPLY, reorder=True)
    assert len(pdus) > 2 and _seqs(pdus) != sorted(_seqs(pdus))  # really shuffled
    [msg] = wait_until(gateway.sub, lambda: _inbound(gateway, BOB), 8, "the reply")
    assert msg["body"] == REPLY
    assert msg["status"] == "received" and msg["parts_total"] == len(pdus)
    assert msg["modem_id"] == "c" and msg["short_code"] == "55999"
    assert msg["kind"] == "unknown"  # a number the gateway had never seen
    profile = gateway.store.profiles.by_phone(BOB)
    assert profile is not None and msg["profile_id"] == profile["id"]
    assert profile["sticky_modem"] == "c"
    raw = gateway.store.db.q("SELECT * FROM inbound_pdus WHERE message_id = ?", (msg["id"],))
    assert len(raw) == len(pdus) and all(r["settled"] for r in raw)
    # Committed, then deleted from the SIM.
    wait_until(gateway.sub, lambda: not gateway.net.modem(NUM_C).stored(), 5, "empty storage")

    # The same PDUs read again (a sweep after +CMTI, a restart before the delete): no news.
    for pdu in pdus:
        again = gateway.services.inbound.receive("c", pdu, source="sweep")
        assert not again.new
    assert len(_inbound(gateway, BOB)) == 1
    count = gateway.store.db.value("SELECT COUNT(*) FROM inbound_pdus WHERE sender = ?", (BOB,))
    assert count == len(pdus)


def test_reply_from_a_known_profile_is_matched_to_it(gateway):
    acc = gateway.services.outbox.submit("Are you coming?", to=ALICE, short_code=SUPPORT)
    alice = gateway.net.handset(ALICE)
    got = alice.wait_for_message(timeout=5)
    assert got.sender == NUM_A
    profile = gateway.store.profiles.by_phone(ALICE)
    assert profile["id"] == acc.profile_id

    alice.send(to=got.sender, text=REPLY, reorder=True)
    [msg] = wait_until(gateway.sub, lambda: _inbound(gateway, ALICE), 8, "the reply")
    assert msg["body"] == REPLY and msg["profile_id"] == acc.profile_id
    assert msg["kind"] == "reply" and msg["agent_state"] == "open"
    assert gateway.store.db.value("SELECT COUNT(*) FROM profiles WHERE phone = ?", (ALICE,)) == 1


def test_a_pdu_left_on_the_sim_is_read_again_by_the_sweep_but_stored_once(gateway, monkeypatch):
    modem = gateway.net.modem(IMEI_A)
    inbound = gateway.services.inbound
    reads: list[bool] = []
    receive = inbound.receive

    def counting(*args, **kwargs):
        got = receive(*args, **kwargs)
        reads.append(got.new)
        return got

    monkeypatch.setattr(inbound, "receive", counting)
    # The first delete after +CMTI fails: the message stays on the SIM until a sweep (every
    # 2 s here) reads it again and deletes it.
    modem.set_fault("cms_error", code=500, commands=("CMGD",), count=1)
    gateway.net.handset(BOB).send(to=NUM_A, text="hello once")
    [msg] = wait_until(gateway.sub, lambda: _inbound(gateway, BOB), 5, "the text")
    assert msg["body"] == "hello once"
    wait_until(gateway.sub, lambda: modem.faults["cms_error"]["count"] == 0, 5, "a failed delete")
    wait_until(gateway.sub, lambda: not modem.stored(), 6, "the sweep to delete it")
    assert len(reads) >= 2 and reads.count(True) == 1  # read twice (or more), new once
    assert len(_inbound(gateway, BOB)) == 1
    assert gateway.store.db.value("SELECT COUNT(*) FROM inbound_pdus WHERE sender = ?", (BOB,)) == 1
