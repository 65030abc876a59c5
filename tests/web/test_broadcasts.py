"""The Broadcasts, Segments and Lists pages through the Flask test client: building a segment
with its count and sample, lists from CSV and from the Profiles table, the longest expansion
and preview, a test send, creating, the table, the page and pause/resume/cancel; CSRF on every
form, escaped text, replies marked with their broadcast in the Inbox."""

from __future__ import annotations

import io

from gateway.store.states import BroadcastState

from .conftest import AGENT, Web, csrf_token

HOSTILE = "<script>alert(1)</script>"


def _people(web: Web) -> list[int]:
    s = web.store
    return [
        s.profiles.add(
            "+15550700001", "Ann Lee", custom={"school": "Lincoln Elementary", "grade": "3"}
        ),
        s.profiles.add(
            "+15550700002", "Bob Ray", custom={"school": "Lincoln Elementary", "grade": "9"}
        ),
        s.profiles.add("+15550700003", HOSTILE, custom={"school": "Adams", "grade": "4"}),
        s.profiles.add(
            "+15550700004", "Opted Out", subscribed=False, custom={"school": "Lincoln Elementary"}
        ),
    ]


def _conditions(*rows: tuple[str, str, str], match: str = "all") -> dict:
    return {
        "field": [r[0] for r in rows],
        "op": [r[1] for r in rows],
        "value": [r[2] for r in rows],
        "match": match,
    }


def test_a_segment_is_counted_as_it_is_edited_and_saved(web: Web) -> None:
    _people(web)
    client = web.client(AGENT)
    token = csrf_token(client, "/segments/new")
    resp = client.post(
        "/segments/preview",
        data={
            **_conditions(("school", "=", "lincoln elementary"), ("grade", "in", "3,4,5")),
            "csrf_token": token,
        },
    )
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["count"] == 1 and [p["name"] for p in data["sample"]] == ["Ann Lee"]
    bad = client.post(
        "/segments/preview", data={**_conditions(("status", "=", "maybe")), "csrf_token": token}
    )
    assert bad.status_code == 200 and "active or inactive" in bad.get_json()["error"]
    assert bad.get_json()["ok"] is False
    resp = client.post(
        "/segments/new",
        data={
            "name": "Lincoln",
            **_conditions(("school", "=", "Lincoln Elementary")),
            "csrf_token": token,
        },
    )
    assert resp.status_code == 302
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'data-field="segment-count">3<' in page  # Ann, Bob and the opted-out one
    listing = client.get("/segments").get_data(as_text=True)
    assert "school = Lincoln Elementary" in listing
    again = client.post("/segments/new", data={"name": "lincoln", "csrf_token": token})
    assert again.status_code == 400 and "already exists" in again.get_data(as_text=True)
    assert client.post("/segments/new", data={"name": "x"}).status_code == 400  # no CSRF token


def test_lists_from_a_csv_file_and_from_the_profiles_table(web: Web) -> None:
    ids = _people(web)
    client = web.client()
    token = csrf_token(client, "/lists/new")
    csv = "name,phone\nAnn,+1 555 070 0001\nNobody,+15550799999\nBad,not a number\n"
    resp = client.post(
        "/lists/new",
        data={"name": "Trip", "file": (io.BytesIO(csv.encode()), "trip.csv"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "1 profile(s) in the list" in text
    assert "row 3: no profile has the number +15550799999" in text and "row 4" in text
    resp = client.post(
        "/lists/from-profiles",
        data={"list_name": "Trip", "profile_id": [str(ids[1]), str(ids[0])], "csrf_token": token},
    )
    assert resp.status_code == 302
    lst = web.store.audiences.list_named("trip")
    assert web.store.audiences.list_(lst["id"])["members"] == 2
    page = client.get(f"/lists/{lst['id']}").get_data(as_text=True)
    assert "Bob Ray" in page
    empty = client.post(
        "/lists/new",
        data={"name": "x", "file": (io.BytesIO(b"name\nAnn\n"), "x.csv"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert empty.status_code == 400 and "phone" in empty.get_data(as_text=True)


def test_compose_counts_the_longest_expansion_and_previews_the_first_profile(web: Web) -> None:
    _people(web)
    web.store.profiles.add("+15550700009", "Long", custom={"school": "S" * 200})
    client = web.client(AGENT)
    token = csrf_token(client, "/broadcasts/new")
    resp = client.post(
        "/broadcasts/longest",
        data={
            "audience": "conditions",
            **_conditions(("school", "starts with", "Lincoln")),
            "text": "Hi {first_name}, {school} is closed",
            "csrf_token": token,
        },
    )
    data = resp.get_json()
    assert data["count"] == 3 and data["parts"] == 1
    assert data["preview"] == {"name": "Ann Lee", "text": "Hi Ann, Lincoln Elementary is closed"}
    assert data["fields"]["school"] == ["Lincoln Elementary"]
    everyone = client.post(
        "/broadcasts/longest",
        data={"audience": "conditions", "text": "Hi {school}", "csrf_token": token},
    ).get_json()
    assert everyone["parts"] == 2 and everyone["count"] == 5
    unknown = client.post(
        "/broadcasts/longest",
        data={"audience": "conditions", "text": "Hi {shoe}", "csrf_token": token},
    )
    assert unknown.get_json()["ok"] is False and "{shoe}" in unknown.get_json()["error"]


def test_a_test_send_then_create_then_the_page_and_its_actions(web: Web) -> None:
    ids = _people(web)
    client = web.client(AGENT)
    token = csrf_token(client, "/broadcasts/new")
    form = {
        "name": "Snow day",
        "campaign": "Closures",
        "short_code": "55123",
        "audience": "conditions",
        **_conditions(("school", "=", "Lincoln Elementary")),
        "text": "Dear {first_name}: school is closed.",
        "when": "now",
        "timezone": "UTC",
        "test_to": "+15550700002",
        "csrf_token": token,
    }
    resp = client.post("/broadcasts/new", data={**form, "action": "test"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert "Test sent to +15550700002" in resp.get_data(as_text=True)
    test = web.store.messages.conversation(ids[1])[-1]
    assert test["body"] == "Dear Bob: school is closed." and test["broadcast_id"] is None
    resp = client.post("/broadcasts/new", data={**form, "action": "create", "request_key": "f1"})
    assert resp.status_code == 302
    bid = int(resp.headers["Location"].rsplit("/", 1)[1])
    again = client.post("/broadcasts/new", data={**form, "action": "create", "request_key": "f1"})
    assert again.headers["Location"].endswith(f"/broadcasts/{bid}")  # the same form: no second
    shown = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "This broadcast had already been created; it was not made again." in shown
    assert len(web.store.broadcasts.page()) == 1
    assert 'name="request_key" value="' in client.get("/broadcasts/new").get_data(as_text=True)
    b = web.store.broadcasts.get(bid)
    assert (b["recipients"], b["n_skipped"], b["campaign_name"]) == (2, 1, "Closures")
    page = client.get(f"/broadcasts/{bid}").get_data(as_text=True)
    assert 'data-count="recipients">2<' in page and "Snow day" in page
    assert "skipped (opted out)" in page
    table = client.get("/broadcasts").get_data(as_text=True)
    assert "Snow day" in table and "Closures" in table and "Dear {first_name}" in table
    assert client.post(f"/broadcasts/{bid}/pause", data={"csrf_token": token}).status_code == 302
    assert web.store.broadcasts.get(bid)["state"] == BroadcastState.PAUSED
    client.post(f"/broadcasts/{bid}/resume", data={"csrf_token": token})
    assert web.store.broadcasts.get(bid)["state"] == BroadcastState.SENDING
    client.post(f"/broadcasts/{bid}/cancel", data={"csrf_token": token})
    assert web.store.broadcasts.get(bid)["state"] == BroadcastState.CANCELLED
    resp = client.post(
        f"/broadcasts/{bid}/resume", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Broadcast 1 is cancelled, not paused." in resp.get_data(as_text=True)
    assert client.get(f"/broadcasts/{bid}/progress").get_json()["cancelled"] == 2
    assert client.post(f"/broadcasts/{bid}/pause").status_code == 400  # no CSRF token


def test_refusals_are_shown_by_the_form(web: Web) -> None:
    _people(web)
    client = web.client()
    token = csrf_token(client, "/broadcasts/new")
    base = {"short_code": "55123", "audience": "segment", "text": "x", "csrf_token": token}
    resp = client.post("/broadcasts/new", data=base)
    assert resp.status_code == 400 and "Choose a segment" in resp.get_data(as_text=True)
    resp = client.post(
        "/broadcasts/new",
        data={
            **base,
            "audience": "conditions",
            "when": "later",
            "at": "2001-01-01T08:00",
            "timezone": "UTC",
        },
    )
    assert resp.status_code == 400 and "is in the past." in resp.get_data(as_text=True)


def test_hostile_names_are_escaped(web: Web) -> None:
    _people(web)
    client = web.client()
    token = csrf_token(client, "/segments/new")
    resp = client.post(
        "/segments/new",
        data={"name": HOSTILE, **_conditions(("school", "=", "Adams")), "csrf_token": token},
    )
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert HOSTILE not in page and "&lt;script&gt;" in page


def test_a_reply_to_a_broadcast_is_marked_in_the_inbox_and_the_chat(web: Web) -> None:
    from datetime import UTC, datetime

    from gateway.store.broadcasts import BroadcastMessage
    from gateway.store.states import AgentState, MessageStatus

    ids = _people(web)
    bs = web.services.broadcasts
    bid = bs.create(
        "Poll <b>", short_code="55123", audience=bs.audience(conditions=[]), name="Poll <b>"
    )["id"]
    web.store.broadcasts.move(bid, BroadcastState.SENDING, BroadcastState.SCHEDULED)
    web.store.broadcasts.materialise(
        bid,
        [BroadcastMessage(ids[0], "+15550700001", "Poll", "gsm7", 1)],
        [],
        priority=10,
        expires_at="9999",
    )
    reply = web.store.messages.add_inbound(
        profile_id=ids[0],
        phone="+15550700001",
        short_code="55123",
        modem_id="a",
        body="Yes",
        encoding="gsm7",
        parts_total=1,
        status=MessageStatus.RECEIVED,
        kind="reply",
        received_at=datetime.now(UTC).isoformat(),
        agent_state=AgentState.OPEN,
    )
    client = web.client(AGENT)
    inbox = client.get("/inbox").get_data(as_text=True)
    assert f'href="/broadcasts/{bid}"' in inbox and "↩ Poll &lt;b&gt;" in inbox
    conv = client.get(f"/api/profiles/{ids[0]}/conversation").get_json()
    marks = {m["id"]: m["broadcast"] for m in conv["messages"]}
    assert marks[reply] == {"id": bid, "name": "Poll <b>"}


def test_the_profiles_table_ticks_profiles_into_a_list(web: Web) -> None:
    ids = _people(web)
    client = web.client(AGENT)
    page = client.get("/profiles").get_data(as_text=True)
    assert f'name="profile_id" value="{ids[0]}" form="add-to-list"' in page
    assert 'id="add-to-list" action="/lists/from-profiles"' in page
    token = csrf_token(client, "/profiles")
    resp = client.post(
        "/lists/from-profiles",
        data={
            "list_name": "Picked",
            "profile_id": [str(ids[2])],
            "next": "/profiles?q=x",
            "csrf_token": token,
        },
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/profiles?q=x")
    assert "Picked" in client.get("/profiles").get_data(as_text=True)  # offered next time
    evil = client.post(
        "/lists/from-profiles",
        data={
            "list_name": "Picked",
            "profile_id": [str(ids[1])],
            "next": "//evil.example",
            "csrf_token": token,
        },
    )
    assert evil.headers["Location"].endswith("/profiles")
    members = web.store.audiences.members(web.store.audiences.list_named("Picked")["id"])
    assert [m["id"] for m in members] == [ids[1], ids[2]]
