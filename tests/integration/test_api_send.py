"""A text sent through the REST API over the real daemon and the simulator: it reaches the
handset, its status (sent, then delivered) and its parts are visible through GET, and the
status changes arrive at the short code's webhook, signed."""

from __future__ import annotations

import json

from webhooks.receiver import Receiver

from gateway.messaging.webhooks import verify
from gateway.web.app import create_app

from .harness import ALICE, NUM_A, SUPPORT, wait_until


def test_a_text_sent_through_the_api_arrives_and_its_status_shows(gateway):
    receiver = Receiver()
    receiver.set("up")
    try:
        hook = gateway.services.webhooks.add(SUPPORT, receiver.url, ["status"], user="test")
        _send_and_follow(gateway)
        mid = gateway.store.db.value("SELECT MAX(id) FROM messages WHERE direction = 'out'")
        receiver.wait_for(
            lambda got: any(
                json.loads(b)["type"] == "message.delivered"
                and json.loads(b)["data"]["message_id"] == mid
                for _, b in got
            )
        )
        types: dict[str, str] = {}  # by event id: at least once, so a repeat counts once
        for headers, body in receiver.got:
            assert verify(hook.secret, headers["X-Gateway-Timestamp"], body,
                          headers["X-Gateway-Signature"])  # fmt: skip
            event = json.loads(body)
            if event["data"]["message_id"] == mid:
                types[event["id"]] = event["type"]
        assert list(types.values()) == ["message.sent", "message.delivered"]
    finally:
        receiver.close()


def _send_and_follow(gateway) -> None:
    gateway.store.users.add("clinic", "a-long-password", role="agent")
    secret = gateway.store.api_tokens.create("clinic", "bookings").secret
    client = create_app(gateway.services, TESTING=True).test_client()
    auth = {"Authorization": f"Bearer {secret}"}
    alice = gateway.net.handset(ALICE)
    alice.set_reachable(False)  # the network holds it: 'sent' shows before 'delivered'

    resp = client.post(
        "/api/v1/messages",
        json={
            "to": ALICE,
            "text": "Reminder: dentist at 9:00",
            "short_code": SUPPORT,
            "idempotency_key": "booking-118",
        },
        headers=auth,
    )
    assert resp.status_code == 201, resp.json
    mid = resp.json["id"]

    def status() -> dict:
        got = client.get(f"/api/v1/messages/{mid}", headers=auth)
        assert got.status_code == 200
        return got.json

    # Waited on in the store (each event would be a GET, and the token's rate limit is 20 at
    # once), then read once through the API.
    def stored() -> str:
        return gateway.store.messages.get(mid)["status"]

    wait_until(gateway.sub, lambda: stored() == "sent", what="sent")
    sent = status()
    assert sent["status"] == "sent"
    assert [(p["seq"], p["status"], p["modem_id"]) for p in sent["parts"]] == [(1, "sent", "a")]
    assert sent["parts"][0]["sent_at"] and sent["modem_id"] == "a"

    alice.set_reachable(True)
    msg = alice.wait_for_message(timeout=5)
    assert (msg.text, msg.sender) == ("Reminder: dentist at 9:00", NUM_A)
    wait_until(gateway.sub, lambda: stored() == "delivered", what="delivered")
    done = status()
    assert done["status"] == "delivered"
    assert [p["status"] for p in done["parts"]] == ["delivered"]
    assert done["parts"][0]["reported_at"]

    # A retry of the same request (the booking system timed out) sends nothing more.
    again = client.post(
        "/api/v1/messages",
        json={
            "to": ALICE,
            "text": "Reminder: dentist at 9:00",
            "short_code": SUPPORT,
            "idempotency_key": "booking-118",
        },
        headers=auth,
    )
    assert again.status_code == 200 and again.json["id"] == mid
    listed = client.get("/api/v1/messages?direction=out&status=delivered", headers=auth).json
    assert [m["id"] for m in listed["data"]] == [mid]
