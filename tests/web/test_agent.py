"""The Agent View: the queue per conversation, taking and picking (never two agents on one),
returning, "no response needed", answering, filters, and the page itself."""

from __future__ import annotations

import threading

import pytest

from gateway.messaging.agent import AgentDesk, ClaimedByOther, UrgentWords, is_question
from gateway.modem.pdu import encode_deliver

from .conftest import ADMIN, AGENT, Web, csrf_token

XSS = "<script>alert(1)</script> <img src=x onerror=alert(1)>"


def receive(web: Web, phone: str, text: str) -> int:
    got = web.inbound.receive("a", encode_deliver(phone, text)[0])
    assert got.message_id is not None
    return got.message_id


def profile_of(web: Web, message_id: int) -> int:
    return int(web.store.messages.get(message_id)["profile_id"])


def post(client, url: str, body: dict | None = None, *, token: str | None = None):
    return client.post(url, json=body or {}, headers={"X-CSRFToken": token} if token else {})


@pytest.fixture
def modems_up(web: Web, monkeypatch) -> None:
    monkeypatch.setattr(web.dispatcher, "short_code_up", lambda code: True)


def second_agent(web: Web):
    web.store.users.add("agent2", "agent2-password", role="agent")
    return web.client(("agent2", "agent2-password"))


# -- classification ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("Are you open today", True),
        ("  how do I stop these", True),
        ("ok?", True),
        ("Doesn't matter", False),  # "does" is not the first word here
        ("Island trip booked", False),  # "is" only as a whole word
        ("thanks", False),
    ],
)
def test_questions(text: str, question: bool) -> None:
    assert is_question(text) is question


def test_urgent_words_are_whole_words_any_case() -> None:
    words = UrgentWords(["urgent", "asap", "911"])
    assert words.found("URGENT! call me asap") == ["urgent", "asap"]
    assert words.found("not urgently, and no asap-ish") == ["asap"]
    assert words.found("call 911") == ["911"] and words.found("9110") == []
    assert UrgentWords([]).found("urgent") == []


# -- the queue -----------------------------------------------------------------------------


def test_queue_is_per_conversation_oldest_first(web: Web) -> None:
    a1 = receive(web, "+15551230001", "first")
    b1 = receive(web, "+15551230002", "second")
    a2 = receive(web, "+15551230001", "third")
    receive(web, "+15551230003", "STOP")  # a keyword is not for the team
    items = web.client(AGENT).get("/api/agent/queue").json["items"]
    assert [i["profile_id"] for i in items] == [profile_of(web, a1), profile_of(web, b1)]
    assert [m["id"] for m in items[0]["messages"]] == [a1, a2]


def test_filters(web: Web) -> None:
    receive(web, "+15551230001", "Is the clinic open?")
    receive(web, "+15551230002", "EMERGENCY at home")
    receive(web, "+15551230003", "thanks")
    client = web.client(AGENT)
    data = client.get("/api/agent/queue").json
    assert data["counts"] == {"all": 3, "questions": 1, "urgent": 1, "mine": 0}
    urgent = client.get("/api/agent/queue?show=urgent").json["items"]
    assert [i["phone"] for i in urgent] == ["+15551230002"] and urgent[0]["urgent"] == ["emergency"]
    questions = client.get("/api/agent/queue?show=questions").json["items"]
    assert [i["phone"] for i in questions] == ["+15551230001"]
    post(client, "/api/agent/take-next", token=csrf_token(client))
    mine = client.get("/api/agent/queue?show=mine").json["items"]
    assert [i["phone"] for i in mine] == ["+15551230001"]
    assert client.get("/api/agent/queue?show=bogus").json["field"] == "show"
    assert client.get("/agent?show=bogus").status_code == 400


def test_take_next_gives_each_agent_a_different_conversation(web: Web) -> None:
    a = receive(web, "+15551230001", "one")
    b = receive(web, "+15551230002", "two")
    first, second = web.client(AGENT), second_agent(web)
    got1 = post(first, "/api/agent/take-next", token=csrf_token(first)).json["item"]
    got2 = post(second, "/api/agent/take-next", token=csrf_token(second)).json["item"]
    assert got1["profile_id"] == profile_of(web, a) and got1["claimed_by"] == "agent"
    assert got2["profile_id"] == profile_of(web, b) and got2["claimed_by"] == "agent2"
    assert post(first, "/api/agent/take-next", token=csrf_token(first)).json["item"] is None


def test_two_agents_racing_never_take_the_same_conversation(web: Web) -> None:
    for n in range(12):
        receive(web, f"+1555123{n:04d}", f"hello {n}")
    desks = [AgentDesk(web.config, web.store, web.events) for _ in range(2)]
    taken: dict[str, list[int]] = {"agent": [], "agent2": []}
    start = threading.Barrier(2)

    def work(desk: AgentDesk, user: str) -> None:
        start.wait(timeout=5)
        while (item := desk.take_next(user)) is not None:
            taken[user].append(item.profile_id)

    threads = [
        threading.Thread(target=work, args=(desk, user))
        for desk, user in zip(desks, taken, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not set(taken["agent"]) & set(taken["agent2"])
    assert len(taken["agent"]) + len(taken["agent2"]) == 12
    holders = web.store.db.q(
        "SELECT profile_id, COUNT(DISTINCT claimed_by) AS n FROM messages"
        " WHERE agent_state = 'claimed' GROUP BY profile_id"
    )
    assert len(holders) == 12 and all(h["n"] == 1 for h in holders)


def test_picking_a_conversation_someone_holds_is_refused(web: Web) -> None:
    pid = profile_of(web, receive(web, "+15551230001", "hi"))
    first, second = web.client(AGENT), second_agent(web)
    resp = post(first, f"/api/agent/profiles/{pid}/claim", token=csrf_token(first))
    assert resp.status_code == 200 and resp.json["item"]["state"] == "claimed"
    resp = post(second, f"/api/agent/profiles/{pid}/claim", token=csrf_token(second))
    assert resp.status_code == 409 and resp.json["claimed_by"] == "agent"
    assert resp.json["error"] == "This conversation is being answered by agent."
    # A message that arrives meanwhile joins the holder's conversation, not the queue's.
    receive(web, "+15551230001", "still there?")
    assert post(second, "/api/agent/take-next", token=csrf_token(second)).json["item"] is None
    with pytest.raises(ClaimedByOther):
        AgentDesk(web.config, web.store, web.events).claim(pid, "agent2")


def test_return_to_queue(web: Web) -> None:
    pid = profile_of(web, receive(web, "+15551230001", "hi"))
    owner, other, admin = web.client(AGENT), second_agent(web), web.client(ADMIN)
    post(owner, f"/api/agent/profiles/{pid}/claim", token=csrf_token(owner))
    sub = web.events.subscribe()
    resp = post(other, f"/api/agent/profiles/{pid}/release", token=csrf_token(other))
    assert resp.status_code == 409
    forced = post(
        other, f"/api/agent/profiles/{pid}/release", {"force": True}, token=csrf_token(other)
    )
    assert forced.status_code == 403  # only an admin may take over
    resp = post(owner, f"/api/agent/profiles/{pid}/release", token=csrf_token(owner))
    assert resp.status_code == 200 and resp.json["returned"] == 1
    assert web.store.db.value("SELECT agent_state FROM messages WHERE profile_id = ?", (pid,)) == (
        "open"
    )
    event = sub.get(timeout=1)
    assert event.kind == "agent.changed" and event.data["state"] == "open"
    resp = post(owner, f"/api/agent/profiles/{pid}/release", token=csrf_token(owner))
    assert resp.status_code == 409  # nothing claimed any more
    post(owner, f"/api/agent/profiles/{pid}/claim", token=csrf_token(owner))
    resp = post(
        admin, f"/api/agent/profiles/{pid}/release", {"force": True}, token=csrf_token(admin)
    )
    assert resp.status_code == 200


def test_no_response_needed(web: Web) -> None:
    pid = profile_of(web, receive(web, "+15551230001", "ok thanks"))
    client = web.client(AGENT)
    resp = post(client, f"/api/agent/profiles/{pid}/no-response", token=csrf_token(client))
    assert resp.status_code == 200 and resp.json["closed"] == 1
    assert client.get("/api/agent/queue").json["items"] == []
    assert web.store.db.value("SELECT agent_state FROM messages WHERE profile_id = ?", (pid,)) == (
        "no_response"
    )
    again = post(client, f"/api/agent/profiles/{pid}/no-response", token=csrf_token(client))
    assert again.status_code == 409


def test_answering_takes_the_conversation_out_of_the_queue(web: Web, modems_up) -> None:
    pid = profile_of(web, receive(web, "+15551230001", "when do you open?"))
    client = web.client(AGENT)
    token = csrf_token(client)
    post(client, "/api/agent/take-next", token=token)
    resp = post(client, f"/api/profiles/{pid}/messages", {"text": "At nine."}, token=token)
    assert resp.status_code == 201
    assert client.get("/api/agent/queue").json["items"] == []
    assert web.store.db.value(
        "SELECT agent_state FROM messages WHERE profile_id = ? AND direction = 'in'", (pid,)
    ) == ("answered")


def test_bad_requests(web: Web) -> None:
    pid = profile_of(web, receive(web, "+15551230001", "hi"))
    anon = web.client(None)
    assert anon.get("/agent").status_code == 302
    assert anon.get("/api/agent/queue").status_code == 401
    client = web.client(AGENT)
    for url in (
        "/api/agent/take-next",
        f"/api/agent/profiles/{pid}/claim",
        f"/api/agent/profiles/{pid}/release",
        f"/api/agent/profiles/{pid}/no-response",
    ):
        assert post(client, url).status_code == 400, url  # no CSRF header
    assert web.store.db.value("SELECT agent_state FROM messages") == "open"
    resp = post(client, "/api/agent/profiles/999/claim", token=csrf_token(client))
    assert resp.status_code == 404 and resp.is_json


def test_page_lists_the_queue_escaped_with_canned_responses(web: Web) -> None:
    receive(web, "+15551230001", XSS)
    html = web.client(AGENT).get("/agent").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="canned" data-text="Thanks, we got your message."' in html
    assert 'id="take-next"' in html and "1 waiting" in html
    assert 'data-count="all">1<' in html


def test_the_opted_out_mark_is_about_the_short_code_the_answer_goes_from(web: Web) -> None:
    """Issue 11: a profile that sent STOP to another short code is not shown opted out in the
    queue of a conversation on 55123; one opted out of 55123 itself is."""
    elsewhere = profile_of(web, receive(web, "+12025550171", "Is the clinic open?"))
    here = profile_of(web, receive(web, "+12025550172", "Can I move my visit?"))
    web.store.subscriptions.set_one(elsewhere, "55999", False)
    web.store.subscriptions.set_one(here, "55123", False)
    shown = {i.profile_id: i.to_json()["subscribed"] for i in web.services.desk.queue()}
    assert shown[elsewhere] is True
    assert shown[here] is False
