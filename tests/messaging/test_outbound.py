"""Accepting, routing and sending outbound messages through fake modem links."""

from __future__ import annotations

import pytest

from gateway.messaging.outbound import PRIORITY_BULK, SendRefused
from gateway.modem import pdu
from gateway.modem.at import CommandTimeout

from .conftest import World, cms, rate_limited


def test_accepted_message_is_committed_then_sent(world: World) -> None:
    acc = world.outbox.submit("Hello :thumbsup:", to="(555) 010-1234")
    row = world.store.messages.get(acc.message_id)
    assert (
        row["status"] == "queued" and row["body"] == "Hello 👍" and row["phone"] == "+15550101234"
    )
    assert acc.encoding == "ucs2" and acc.short_code == "55123"
    world.up("a")
    assert world.wait_status(acc.message_id, {"sent"}) == "sent"
    parts = world.store.messages.parts(acc.message_id)
    assert [p["status"] for p in parts] == ["sent"] and parts[0]["tp_mr"] == 1
    decoded = pdu.decode(world.links["a"].sent[0])
    assert decoded.number == "+15550101234" and decoded.text == "Hello 👍"
    assert decoded.status_report_request  # status_reports defaults to on for a modem
    assert world.store.profiles.get(acc.profile_id)["sticky_modem"] == "a"


def test_idempotency_key_makes_a_retried_submit_harmless(world: World) -> None:
    first = world.outbox.submit("hi", to="+15550101234", idempotency_key="k1")
    again = world.outbox.submit("hi", to="+15550101234", idempotency_key="k1")
    assert again.message_id == first.message_id and not again.created
    assert world.store.db.value("SELECT COUNT(*) FROM messages") == 1


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"to": "12"}, "to", "digits"),
        ({"to": ""}, "to", "required"),
        ({"to": "+15550101234", "short_code": "nope"}, "short_code", "no short code 'nope'"),
    ],
)
def test_bad_input_is_refused_with_the_field(world: World, kwargs, field, words) -> None:
    with pytest.raises(SendRefused) as err:
        world.outbox.submit("hi", **kwargs)
    assert err.value.field == field and words in err.value.reason
    assert world.store.db.value("SELECT COUNT(*) FROM messages") == 0


def test_too_long_text_is_refused_saying_length_and_limit(world: World) -> None:
    with pytest.raises(SendRefused) as err:
        world.outbox.submit("x" * 1600, to="+15550101234")
    assert "1600 septets" in err.value.reason and "limit is 10 parts" in err.value.reason


def test_opted_out_recipient_is_refused(world: World) -> None:
    pid = world.store.profiles.add("+15550101234", "Ann", subscribed=False)
    with pytest.raises(SendRefused) as err:
        world.outbox.submit("hi", profile_id=pid)
    assert "opted out" in err.value.reason


def test_cms_error_on_part_two_resends_only_the_rest_from_the_same_modem(world: World) -> None:
    world.links["a"].fail_on[2] = cms(42)  # congestion: temporary
    acc = world.outbox.submit("y" * 400, to="+15550101234")  # 3 parts
    world.up("a", "b")
    world.wait_status(acc.message_id, {"sent"})
    parts = world.store.messages.parts(acc.message_id)
    assert [p["status"] for p in parts] == ["sent"] * 3
    assert {p["modem_id"] for p in parts} == {"a"}
    texts = [pdu.decode(h) for h in world.links["a"].sent]
    assert [t.concat.seq for t in texts] == [1, 2, 3]  # part 1 once, then 2 and 3
    assert len({t.concat.reference for t in texts}) == 1
    assert world.links["b"].sent == []
    assert world.store.messages.get(acc.message_id)["attempts"] == 2


def test_permanent_error_fails_the_message_with_the_reason(world: World) -> None:
    world.links["a"].fail_on[1] = cms(1)
    acc = world.outbox.submit("hi", to="+15550101234")
    world.up("a")
    assert world.wait_status(acc.message_id, {"failed"}) == "failed"
    assert "not assigned" in world.store.messages.get(acc.message_id)["error"]


def test_timeout_after_writing_marks_the_part_as_maybe_duplicate(world: World) -> None:
    world.links["a"].fail_on[1] = CommandTimeout("/dev/fake", "AT+CMGS=20", "no answer")
    acc = world.outbox.submit("hi", to="+15550101234")
    world.up("a")
    world.wait_status(acc.message_id, {"sent"})
    row = world.store.messages.get(acc.message_id)
    assert row["maybe_duplicate"] == 1


def test_chat_goes_before_bulk(world: World) -> None:
    bulk = [
        world.outbox.submit(f"bulk {i}", to=f"+1555010{2000 + i}", priority=PRIORITY_BULK)
        for i in range(3)
    ]
    chat = world.outbox.submit("chat", to="+15550109999")
    world.up("a")
    for acc in [*bulk, chat]:
        world.wait_status(acc.message_id, {"sent"})
    first = pdu.decode(world.links["a"].sent[0])
    assert first.text == "chat"


def test_sticky_profile_waits_for_its_modem_then_moves_after_grace(tmp_path) -> None:
    from datetime import timedelta

    from gateway.store.times import now

    clock = {"t": now()}
    w = World(tmp_path, clock=lambda: clock["t"])
    try:
        pid = w.store.profiles.add("+15550101234", "Ann")
        w.store.profiles.set_sticky_modem(pid, "b")
        w.dispatcher.start()
        w.up("a")
        acc = w.outbox.submit("hi", profile_id=pid)
        w.dispatcher.route_once()
        assert w.store.messages.get(acc.message_id)["status"] == "queued"  # waits for b
        clock["t"] += timedelta(minutes=31)
        w.dispatcher.wake()
        w.wait_status(acc.message_id, {"sent"})
        assert w.store.messages.get(acc.message_id)["modem_id"] == "a"
    finally:
        w.close()


def test_rate_limit_per_minute_defers_the_rest(tmp_path) -> None:
    w = World(tmp_path, adjust=rate_limited("c", per_minute=2))
    try:
        w.dispatcher.start()
        w.up("c")
        accs = [
            w.outbox.submit(f"n{i}", to=f"+1555010{3000 + i}", short_code="55999") for i in range(3)
        ]
        w.wait_status(accs[0].message_id, {"sent"})
        w.wait_status(accs[1].message_id, {"sent"})
        assert w.dispatcher.route_once() > 30  # the third waits for the minute to pass
        assert w.store.messages.get(accs[2].message_id)["status"] == "queued"
    finally:
        w.close()


def test_recovery_after_crash_resends_and_marks_duplicates(tmp_path) -> None:
    w = World(tmp_path)
    acc = w.outbox.submit("z" * 300, to="+15550101234")
    # Simulate a crash: part 1 was sent, part 2 was being written when the process died.
    assert w.store.messages.claim(acc.message_id, "a")
    w.store.messages.ensure_parts(
        acc.message_id,
        [
            (p.seq, p.pdu, p.length)
            for p in pdu.encode_submit("+15550101234", "z" * 300, reference=7)
        ],
    )
    parts = w.store.messages.parts(acc.message_id)
    w.store.messages.part_writing(parts[0]["id"], "a")
    w.store.messages.part_sent(parts[0]["id"], 5)
    w.store.messages.part_writing(parts[1]["id"], "a")
    w.store.close()

    w2 = World(tmp_path)
    try:
        w2.dispatcher.start()
        w2.up("a")
        w2.wait_status(acc.message_id, {"sent"})
        row = w2.store.messages.get(acc.message_id)
        assert row["maybe_duplicate"] == 1
        parts = w2.store.messages.parts(acc.message_id)
        assert [p["maybe_duplicate"] for p in parts] == [0, 1]
        assert [pdu.decode(h).concat.seq for h in w2.links["a"].sent] == [2]
    finally:
        w2.close()
