"""Webhooks from the running daemon over the simulator: a text sent to a handset brings its
"sent" and "delivered" events to a receiver on loopback, and a handset's text an "inbound"
one, each signed with the webhook's secret."""

from __future__ import annotations

import json

from webhooks.receiver import Receiver

from gateway.messaging.webhooks import verify

from .harness import ALICE, NUM_A, SUPPORT


def _by_type(receiver: Receiver) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for event in receiver.events():
        out.setdefault(event["type"], []).append(event)
    return out


def test_sent_delivered_and_inbound_events_reach_the_receiver(gateway) -> None:
    receiver = Receiver()
    try:
        receiver.set("up")
        hook = gateway.services.webhooks.add(SUPPORT, receiver.url, user="test")
        acc = gateway.services.outbox.submit("Your table is ready", to=ALICE, short_code=SUPPORT)
        alice = gateway.net.handset(ALICE)
        assert alice.wait_for_message(timeout=5).text == "Your table is ready"
        gateway.wait_status(acc.message_id, "delivered")
        receiver.wait_for(
            lambda got: (
                {"message.sent", "message.delivered"} <= {json.loads(b)["type"] for _, b in got}
            )
        )
        alice.send(to=NUM_A, text="On my way")
        receiver.wait_for(
            lambda got: any(json.loads(b)["type"] == "message.received" for _, b in got)
        )
        for headers, body in receiver.got:
            signature = headers["X-Gateway-Signature"]
            assert verify(hook.secret, headers["X-Gateway-Timestamp"], body, signature)
        events = _by_type(receiver)
        [sent], [delivered] = events["message.sent"], events["message.delivered"]
        assert sent["data"]["message_id"] == delivered["data"]["message_id"] == acc.message_id
        assert delivered["data"]["to"] == ALICE and delivered["data"]["status"] == "delivered"
        assert delivered["data"]["parts"]["delivered"] == delivered["data"]["parts"]["total"]
        [inbound] = events["message.received"]
        assert inbound["data"]["text"] == "On my way" and inbound["data"]["from"] == ALICE
        assert inbound["data"]["short_code"] == SUPPORT
    finally:
        receiver.close()


def test_events_waiting_when_the_daemon_stops_are_delivered_after_it_starts(
    start_gateway,
) -> None:
    receiver = Receiver()  # down: nothing listens on its port yet
    try:
        gw = start_gateway()
        gw.wait_up("a", "b", "c")
        hook = gw.services.webhooks.add(SUPPORT, receiver.url, ["status"], user="test")
        acc = gw.services.outbox.submit("Before the restart", to=ALICE, short_code=SUPPORT)
        gw.wait_status(acc.message_id, "delivered")
        waiting = {d.event_id for d in gw.store.webhooks.next_pending(hook.id)}
        assert len(waiting) == 2  # sent and delivered, refused so far
        gw.stop()

        receiver.set("up")
        again = start_gateway()  # the same configuration and data directory
        receiver.wait_for(lambda got: {h["X-Gateway-Event"] for h, _ in got} >= waiting)
        assert {json.loads(b)["data"]["message_id"] for _, b in receiver.got} == {acc.message_id}
        for headers, body in receiver.got:
            signature = headers["X-Gateway-Signature"]
            assert verify(hook.secret, headers["X-Gateway-Timestamp"], body, signature)
        again.stop()
    finally:
        receiver.close()
