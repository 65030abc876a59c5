"""A text a person sends to a profile answers its waiting messages, whichever way it went: the
chat, Text This Profile, the web API or the CLI's control socket. A broadcast and the gateway's
own keyword replies answer nobody (issue 11: Agent View still showed a person waiting, and
"urgent", after five texts from Text This Profile)."""

from __future__ import annotations

import re

import pytest

from gateway.messaging.outbound import PRIORITY_BULK, answers_by_default
from gateway.modem.pdu import encode_deliver

from .conftest import AGENT, Web, csrf_token


def waiting(web: Web, phone: str, text: str = "URGENT: is the clinic open today?") -> int:
    """A profile with one open, urgent question from ``phone``; its id."""
    got = web.inbound.receive("a", encode_deliver(phone, text)[0])
    assert got.message_id is not None
    return int(web.store.messages.get(got.message_id)["profile_id"])


def queue(web: Web, client) -> list[int]:
    return [i["profile_id"] for i in client.get("/api/agent/queue").json["items"]]


def inbound_states(web: Web, pid: int) -> list[str]:
    rows = web.store.db.q(
        "SELECT agent_state FROM messages WHERE profile_id = ? AND direction = 'in'", (pid,)
    )
    return [r["agent_state"] for r in rows]


def test_text_this_profile_answers_the_waiting_person(web: Web) -> None:
    pid = waiting(web, "+15551230001")
    client = web.client(AGENT)
    assert queue(web, client) == [pid]
    assert client.get("/api/agent/queue").json["counts"]["urgent"] == 1
    page = client.get(f"/profiles/{pid}/text").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    resp = client.post(
        f"/profiles/{pid}/text",
        data={
            "text": "Yes, until six.",
            "short_code": "55123",
            "idempotency_key": key,
            "csrf_token": csrf_token(client, f"/profiles/{pid}/text"),
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert queue(web, client) == []
    assert client.get("/api/agent/queue").json["counts"] == {
        "all": 0,
        "questions": 0,
        "urgent": 0,
        "mine": 0,
    }
    assert inbound_states(web, pid) == ["answered"]


def test_a_text_claimed_in_agent_view_is_answered_by_text_this_profile_too(web: Web) -> None:
    pid = waiting(web, "+15551230001")
    web.services.desk.claim(pid, "agent")
    web.outbox.submit("We are open.", profile_id=pid, user="admin")
    assert inbound_states(web, pid) == ["answered"]


def test_a_send_through_the_control_socket_answers(web: Web) -> None:
    """The CLI's `gateway send` reaches Outbox.submit with the user it names (default "cli")."""
    pid = waiting(web, "+15551230001")
    web.outbox.submit("We are open.", to="+15551230001", user="cli")
    assert inbound_states(web, pid) == ["answered"]


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"user": "admin", "priority": PRIORITY_BULK}, "a broadcast answers nobody"),
        ({"user": "keyword"}, "the gateway's own reply"),
        ({}, "no person sent it"),
        ({"user": "admin", "answers": False}, "the caller said so"),
    ],
)
def test_texts_that_do_not_answer(web: Web, kwargs: dict, why: str) -> None:
    pid = waiting(web, "+15551230001")
    web.outbox.submit("Flu shots on Friday.", profile_id=pid, **kwargs)
    assert inbound_states(web, pid) == ["open"], why


def test_the_rule() -> None:
    assert answers_by_default("agent", 0) and answers_by_default("cli", 0)
    assert not answers_by_default(None, 0) and not answers_by_default("keyword", 0)
    assert not answers_by_default("agent", PRIORITY_BULK)
