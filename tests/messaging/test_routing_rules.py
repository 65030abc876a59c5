"""Routing rules that depend on what happened after a message was queued."""

from __future__ import annotations

import threading
import time

from gateway.messaging.outbound import PRIORITY_BULK
from gateway.modem import pdu

from .conftest import World, rate_limited

HANDSET = "+15551230001"


def test_a_stop_after_queueing_cancels_the_queued_message(world: World) -> None:
    acc = world.outbox.submit("promo", to=HANDSET, priority=PRIORITY_BULK)
    world.inbound.receive("a", pdu.encode_deliver(HANDSET, "STOP", reference=1)[0])
    world.up("a")
    assert world.wait_status(acc.message_id, {"failed", "sent"}) == "failed"
    assert "opted out" in world.store.messages.get(acc.message_id)["error"]
    confirmation = world.store.db.q1(
        "SELECT * FROM messages WHERE direction='out' AND created_by='keyword'"
    )
    assert world.wait_status(confirmation["id"], {"sent"}) == "sent"  # the STOP reply still goes
    sent = [pdu.decode(h).text for h in world.links["a"].sent]
    assert "promo" not in sent


def test_a_blocked_short_code_does_not_hide_messages_behind_it(world: World) -> None:
    # 250 messages for 55999, whose only modem (c) is down, then one for 55123.
    for i in range(250):
        world.outbox.submit(f"alert {i}", to=f"+1555020{i:04d}", short_code="55999")
    acc = world.outbox.submit("hello", to=HANDSET, short_code="55123")
    world.up("a")
    assert world.wait_status(acc.message_id, {"sent"}) == "sent"


def test_rate_limit_counts_parts_not_messages(tmp_path) -> None:
    w = World(tmp_path, adjust=rate_limited("c", per_minute=3))
    try:
        w.dispatcher.start()
        first = w.outbox.submit("x" * 200, to=HANDSET, short_code="55999")  # 2 parts
        second = w.outbox.submit("y" * 200, to="+15551230002", short_code="55999")  # 2 more
        w.up("c")
        w.wait_status(first.message_id, {"sent"})
        assert w.dispatcher.route_once() > 30  # 2 + 2 > 3: the second waits for the minute
        assert w.store.messages.get(second.message_id)["status"] == "queued"
    finally:
        w.close()


def test_a_message_longer_than_the_limit_still_goes_alone(tmp_path) -> None:
    w = World(tmp_path, adjust=rate_limited("c", per_minute=1))
    try:
        w.dispatcher.start()
        acc = w.outbox.submit("z" * 300, to=HANDSET, short_code="55999")  # 2 parts
        w.up("c")
        assert w.wait_status(acc.message_id, {"sent"}) == "sent"
    finally:
        w.close()


def test_a_dead_sender_thread_is_restarted_and_its_message_requeued(world: World) -> None:
    calls = {"n": 0}
    real = world.store.messages.defer

    def broken_defer(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk I/O error")
        return real(*args, **kwargs)

    world.store.messages.defer = broken_defer
    world.links["a"].fail_on[1] = RuntimeError("driver bug")
    acc = world.outbox.submit("hi", to=HANDSET)
    world.up("a")
    assert world.wait_status(acc.message_id, {"sent"}, timeout=10) == "sent"


def test_a_deactivation_after_queueing_fails_the_message_with_the_submit_rule(world: World) -> None:
    """The dispatcher asks the same rule as Outbox.submit (messaging/eligibility.py), so the
    reason it records is the one a person would have been shown when sending."""
    from gateway.messaging.eligibility import INACTIVE

    acc = world.outbox.submit("promo", to=HANDSET, priority=PRIORITY_BULK)
    world.services.profiles.deactivate(acc.profile_id, actor="test")
    world.up("a")
    assert world.wait_status(acc.message_id, {"failed", "sent"}) == "failed"
    assert INACTIVE in world.store.messages.get(acc.message_id)["error"]


class _HeldLink:
    """A modem link that holds each PDU until released, to look at the queue meanwhile."""

    def __init__(self) -> None:
        self.writing = threading.Event()
        self.release = threading.Event()
        self.sent: list[str] = []

    def send_pdu(self, pdu_hex: str, length: int) -> int:
        self.writing.set()
        assert self.release.wait(5)
        self.sent.append(pdu_hex)
        return len(self.sent) % 256


def test_the_next_message_is_claimed_and_encoded_while_the_modem_sends(world: World) -> None:
    """Issue 10: the next PDU is ready when the modem answers; only one waits behind a send."""
    link = _HeldLink()
    accs = [
        world.outbox.submit(f"alert {i}", to=f"+1555010300{i}", short_code="55999")
        for i in range(3)
    ]
    world.dispatcher.modem_up("c", link)
    assert link.writing.wait(5)
    # The routing pass after the claim of the first prepares the second.
    deadline = time.monotonic() + 5
    while world.store.messages.get(accs[1].message_id)["status"] != "sending":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert len(world.store.messages.parts(accs[1].message_id)) == 1  # encoded, stored
    assert world.store.messages.parts(accs[1].message_id)[0]["status"] == "pending"  # not written
    assert world.store.messages.get(accs[2].message_id)["status"] == "queued"
    link.release.set()
    for acc in accs:
        assert world.wait_status(acc.message_id, {"sent"}) == "sent"
    assert [pdu.decode(h).text for h in link.sent] == ["alert 0", "alert 1", "alert 2"]


def test_the_send_time_check_keeps_the_profile_rules_and_trusts_the_checked_number() -> None:
    """Issue 10: at send time the dispatcher asks the rule again with ``number_checked`` (the
    number passed it when the message was accepted; parsing it again was a fifth of the CPU
    per message): inactive and opted-out profiles are still refused, the number is not parsed."""
    from gateway.messaging.eligibility import INACTIVE, NOT_MOBILE, OPTED_OUT, refusal

    landline = {"status": "active", "subscribed": 1, "phone": "+442079460018"}  # London
    assert refusal(landline, True, "55123") == NOT_MOBILE
    assert refusal(landline, True, "55123", number_checked=True) is None
    inactive = {**landline, "status": "inactive"}
    assert refusal(inactive, True, "55123", number_checked=True) == INACTIVE
    opted_out = {**landline, "subscribed": 0}
    assert refusal(opted_out, False, "55123", number_checked=True) == OPTED_OUT
