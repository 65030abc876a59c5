"""Inbound PDUs: commit-first, reassembly, profiles, keywords, delivery reports."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from gateway.config import Config
from gateway.messaging.outbound import SendRefused
from gateway.modem import pdu

from .conftest import World

HANDSET = "+15551230001"


def deliver(text: str, *, sender: str = HANDSET, reference: int = 9) -> list[str]:
    return pdu.encode_deliver(
        sender, text, reference=reference, timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    )


def messages_in(world: World) -> list:
    return world.store.db.q("SELECT * FROM messages WHERE direction='in' ORDER BY id")


def test_single_message_makes_a_profile_and_an_open_agent_item(world: World) -> None:
    got = world.inbound.receive("a", deliver("Hello there")[0])
    assert got.new and got.message_id
    (msg,) = messages_in(world)
    assert msg["body"] == "Hello there" and msg["short_code"] == "55123"
    assert msg["kind"] == "unknown" and msg["agent_state"] == "open"
    profile = world.store.profiles.by_phone(HANDSET)
    assert profile["sticky_modem"] == "a"


def test_reading_the_same_pdu_twice_stores_it_once(world: World) -> None:
    hexpdu = deliver("once")[0]
    first = world.inbound.receive("a", hexpdu)
    second = world.inbound.receive("a", hexpdu)
    assert first.new and not second.new and second.pdu_id == first.pdu_id
    assert len(messages_in(world)) == 1


def test_multipart_out_of_order_with_a_duplicate_is_reassembled(world: World) -> None:
    text = "".join(f"{i:03d} " for i in range(100))  # 400 chars: 3 parts
    parts = deliver(text)
    assert len(parts) == 3
    assert world.inbound.receive("a", parts[2]).message_id is None
    assert world.inbound.receive("a", parts[0]).message_id is None
    # The same part again (resent by the network with another timestamp): dropped.
    again = pdu.encode_deliver(HANDSET, text, reference=9)[0]
    world.inbound.receive("a", again)
    done = world.inbound.receive("a", parts[1])
    assert done.message_id
    (msg,) = messages_in(world)
    assert msg["body"] == text and msg["parts_total"] == 3 and msg["status"] == "received"


def _no_reassembly_wait(config: Config) -> Config:
    messages = dataclasses.replace(config.messages, reassembly_timeout_minutes=0)
    return dataclasses.replace(config, messages=messages)


def test_missing_part_after_timeout_is_shown_with_a_marker_then_completed(tmp_path) -> None:
    w = World(tmp_path, adjust=_no_reassembly_wait)
    try:
        text = "a" * 153 + "b" * 153 + "c" * 10
        parts = deliver(text)
        w.inbound.receive("a", parts[0])
        w.inbound.receive("a", parts[2])
        assert w.inbound.flush_stale() is None
        (msg,) = messages_in(w)
        assert msg["status"] == "incomplete"
        assert msg["body"] == "a" * 153 + "[…part 2 of 3 missing…]" + "c" * 10
        w.inbound.receive("a", parts[1])  # the late part completes the same message
        (msg,) = messages_in(w)
        assert msg["status"] == "received" and msg["body"] == text
    finally:
        w.close()


def test_stop_then_refused_send_then_start(world: World) -> None:
    world.store.profiles.add(HANDSET, "Ann")
    world.inbound.receive("a", deliver(" s t o p ")[0])
    profile = world.store.profiles.by_phone(HANDSET)
    # Opted out of the short code it texted (55123, modem a's), not of every short code.
    assert profile["subscribed"] == 1
    assert not world.store.subscriptions.subscribed(profile["id"], "55123")
    (msg,) = messages_in(world)
    assert msg["kind"] == "opt-out" and msg["agent_state"] is None
    confirm = world.store.db.q1("SELECT * FROM messages WHERE direction='out'")
    assert "unsubscribed" in confirm["body"]
    with pytest.raises(SendRefused, match="opted out of 55123"):
        world.outbox.submit("promo", profile_id=profile["id"], short_code="55123")
    # Still subscribed to the other short code: a text without one goes from there.
    assert world.outbox.submit("promo", profile_id=profile["id"]).short_code == "55999"
    world.inbound.receive("a", deliver("Start", reference=10)[0])
    assert world.store.subscriptions.subscribed(profile["id"], "55123")
    world.outbox.submit("welcome back", profile_id=profile["id"])
    actions = [e["action"] for e in world.store.opt_events.history(profile["id"])]
    assert actions == ["opt_out", "opt_in"]
    events = world.store.opt_events.history(profile["id"])
    assert all(e["message_id"] for e in events)


def test_oops_right_after_stop_undoes_it_but_not_later(world: World) -> None:
    world.store.profiles.add(HANDSET, "Ann")
    world.inbound.receive("a", deliver("STOP")[0])
    world.inbound.receive("a", deliver("oops!")[0])
    profile = world.store.profiles.by_phone(HANDSET)
    assert profile["subscribed"] == 1
    assert [e["action"] for e in world.store.opt_events.history(profile["id"])] == [
        "opt_out",
        "undo_opt_out",
    ]
    world.inbound.receive("a", deliver("hello again")[0])
    world.inbound.receive("a", deliver("OOPS", reference=3)[0] + "")
    last = messages_in(world)[-1]
    assert last["kind"] == "reply" and last["agent_state"] == "open"


def test_help_is_answered_even_when_opted_out(world: World) -> None:
    world.store.profiles.add(HANDSET, "Ann", subscribed=False)
    world.inbound.receive("a", deliver("help")[0])
    out = world.store.db.q1("SELECT * FROM messages WHERE direction='out'")
    assert "STOP" in out["body"] and out["phone"] == HANDSET


def test_sentence_with_stop_inside_is_a_reply(world: World) -> None:
    world.store.profiles.add(HANDSET, "Ann")
    world.inbound.receive("a", deliver("please don't stop texting me")[0])
    assert world.store.profiles.by_phone(HANDSET)["subscribed"] == 1
    assert messages_in(world)[0]["kind"] == "reply"


def test_undecodable_pdu_is_kept_raw(world: World) -> None:
    got = world.inbound.receive("a", "07911326040000F0040B9113")
    assert got.kind == "undecodable" and got.new
    (row,) = world.store.inbound.undecodable()
    assert "ends here" in row["error"] or "needs" in row["error"]


def test_status_report_marks_the_part_delivered(world: World) -> None:
    acc = world.outbox.submit("hi", to=HANDSET)
    world.up("a")
    world.wait_status(acc.message_id, {"sent"})
    part = world.store.messages.parts(acc.message_id)[0]
    report = pdu.encode_status_report(
        HANDSET,
        part["tp_mr"],
        0x00,
        submitted=datetime.now(UTC),
        discharged=datetime.now(UTC),
    )
    got = world.inbound.receive("a", report)
    assert got.kind == "status-report" and got.message_id == acc.message_id
    assert world.store.messages.get(acc.message_id)["status"] == "delivered"


def test_pending_status_report_does_not_fail_the_message(world: World) -> None:
    acc = world.outbox.submit("hi", to=HANDSET)
    world.up("a")
    world.wait_status(acc.message_id, {"sent"})
    part = world.store.messages.parts(acc.message_id)[0]
    now = datetime.now(UTC)
    report = pdu.encode_status_report(HANDSET, part["tp_mr"], 0x21, submitted=now, discharged=now)
    world.inbound.receive("a", report)
    assert world.store.messages.get(acc.message_id)["status"] == "sent"


def test_recover_turns_committed_but_unprocessed_pdus_into_messages(tmp_path) -> None:
    from gateway.store import RawPdu
    from gateway.store.times import iso, now

    w = World(tmp_path)
    try:
        hexpdu = deliver("saved before the crash")[0]
        w.store.inbound.add(
            RawPdu(
                "a", hexpdu, "deliver", iso(now()), sender=HANDSET, text="saved before the crash"
            )
        )
        w.inbound.recover()
        assert messages_in(w)[0]["body"] == "saved before the crash"
    finally:
        w.close()


def test_a_reused_reference_is_not_grafted_onto_an_old_incomplete_message(tmp_path) -> None:
    w = World(tmp_path, adjust=_no_reassembly_wait)
    try:
        old = deliver("a" * 153 + "b" * 153 + "c" * 10, reference=77)
        w.inbound.receive("a", old[0])
        w.inbound.receive("a", old[1])
        w.inbound.flush_stale()  # part 3 never came: an incomplete message
        new_text = "x" * 153 + "y" * 153 + "z" * 10
        for part in pdu.encode_deliver(HANDSET, new_text, reference=77):
            w.inbound.receive("a", part)
        bodies = [m["body"] for m in messages_in(w)]
        assert bodies[-1] == new_text and bodies[0].startswith("a" * 153)
        assert messages_in(w)[0]["status"] == "incomplete"
    finally:
        w.close()


def test_a_pdu_stored_but_not_processed_is_processed_when_read_again(world: World) -> None:
    from gateway.store import RawPdu
    from gateway.store.times import iso, now

    hexpdu = deliver("saved before the crash")[0]
    world.store.inbound.add(
        RawPdu("a", hexpdu, "deliver", iso(now()), sender=HANDSET, text="saved before the crash")
    )
    got = world.inbound.receive("a", hexpdu)  # the sweep reads it again before deleting it
    assert not got.new and got.message_id
    assert [m["body"] for m in messages_in(world)] == ["saved before the crash"]


def test_every_kind_of_inbound_row_keeps_the_number_in_its_stored_form(world: World) -> None:
    """A report about, and a stored submit to, a number written nationally are kept in E.164 like
    a sender, so every row of inbound_pdus can be matched by the same number."""
    now_ = datetime.now(UTC)
    national = "5551230001"  # HANDSET without its country code, as some networks write it
    report = pdu.encode_status_report(national, 7, 0x00, submitted=now_, discharged=now_)
    [submit] = pdu.encode_submit(national, "sent from a phone")
    world.inbound.receive("a", report)
    world.inbound.receive("a", submit.pdu)
    world.inbound.receive("a", deliver("hello", sender=national)[0])
    rows = world.store.db.q("SELECT kind, sender FROM inbound_pdus ORDER BY id")
    assert [(r["kind"], r["sender"]) for r in rows] == [
        ("status-report", HANDSET),
        ("submit", HANDSET),
        ("deliver", HANDSET),
    ]
