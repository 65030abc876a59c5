"""The Inbox: typed inbound messages newest first, filters, pages, live rows, and opting a
profile out or back in by hand."""

from __future__ import annotations

import json
import re

import pytest

from gateway.modem.pdu import encode_deliver
from gateway.web.views import inbox

from .conftest import AGENT, Web, csrf_token

XSS = "<script>alert(1)</script> <img src=x onerror=alert(1)>"


def receive(web: Web, phone: str, text: str) -> int:
    got = web.inbound.receive("a", encode_deliver(phone, text)[0])
    assert got.message_id is not None
    return got.message_id


@pytest.fixture
def modems_up(web: Web, monkeypatch) -> None:
    monkeypatch.setattr(web.dispatcher, "short_code_up", lambda code: True)


def test_needs_a_login(web: Web) -> None:
    anon = web.client(None)
    assert anon.get("/inbox").status_code == 302
    assert anon.get("/api/inbox").status_code == 401
    pid = web.store.profiles.add("+15551230001")
    resp = anon.post(
        f"/inbox/profiles/{pid}/opt-out", data={"csrf_token": csrf_token(anon, "/login")}
    )
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert web.store.profiles.get(pid)["subscribed"] == 1


def test_messages_are_typed_newest_first_and_escaped(web: Web) -> None:
    first = receive(web, "+15551230001", "hello")  # a number never seen before
    second = receive(web, "+15551230001", XSS)
    stop = receive(web, "+15551230002", "STOP")
    html = web.client(AGENT).get("/inbox").get_data(as_text=True)
    table = html[html.index('id="inbox-rows"') : html.index("</tbody>")]
    assert table.index(f'data-id="{stop}"') < table.index(f'data-id="{second}"')
    assert table.index(f'data-id="{second}"') < table.index(f'data-id="{first}"')
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;" in html
    assert "New number" in table and "Reply" in table and "Opt-out" in table
    assert "<script>" not in html.replace('<script src="', "")  # no inline script at all


def test_filter_by_type_and_pages(web: Web, monkeypatch) -> None:
    monkeypatch.setattr(inbox, "PER_PAGE", 2)
    ids = [receive(web, "+15551230001", f"message {n}") for n in range(3)]
    help_id = receive(web, "+15551230002", "HELP")
    client = web.client(AGENT)
    html = client.get("/inbox?kind=help").get_data(as_text=True)
    assert f'data-id="{help_id}"' in html and f'data-id="{ids[0]}"' not in html
    page1 = client.get("/inbox").get_data(as_text=True)
    older = re.search(r'href="(/inbox\?before=\d+)" rel="next"', page1).group(1)
    page2 = client.get(older).get_data(as_text=True)
    assert 'rel="next"' not in page2 and 'rel="prev"' in page2
    assert f'data-id="{ids[1]}"' in page2 and f'data-id="{ids[0]}"' in page2
    assert f'data-id="{help_id}"' not in page2
    resp = client.get("/inbox?kind=nonsense")
    assert resp.status_code == 400 and "kind" in resp.get_data(as_text=True)


def test_the_new_message_event_carries_its_row(web: Web) -> None:
    """Open Inbox tabs show a new message from its event, without each asking the server."""
    with web.events.subscribe() as sub:
        mid = receive(web, "+15551230001", XSS)
        event = sub.get(timeout=5)
        while event is not None and event.kind != "message.new":
            event = sub.get(timeout=5)
    assert event is not None
    profile = web.store.profiles.by_phone("+15551230001")
    stored = web.store.messages.get(mid)
    assert event.data["id"] == mid and event.data["body"] == XSS
    assert event.data["created_at"] == stored["created_at"] and event.data["kind"] == "unknown"
    assert event.data["profile"] == {
        "id": profile["id"],
        "name": "",
        "phone": "+15551230001",
        "status": "active",
        "subscribed": True,
        "refusal": None,
    }
    page = web.client(AGENT).get("/inbox").get_data(as_text=True)
    labels = re.search(r'data-kind-labels="([^"]*)"', page).group(1)  # for rows built live
    assert "&#34;unknown&#34;: &#34;New number&#34;" in labels


def test_rows_json_for_live_updates(web: Web) -> None:
    first = receive(web, "+15551230001", "one")
    second = receive(web, "+15551230001", XSS)
    client = web.client(AGENT)
    data = client.get(f"/api/inbox?after={first}").json
    assert [r["message"]["id"] for r in data["rows"]] == [second]
    assert data["rows"][0]["message"]["body"] == XSS and data["complete"] is True
    assert data["rows"][0]["kind_label"] == "Reply"
    assert client.get("/api/inbox?after=x").json["field"] == "after"
    assert client.get("/api/inbox?kind=bad").json["field"] == "kind"


def test_rows_json_says_when_a_page_is_not_enough(web: Web, monkeypatch) -> None:
    monkeypatch.setattr(inbox, "PER_PAGE", 2)
    for n in range(3):
        receive(web, "+15551230001", f"message {n}")
    assert web.client(AGENT).get("/api/inbox?after=0").json["complete"] is False


def test_chat_button_only_where_chat_is_available(web: Web, modems_up) -> None:
    receive(web, "+15551230001", "hi")
    receive(web, "+15551230002", "STOP ALL")  # a STOP to 55123 alone leaves 55999 to chat from
    html = web.client(AGENT).get("/inbox").get_data(as_text=True)
    rows = html[html.index('id="inbox-rows"') : html.index("</tbody>")]
    buttons = [line for line in rows.splitlines() if 'class="chat-open"' in line]
    shown = [b for b in buttons if " hidden" not in b]
    assert len(buttons) == 2 and len(shown) == 1
    assert 'data-phone="+15551230001"' in shown[0]


def test_opt_out_by_hand_sends_nothing_and_is_recorded(web: Web, modems_up) -> None:
    mid = receive(web, "+15551230001", "hi")
    pid = web.store.messages.get(mid)["profile_id"]
    sub = web.events.subscribe()
    client = web.client(AGENT)
    resp = client.post(
        f"/inbox/profiles/{pid}/opt-out",
        data={"csrf_token": csrf_token(client, "/inbox"), "next": "/inbox?kind=reply"},
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/inbox?kind=reply")
    assert web.store.profiles.get(pid)["subscribed"] == 0
    event = web.store.opt_events.last(pid)
    assert (event["action"], event["source"], event["actor"]) == ("opt_out", "agent", "agent")
    audit = web.store.audit.recent(1)[0]
    assert audit["action"] == "profile.opt_out" and json.loads(audit["detail"])["profile_id"] == pid
    # No STOP confirmation: the team opted them out, the handset did not ask.
    assert web.store.db.value("SELECT COUNT(*) FROM messages WHERE direction = 'out'") == 0
    got = sub.get(timeout=1)
    assert got.kind == "profile.changed" and got.data == {
        "id": pid,
        "subscribed": False,
        "short_code": None,
    }
    page = client.get("/inbox?kind=reply").get_data(as_text=True)
    assert "is opted out. No message was sent to them." in page


def test_resubscribe_subscribes_and_leaves_the_status_alone(web: Web) -> None:
    # It used to be called "reactivate" and also made the profile active, unlike the profile
    # page's Re-subscribe: now both only subscribe, and Reactivate is its own button.
    pid = web.store.profiles.add("+15551230001", "Ann", subscribed=False, status="inactive")
    client = web.client(AGENT)
    resp = client.post(
        f"/inbox/profiles/{pid}/resubscribe", data={"csrf_token": csrf_token(client, "/inbox")}
    )
    assert resp.status_code == 302
    profile = web.store.profiles.get(pid)
    assert profile["subscribed"] == 1 and profile["status"] == "inactive"
    assert web.store.opt_events.last(pid)["action"] == "opt_in"
    assert web.store.opt_events.last(pid)["source"] == "agent"
    assert "Ann is subscribed again." in client.get("/inbox").get_data(as_text=True)


def test_reactivate_activates_and_leaves_the_subscription_alone(web: Web) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann", subscribed=False, status="inactive")
    client = web.client(AGENT)
    token = csrf_token(client, "/inbox")
    resp = client.post(f"/inbox/profiles/{pid}/activate", data={"csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/inbox")
    profile = web.store.profiles.get(pid)
    assert profile["status"] == "active" and profile["subscribed"] == 0
    assert web.store.opt_events.last(pid) is None
    assert web.store.audit.recent(1)[0]["action"] == "profile.reactivate"
    assert "Ann is active again." in client.get("/inbox").get_data(as_text=True)
    missing = client.post("/inbox/profiles/999/activate", data={"csrf_token": token})
    assert missing.status_code == 404
    # The old address, whose meaning changed, is gone rather than doing the other thing.
    gone = client.post(f"/inbox/profiles/{pid}/reactivate", data={"csrf_token": token})
    assert gone.status_code in (404, 405)


def test_each_row_offers_the_buttons_its_sender_needs(web: Web) -> None:
    both = web.store.profiles.add("+15551230001", "Both", subscribed=False, status="inactive")
    fine = web.store.profiles.add("+15551230002", "Fine")
    for phone in ("+15551230001", "+15551230002"):
        receive(web, phone, "hello")
    page = web.client(AGENT).get("/inbox").get_data(as_text=True)
    rows = {
        int(m.group(1)): m.group(0)
        for m in re.finditer(r'<tr data-id="\d+" data-profile-id="(\d+)"[^>]*>.*?</tr>', page, re.S)
    }

    def shown(row: str, cls: str) -> bool:
        tag = re.search(rf'<form[^>]*class="inline {cls}"[^>]*>', row)
        assert tag is not None, cls
        return " hidden" not in tag.group(0)

    assert shown(rows[both], "js-resubscribe") and shown(rows[both], "js-activate")
    assert not shown(rows[both], "js-opt-out")
    assert not shown(rows[fine], "js-resubscribe") and not shown(rows[fine], "js-activate")
    assert shown(rows[fine], "js-opt-out")


def test_opt_out_bad_requests_change_nothing(web: Web) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann")
    client = web.client(AGENT)
    assert client.post(f"/inbox/profiles/{pid}/opt-out").status_code == 400  # no CSRF token
    assert web.store.profiles.get(pid)["subscribed"] == 1
    token = csrf_token(client, "/inbox")
    assert client.post("/inbox/profiles/999/opt-out", data={"csrf_token": token}).status_code == 404
    resp = client.post(
        f"/inbox/profiles/{pid}/resubscribe",
        data={"csrf_token": token, "next": "https://evil.example/"},
    )
    assert resp.headers["Location"].endswith("/inbox")  # never elsewhere
    assert web.store.opt_events.last(pid) is None  # already subscribed: nothing recorded
