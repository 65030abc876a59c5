"""A broadcast made through the REST API over the real daemon and the simulator: the school's
system adds its families and a segment through the API, one family opts out, and a broadcast to
the segment reaches exactly the other families' handsets, expanded; its counters, read through
GET, end at done with every message delivered and the opted-out one skipped."""

from __future__ import annotations

from gateway.store.states import BroadcastState
from gateway.web.app import create_app

from .harness import ALICE, BOB, SUPPORT, wait_until

CAROL = "+15551230003"
DAVE = "+15551230004"


def test_a_broadcast_created_through_the_api_reaches_its_audience_minus_the_opted_out(gateway):
    gateway.store.users.add("school", "a-long-password", role="agent")
    secret = gateway.store.api_tokens.create("school", "information system").secret
    client = create_app(gateway.services, TESTING=True).test_client()
    auth = {"Authorization": f"Bearer {secret}"}
    for number in (CAROL, DAVE):
        gateway.net.add_handset(number)

    ids = {}
    for phone, name, school in [
        (ALICE, "Alice Archer", "Lincoln"),
        (BOB, "Bob Baker", "Lincoln"),
        (CAROL, "Carol Cook", "Lincoln"),
        (DAVE, "Dave Dunn", "Adams"),
    ]:
        resp = client.post(
            "/api/v1/profiles",
            json={"phone": phone, "name": name, "custom": {"school": school}},
            headers=auth,
        )
        assert resp.status_code == 201, resp.json
        ids[phone] = resp.json["id"]
    # Carol's family opted out (recorded in the opt history as by hand).
    resp = client.patch(f"/api/v1/profiles/{ids[CAROL]}", json={"subscribed": False}, headers=auth)
    assert resp.status_code == 200 and resp.json["subscribed"] is False
    seg = client.post(
        "/api/v1/segments",
        json={"name": "Lincoln", "conditions": ["school = Lincoln"]},
        headers=auth,
    )
    assert seg.status_code == 201 and seg.json["count"] == 3, seg.json

    body = {
        "text": "Hi {first_name}: school closes at noon.",
        "short_code": SUPPORT,
        "audience": {"segment": "Lincoln"},
        "name": "Early closing",
        "idempotency_key": "closing-2026-12-04",
    }
    resp = client.post("/api/v1/broadcasts", json=body, headers=auth)
    assert resp.status_code == 201, resp.json
    bid = resp.json["id"]
    assert (resp.json["recipients"], resp.json["skipped"]) == (2, 1)
    # The system timed out and sends it again: the same broadcast, nothing sent twice.
    again = client.post("/api/v1/broadcasts", json=body, headers=auth)
    assert again.status_code == 200 and again.json["id"] == bid

    # Waits on the daemon's own view (polling GET on every event would meet the token's rate
    # limit, as a real client polling that fast would); then reads the counters through GET.
    def finished() -> bool:
        b = gateway.services.broadcasts.status(bid)
        return b["state"] == BroadcastState.DONE and b["delivered"] == 2

    wait_until(gateway.sub, finished, 20, "broadcast done and delivered")
    got = client.get(f"/api/v1/broadcasts/{bid}", headers=auth)
    assert got.status_code == 200
    done = got.json
    assert done["state"] == BroadcastState.DONE
    assert (done["recipients"], done["sent"], done["failed"], done["skipped"]) == (2, 2, 0, 1)
    assert done["queued"] == 0 and done["finished_at"]
    alice = gateway.net.handset(ALICE).wait_for_message(5)
    bob = gateway.net.handset(BOB).wait_for_message(5)
    assert alice.text == "Hi Alice: school closes at noon."
    assert bob.text == "Hi Bob: school closes at noon."
    assert gateway.net.handset(CAROL).inbox == [] and gateway.net.handset(DAVE).inbox == []
    # One message each: the retry of the create sent nothing more.
    assert len(gateway.net.handset(ALICE).inbox) == len(gateway.net.handset(BOB).inbox) == 1
    # Done: there is nothing left to pause.
    ended = client.post(f"/api/v1/broadcasts/{bid}/pause", headers=auth)
    assert ended.status_code == 409 and ended.json["error"]["code"] == "wrong_state"
