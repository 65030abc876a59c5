"""Faults over the simulator: a modem unplugged in the middle of a queue (the rest goes out
through the other modem of the pool, nothing lost, and it comes back on replug); a hung modem
blocks nobody else and is up again once the hang ends."""

from __future__ import annotations

from gateway.cli import main

from .harness import ALERTS, ALICE, IMEI_A, IMEI_B, NUM_A, NUM_B, NUM_C, SUPPORT, wait_until

RECIPIENTS = [f"+1555777{n:04d}" for n in range(10)]


def _count(gateway, sql: str, *args) -> int:
    return int(gateway.store.db.value(sql, args))


def test_unplug_mid_queue_goes_on_through_the_pool(start_gateway):
    gw = start_gateway(latency=0.15)  # each part takes 0.15 s to send: a queue builds up
    gw.wait_up("a", "b")
    ids = [
        gw.services.outbox.submit(f"Notice {i}", to=to, short_code=SUPPORT).message_id
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
    acc = gw.services.outbox.submit("After the replug", to=ALICE, short_code=SUPPORT)
    assert gw.net.handset(ALICE).wait_for_message(timeout=5).text == "After the replug"
    gw.wait_status(acc.message_id, "delivered")


def test_a_hung_modem_blocks_nobody_and_comes_back(start_gateway):
    gw = start_gateway(heartbeat=0.5, command_timeout=1)
    gw.wait_up("a", "b", "c")
    modem_a = gw.net.modem(IMEI_A)
    modem_a.set_fault("hang")
    stuck = gw.services.outbox.submit("To the hung modem", to=ALICE, short_code=SUPPORT)
    wait_until(
        gw.sub,
        lambda: gw.message(stuck.message_id)["modem_id"] == "a",
        3,
        "the message routed to the hung modem",
    )
    # Another modem sends at once, while modem a hangs.
    other = gw.services.outbox.submit("Alerts still work", to="+15557770100", short_code=ALERTS)
    gw.wait_status(other.message_id, "delivered", timeout=3)
    assert gw.net.handset("+15557770100").inbox[0].sender == NUM_C

    # The heartbeat notices; the message goes out through the pool once modem a is down.
    gw.wait_status(stuck.message_id, {"sent", "delivered"}, timeout=8)
    got = gw.net.handset(ALICE).wait_for_message(timeout=5)
    assert got.text == "To the hung modem" and got.sender in (NUM_A, NUM_B)

    modem_a.clear_fault("hang")
    gw.wait_up("a", timeout=8)
    acc = gw.services.outbox.submit("Modem a again", to="+15557770101", short_code=SUPPORT)
    gw.wait_status(acc.message_id, "delivered")
    assert gw.message(acc.message_id)["modem_id"] == "a"
    assert gw.net.handset("+15557770101").inbox[0].sender == NUM_A


def test_a_sticky_profile_waits_for_the_grace_then_moves_with_all_its_parts(start_gateway):
    gw = start_gateway(latency=0.3, grace=0.02)  # grace: 1.2 s
    gw.wait_up("a", "b")
    alice = gw.net.handset(ALICE)
    first = gw.services.outbox.submit("Hello from a", to=ALICE, short_code=SUPPORT)
    assert alice.wait_for_message(timeout=5).sender == NUM_A
    gw.wait_status(first.message_id, "delivered")
    wait_until(
        gw.sub,
        lambda: gw.store.profiles.by_phone(ALICE)["sticky_modem"] == "a",
        3,
        "Alice to stick to modem a",
    )

    long = "".join(f"Sentence {i} of a long text that needs three parts. " for i in range(7))
    acc = gw.services.outbox.submit(long, to=ALICE, short_code=SUPPORT)
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


# -- send errors that are the modem's, not the message's (issue 8, findings 2 and 3) -----------


def _cmgs_count(modem) -> int:
    """How many AT+CMGS the simulated modem was given (each one is a send attempt)."""
    return sum(1 for line in modem.history if line.upper().startswith("AT+CMGS="))


def test_a_sim_error_moves_messages_to_the_other_modem_of_the_pool(start_gateway):
    gw = start_gateway()
    gw.wait_up("a", "b")
    gw.net.modem(IMEI_A).set_fault("cms_error", code=311)  # SIM PIN, on every send
    ids = [
        gw.services.outbox.submit(f"Code {i}", to=to, short_code=SUPPORT).message_id
        for i, to in enumerate(RECIPIENTS[:4])
    ]
    for mid in ids:
        gw.wait_status(mid, {"sent", "delivered"})
    rows = [gw.message(mid) for mid in ids]
    assert {r["modem_id"] for r in rows} == {"b"}
    # Not the messages' fault: no backoff was charged to them.
    assert all(r["attempts"] == 1 for r in rows), [r["attempts"] for r in rows]
    for i, to in enumerate(RECIPIENTS[:4]):
        assert [(m.text, m.sender) for m in gw.net.handset(to).inbox] == [(f"Code {i}", NUM_B)]


def test_a_modem_that_rejects_every_send_leaves_routing_and_comes_back(
    start_gateway, long_run, tmp_path, capsys
):
    gw = start_gateway(latency=0.02, probe=0.5)
    gw.wait_up("a", "b")
    modem_a = gw.net.modem(IMEI_A)
    modem_a.set_fault("cms_error", code=500)
    count = 60 if long_run else 20
    ids = [
        gw.services.outbox.submit(f"Bulk {i}", to=f"+1555666{i:04d}", short_code=SUPPORT).message_id
        for i in range(count)
    ]
    for mid in ids:
        gw.wait_status(mid, {"sent", "delivered"}, timeout=15)
    assert {gw.message(mid)["modem_id"] for mid in ids} == {"b"}
    # Three failures in a row, then out of routing: a check and at most one trial message per
    # check since (0.5 s, then 1 s, then 2 s).
    assert _cmgs_count(modem_a) <= 3 + 3, modem_a.history
    status = gw.services.manager.status("a").to_json()
    assert status["state"] in ("failing", "probing")
    assert status["sending"]["failures"] >= 3 and "500" in status["sending"]["reason"]
    # `gateway modems` says so, through the control socket.
    assert main(["modems", "-c", str(tmp_path / "gateway.yaml")]) == 0
    line_a = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("a "))
    assert "failing" in line_a or "probing" in line_a

    # The fault clears: the next check passes, a trial message goes out, a is back.
    modem_a.clear_fault("cms_error")
    wait_until(
        gw.sub,
        lambda: gw.services.manager.status("a").to_json()["state"] == "probing",
        5,
        "modem a's check to pass",
    )
    acc = gw.services.outbox.submit("Trial", to=ALICE, short_code=SUPPORT)
    gw.wait_status(acc.message_id, "delivered")
    assert gw.message(acc.message_id)["modem_id"] == "a"
    wait_until(
        gw.sub,
        lambda: gw.services.manager.status("a").to_json()["state"] == "up",
        3,
        "modem a back in routing",
    )


def test_with_every_modem_of_the_pool_failing_messages_wait(start_gateway):
    gw = start_gateway(probe=0.3)
    gw.wait_up("a", "b")
    for imei in (IMEI_A, IMEI_B):
        gw.net.modem(imei).set_fault("cms_error", code=314)  # SIM busy
    ids = [
        gw.services.outbox.submit(f"Later {i}", to=to, short_code=SUPPORT).message_id
        for i, to in enumerate(RECIPIENTS[:4])
    ]
    manager = gw.services.manager
    wait_until(
        gw.sub,
        lambda: {manager.status(m).to_json()["state"] for m in "ab"} <= {"failing", "probing"},
        8,
        "both modems of the pool out of routing",
    )
    assert {gw.message(mid)["status"] for mid in ids} <= {"queued", "sending"}
    for imei in (IMEI_A, IMEI_B):
        gw.net.modem(imei).clear_fault("cms_error")
    for mid in ids:
        gw.wait_status(mid, {"sent", "delivered"}, timeout=10)
