"""Faults over the simulator: a modem unplugged in the middle of a queue (the rest goes out
through the other modem of the pool, nothing lost, and it comes back on replug); a hung modem
blocks nobody else and is up again once the hang ends."""

from __future__ import annotations

from .harness import ALERTS, ALICE, IMEI_A, NUM_A, NUM_B, NUM_C, SUPPORT, wait_until

RECIPIENTS = [f"+1555777{n:04d}" for n in range(10)]


def _count(gateway, sql: str, *args) -> int:
    return int(gateway.store.db.value(sql, args))


def test_unplug_mid_queue_goes_on_through_the_pool(start_gateway):
    gw = start_gateway(latency=0.15)  # each part takes 0.15 s to send: a queue builds up
    gw.wait_up("a", "b")
    ids = [
        gw.daemon.outbox.submit(f"Notice {i}", to=to, short_code=SUPPORT).message_id
        for i, to in enumerate(RECIPIENTS)
    ]
    modem_a = gw.net.modem(IMEI_A)

    def sent_by_a() -> int:
        return _count(
            gw, "SELECT COUNT(*) FROM message_parts WHERE modem_id='a' AND tp_mr IS NOT NULL"
        )

    wait_until(gw.sub, lambda: sent_by_a() >= 2, 5, "two parts sent by modem a")
    modem_a.unplug()
    gw.wait_event("modem.down", id="a")
    unsent = _count(gw, "SELECT COUNT(*) FROM messages WHERE status IN ('queued', 'sending')")
    assert unsent > 0, "the queue was already empty when the modem went away"

    for mid in ids:
        gw.wait_status(mid, {"sent", "delivered"}, timeout=8)
    rows = [gw.message(mid) for mid in ids]
    by_modem = {r["modem_id"] for r in rows}
    assert by_modem == {"a", "b"}
    # Every handset got its notice exactly once, from one of the pool's numbers.
    for i, to in enumerate(RECIPIENTS):
        inbox = gw.net.handset(to).inbox
        texts = [m.text for m in inbox]
        assert texts.count(f"Notice {i}") >= 1, f"{to} got {texts}"
        if len(texts) > 1:  # written when the port went away, and sent again: marked
            assert gw.message(ids[i])["maybe_duplicate"] == 1
        assert {m.sender for m in inbox} <= {NUM_A, NUM_B}
    lost = [r["id"] for r in rows if r["status"] not in ("sent", "delivered")]
    assert not lost

    modem_a.replug()
    gw.wait_up("a")
    acc = gw.daemon.outbox.submit("After the replug", to=ALICE, short_code=SUPPORT)
    assert gw.net.handset(ALICE).wait_for_message(timeout=5).text == "After the replug"
    gw.wait_status(acc.message_id, "delivered")


def test_a_hung_modem_blocks_nobody_and_comes_back(start_gateway):
    gw = start_gateway(heartbeat=0.5, command_timeout=1)
    gw.wait_up("a", "b", "c")
    modem_a = gw.net.modem(IMEI_A)
    modem_a.set_fault("hang")
    stuck = gw.daemon.outbox.submit("To the hung modem", to=ALICE, short_code=SUPPORT)
    wait_until(
        gw.sub,
        lambda: gw.message(stuck.message_id)["modem_id"] == "a",
        3,
        "the message routed to the hung modem",
    )
    # Another modem sends at once, while modem a hangs.
    other = gw.daemon.outbox.submit("Alerts still work", to="+15557770100", short_code=ALERTS)
    gw.wait_status(other.message_id, "delivered", timeout=3)
    assert gw.net.handset("+15557770100").inbox[0].sender == NUM_C

    # The heartbeat notices; the message goes out through the pool once modem a is down.
    gw.wait_status(stuck.message_id, {"sent", "delivered"}, timeout=8)
    got = gw.net.handset(ALICE).wait_for_message(timeout=5)
    assert got.text == "To the hung modem" and got.sender in (NUM_A, NUM_B)

    modem_a.clear_fault("hang")
    gw.wait_up("a", timeout=8)
    acc = gw.daemon.outbox.submit("Modem a again", to="+15557770101", short_code=SUPPORT)
    gw.wait_status(acc.message_id, "delivered")
    assert gw.message(acc.message_id)["modem_id"] == "a"
    assert gw.net.handset("+15557770101").inbox[0].sender == NUM_A


def test_a_sticky_profile_waits_for_the_grace_then_moves_with_all_its_parts(start_gateway):
    gw = start_gateway(latency=0.3, grace=0.02)  # grace: 1.2 s
    gw.wait_up("a", "b")
    alice = gw.net.handset(ALICE)
    first = gw.daemon.outbox.submit("Hello from a", to=ALICE, short_code=SUPPORT)
    assert alice.wait_for_message(timeout=5).sender == NUM_A
    gw.wait_status(first.message_id, "delivered")
    wait_until(
        gw.sub,
        lambda: gw.store.profiles.by_phone(ALICE)["sticky_modem"] == "a",
        3,
        "Alice to stick to modem a",
    )

    long = "".join(f"Sentence {i} of a long text that needs three parts. " for i in range(7))
    acc = gw.daemon.outbox.submit(long, to=ALICE, short_code=SUPPORT)
    assert acc.parts == 3

    def first_part_out():
        return gw.store.db.value(
            "SELECT tp_mr FROM message_parts WHERE message_id = ? AND seq = 1", (acc.message_id,)
        )

    wait_until(gw.sub, lambda: first_part_out() is not None, 5, "part 1 sent by modem a")
    gw.net.modem(IMEI_A).unplug()
    ev = gw.wait_event("modem.down", id="a")
    assert ev is not None
    gw.wait_status(acc.message_id, {"sent", "delivered"}, timeout=8)
    row = gw.message(acc.message_id)
    assert row["modem_id"] == "b"
    parts = gw.parts(acc.message_id)
    assert {p["modem_id"] for p in parts} == {"b"} and all(p["tp_mr"] is not None for p in parts)
    # The whole text again from b's number, so the handset can join it.
    got = alice.wait_for_message(timeout=5, predicate=lambda m: m.sender == NUM_B)
    assert got.text == long and got.parts == 3
    wait_until(
        gw.sub,
        lambda: gw.store.profiles.by_phone(ALICE)["sticky_modem"] == "b",
        3,
        "Alice to stick to modem b",
    )
