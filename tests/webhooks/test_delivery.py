"""Webhook delivery end to end over a real HTTP receiver on loopback: down, then slow, then
up; every event arrives at least once, signed, with a stable event id; nothing is lost when
the gateway is rebuilt over the same store; redirects are not followed."""

from __future__ import annotations

import json
from collections import Counter

from gateway.messaging.subscriptions import OptSource
from gateway.messaging.webhooks import verify
from gateway.store.states import AgentState, MessageStatus
from gateway.store.times import iso, now

from .conftest import Attempts, Receiver, World

DELIVERY = """
webhook_delivery:
  connect_timeout_seconds: 0.5
  read_timeout_seconds: 0.3
  retry_initial_seconds: 0.05
  retry_max_seconds: 0.2
"""


def _traffic(w: World) -> None:
    """Known traffic on 55123: a text sent and delivered, an inbound text, an opt-out and
    an opt-in; and one inbound on 55999, which no webhook wants."""
    w.up("a")
    acc = w.outbox.submit("Your appointment is at 10:00", to="+12025550101", short_code="55123")
    w.wait_status(acc.message_id, {MessageStatus.SENT})
    part = w.store.messages.parts(acc.message_id)[0]
    w.store.messages.part_report(part["id"], 0, "delivered")
    profile, _ = w.store.profiles.get_or_create("+12025550102")
    for code in ("55123", "55999"):
        w.store.messages.add_inbound(
            profile_id=profile["id"],
            phone="+12025550102",
            short_code=code,
            modem_id="a",
            body="See you then",
            encoding=None,
            parts_total=1,
            status=MessageStatus.RECEIVED,
            kind="reply",
            received_at=iso(now()),
            agent_state=AgentState.OPEN,
        )
    w.services.subscriptions.unsubscribe(profile["id"], OptSource.by_keyword("55123", 1))
    w.services.subscriptions.subscribe(profile["id"], OptSource.by_hand("admin"))


def _pending_events(w: World, webhook_id: int) -> dict[str, str]:
    return {d.event_id: d.type for d in w.store.webhooks.next_pending(webhook_id, limit=500)}


def test_down_then_slow_then_up_every_event_arrives_signed_once_after_dedup(
    tmp_path, receiver: Receiver
) -> None:
    w = World(tmp_path, DELIVERY)
    attempts = Attempts()
    hooks = w.services.webhooks
    hooks.poster = attempts
    try:
        w.dispatcher.start()
        hook = hooks.add("55123", receiver.url, user="test")
        _traffic(w)
        expected = _pending_events(w, hook.id)
        assert Counter(expected.values()) == {
            "message.sent": 1,
            "message.delivered": 1,
            "message.received": 1,
            "profile.opted_out": 1,
            "profile.opted_in": 1,
        }
        hooks.start()
        # Down: refused connections, the webhook backs off, nothing is lost.
        attempts.wait(lambda o: sum(x.startswith("failed: cannot connect") for x in o) >= 2)
        assert _pending_events(w, hook.id) == expected
        # Slow: the receiver takes the body but answers after the read timeout.
        receiver.set("slow")
        attempts.wait(lambda o: sum("timed out" in x for x in o) >= 2)
        receiver.set("up")
        receiver.wait_for(lambda got: {h["X-Gateway-Event"] for h, _ in got} >= set(expected))
        attempts.wait(lambda o: bool(o) and o[-1] == "answered 200")
        hooks.stop()
        assert not w.store.webhooks.has_pending()
        assert w.store.webhooks.get(hook.id).delivered_count == len(expected)
    finally:
        hooks.stop()
        w.close()
    seen: dict[str, bytes] = {}
    for headers, body in receiver.got:
        assert verify(
            hook.secret, headers["X-Gateway-Timestamp"], body, headers["X-Gateway-Signature"]
        )
        event = json.loads(body)
        assert event["id"] == headers["X-Gateway-Event"]
        assert event["type"] == headers["X-Gateway-Event-Type"] == expected[event["id"]]
        # A copy (the slow answer's retry) is the very same event.
        assert seen.setdefault(event["id"], body) == body
    assert set(seen) == set(expected)  # after de-duplication: each event exactly once
    assert len(receiver.got) > len(seen)  # the slow phase did bring copies
    events = {json.loads(b)["type"]: json.loads(b)["data"] for b in seen.values()}
    assert events["message.delivered"]["parts"] == {
        "total": 1,
        "sent": 1,
        "delivered": 1,
        "failed": 0,
    }
    assert events["message.sent"]["parts"] == {"total": 1, "sent": 1, "delivered": 0, "failed": 0}
    assert events["message.received"]["text"] == "See you then"
    assert events["message.received"]["short_code"] == "55123"
    assert events["profile.opted_out"]["phone"] == "+12025550102"
    assert events["profile.opted_in"]["source"] == "agent"
