"""The Profiles area over the Flask test client: list, search, sort, pages, add, edit,
(de)activate, opt out by hand, import/export, a profile's page and Text This Profile."""

from __future__ import annotations

import csv
import io
import re

import pytest
from markupsafe import escape

from gateway.modem.pdu import encode_deliver
from gateway.store.profiles import custom_fields

from .conftest import AGENT, Web, csrf_token

XSS_NAME = '<script>alert("n")</script><img src=x onerror=alert(1)>'
XSS_BODY = "<img src=x onerror=alert(2)> <script>alert(3)</script>"


@pytest.fixture
def agent(web: Web):
    return web.client(AGENT)


def add(web: Web, phone: str, name: str = "", **kw) -> int:
    return web.store.profiles.add(phone, name, **kw)


def html(resp) -> str:
    return resp.get_data(as_text=True)


def post(client, url: str, data: dict | None = None, page: str = "/profiles", **kw):
    """POST like the pages do: with the CSRF token of ``page``."""
    return client.post(url, data={"csrf_token": csrf_token(client, page), **(data or {})}, **kw)


def chat_buttons(page: str) -> set[str]:
    return set(re.findall(r'class="chat-open[^"]*" data-profile-id="(\d+)"', page))


def snapshot(web: Web) -> list[tuple]:
    return [
        (r["id"], r["name"], r["phone"], r["status"], r["subscribed"], r["custom"])
        for r in web.store.profiles.all()
    ]


def idempotency_key(page: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)


# -- access --------------------------------------------------------------------------------

GETS = [
    "/profiles",
    "/profiles/new",
    "/profiles/import",
    "/profiles/export.csv",
    "/profiles/1",
    "/profiles/1/edit",
    "/profiles/1/text",
]
POSTS = [
    "/profiles/new",
    "/profiles/import",
    "/profiles/1/edit",
    "/profiles/1/deactivate",
    "/profiles/1/activate",
    "/profiles/1/opt-out",
    "/profiles/1/resubscribe",
    "/profiles/1/text",
]


def test_every_route_refuses_anonymous_access(web: Web) -> None:
    add(web, "+15551230001", "Ann")
    anon = web.client(None)
    for url in GETS:
        resp = anon.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url
    for url in POSTS:
        resp = anon.post(url, data={"name": "x", "phone": "+15551230002", "text": "hi"})
        assert resp.status_code in (302, 400), url
    assert snapshot(web)[0][1] == "Ann" and len(snapshot(web)) == 1
    assert len(web.store.messages.page().rows) == 0


def test_every_post_needs_the_csrf_token(web: Web, agent) -> None:
    add(web, "+15551230001", "Ann")
    before = snapshot(web)
    for url in POSTS:
        resp = agent.post(
            url,
            data={"name": "x", "phone": "+15551230002", "text": "hi", "short_code": "55123"},
        )
        assert resp.status_code == 400 and b"reload the page" in resp.data, url
    assert snapshot(web) == before
    assert len(web.store.messages.page().rows) == 0
    assert web.store.opt_events.history(1) == []


def test_an_agent_can_use_every_page(web: Web, agent) -> None:
    add(web, "+15551230001", "Ann")
    for url in GETS:
        assert agent.get(url).status_code == 200, url


def test_unknown_profile_is_404(agent) -> None:
    for url in ("/profiles/99", "/profiles/99/edit", "/profiles/99/text"):
        resp = agent.get(url)
        assert resp.status_code == 404 and b"no profile with id 99" in resp.data
    assert post(agent, "/profiles/99/opt-out").status_code == 404


# -- the list ------------------------------------------------------------------------------


def test_list_shows_the_columns_and_links_the_number(web: Web, agent) -> None:
    pid = add(web, "+15551230001", "Ann")
    web.store.profiles.touch(pid, "2024-05-06T07:08:09.000000+00:00")
    page = html(agent.get("/profiles"))
    for header in ("Name", "Phone number", "Status", "Subscription", "Last message", "Chat"):
        assert f">{header}" in page
    assert f'<a href="/profiles/{pid}">+15551230001</a>' in page
    assert '<time datetime="2024-05-06T07:08:09.000000+00:00">2024-05-06 07:08</time>' in page


def test_search_by_name_or_number(web: Web, agent) -> None:
    add(web, "+15551230001", "Ann Lee")
    add(web, "+15551239876", "Bob Stone")
    by_name = html(agent.get("/profiles?q=stone"))
    assert "Bob Stone" in by_name and "Ann Lee" not in by_name
    by_number = html(agent.get("/profiles?q=555-123-98"))
    assert "Bob Stone" in by_number and "Ann Lee" not in by_number
    nothing = html(agent.get("/profiles?q=%25"))
    assert "No profile matches." in nothing


def test_sort_links_carry_aria_sort(web: Web, agent) -> None:
    add(web, "+15551230002", "Bea")
    add(web, "+15551230001", "Cid")
    page = html(agent.get("/profiles"))
    assert re.search(r'<th scope="col" aria-sort="ascending"><a href="/profiles\?dir=desc">', page)
    assert page.index("Bea") < page.index("Cid")
    page = html(agent.get("/profiles?sort=phone"))
    assert 'aria-sort="ascending"><a href="/profiles?sort=phone&amp;dir=desc">' in page
    assert page.index("Cid") < page.index("Bea")
    page = html(agent.get("/profiles?sort=name&dir=desc"))
    assert 'aria-sort="descending"' in page and page.index("Cid") < page.index("Bea")
    assert 'aria-sort="none"' in page
    assert agent.get("/profiles?sort=password_hash").status_code == 200  # unknown: by name
    # The search form offers the same (table headers are hidden on a phone).
    page = html(agent.get("/profiles?sort=last_message&dir=desc"))
    assert '<option value="last_message" selected>Sort by last message</option>' in page
    assert '<option value="desc" selected>descending</option>' in page


def test_pages_of_fifty_with_first_previous_next_and_last(web: Web, agent) -> None:
    for i in range(120):
        add(web, f"+1555123{i:04d}", f"P{i:03d}")
    ids = {r["name"]: r["id"] for r in web.store.profiles.all()}

    def link(page: str, rel: str) -> str:
        return re.search(rf'<a href="([^"]+)" rel="{rel}">', page).group(1).replace("&amp;", "&")

    first = html(agent.get("/profiles"))
    assert first.count('class="chat-open') == 0
    assert len(re.findall(r'<a href="/profiles/\d+">', first)) == 50
    assert "1–50, page 1 of 3" in first and 'rel="prev"' not in first
    assert link(first, "next") == f"/profiles?after={ids['P049']}"
    second = html(agent.get(link(first, "next")))
    assert "P050" in second and "P049" not in second and "P100" not in second
    assert "51–100, page 2 of 3" in second
    assert link(second, "prev") == f"/profiles?before={ids['P050']}"
    back = html(agent.get(link(second, "prev")))
    assert "P000" in back and "P049" in back and "P050" not in back and "page 1 of 3" in back
    third = html(agent.get(link(second, "next")))
    assert len(re.findall(r'<a href="/profiles/\d+">', third)) == 20
    assert "101–120, page 3 of 3" in third and 'rel="next"' not in third
    last = html(agent.get("/profiles?last=1"))
    assert "P119" in last and "P070" in last and "P069" not in last and "71–120" in last
    # Sorted by name descending, the keyset walks the other way.
    down = html(agent.get(f"/profiles?dir=desc&after={ids['P070']}"))
    assert "P069" in down and "P070" not in down and "P071" not in down
    assert "P000" in html(agent.get("/profiles?after=999999"))  # a profile gone: from the top
    assert agent.get("/profiles?after=abc").status_code == 200


def test_chat_only_where_it_is_available(web: Web, agent) -> None:
    ok = add(web, "+15551230001", "Ok")
    gone = add(web, "+15551230002", "Gone", subscribed=False)
    off = add(web, "+15551230003", "Off", status="inactive")
    landline = add(web, "+442079460018", "Landline")  # a fixed line in London
    assert chat_buttons(html(agent.get("/profiles"))) == set()  # no modem up
    assert "No short code has a modem up." in html(agent.get(f"/profiles/{ok}"))
    web.dispatcher.modem_up("a", object())
    assert chat_buttons(html(agent.get("/profiles"))) == {str(ok)}
    page = html(agent.get(f"/profiles/{ok}"))
    assert "Start chat" in page and chat_buttons(page) == {str(ok)}
    assert 'data-name="Ok" data-phone="+15551230001"' in page
    assert '{% include "chat_panel.html"' not in page
    for pid, reason in (
        (gone, "opted out"),
        (off, "inactive"),
        (landline, "cannot receive SMS"),
    ):
        page = html(agent.get(f"/profiles/{pid}"))
        assert "Start chat" not in page and reason in page
    web.dispatcher.modem_down("a")
    assert chat_buttons(html(agent.get("/profiles"))) == set()


# -- add and edit --------------------------------------------------------------------------


def test_add_a_profile_with_custom_fields(web: Web, agent) -> None:
    resp = post(
        agent,
        "/profiles/new",
        {
            "name": "Ann",
            "phone": "(555) 123-0001",
            "status": "active",
            "subscribed": "yes",
            "custom_name": ["city", "", ""],
            "custom_value": ["Paris", "", ""],
        },
    )
    pid = web.store.profiles.by_phone("+15551230001")["id"]
    assert resp.status_code == 302 and resp.headers["Location"] == f"/profiles/{pid}"
    assert custom_fields(web.store.profiles.get(pid)) == {"city": "Paris"}
    page = html(agent.get(f"/profiles/{pid}"))
    assert "Profile Ann added." in page and "Paris" in page


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"phone": "12"}, "phone", "has the wrong number of digits"),
        ({"phone": "555 123 0009"}, "phone", "A profile with +15551230009 already exists"),
        ({"phone": ""}, "phone", "A phone number is required."),
        ({"status": "deleted"}, "status", "must be active or inactive"),
        ({"name": "a\nb"}, "name", "control characters"),
        ({"custom_name": ["phone"], "custom_value": ["1"]}, "custom", "is a profile column"),
    ],
)
def test_add_with_bad_input_says_why_and_changes_nothing(
    web: Web, agent, fields, field, words
) -> None:
    add(web, "+15551230009", "Existing")
    before = snapshot(web)
    data = {"name": "New", "phone": "5551230001", "status": "active", **fields}
    resp = post(agent, "/profiles/new", data)
    page = html(resp)
    assert resp.status_code == 400 and words in page and f'id="{field}-error"' in page
    assert 'value="5551230001"' in page or field == "phone"  # typed values kept
    assert snapshot(web) == before


def test_edit_changes_fields_and_refuses_a_duplicate_number(web: Web, agent) -> None:
    pid = add(web, "+15551230001", "Ann", custom={"city": "Paris", "team": "red"})
    add(web, "+15551230002", "Bob")
    page = html(agent.get(f"/profiles/{pid}/edit"))
    assert 'value="city"' in page and 'value="Paris"' in page
    data = {
        "name": "Ann Lee",
        "phone": "+15551230001",
        "status": "active",
        "custom_name": ["city", "team", "dog"],
        "custom_value": ["Lyon", "", "Rex"],
    }
    resp = post(agent, f"/profiles/{pid}/edit", data)
    assert resp.status_code == 302
    row = web.store.profiles.get(pid)
    assert row["name"] == "Ann Lee" and custom_fields(row) == {"city": "Lyon", "dog": "Rex"}
    before = snapshot(web)
    resp = post(agent, f"/profiles/{pid}/edit", {**data, "phone": "555-123-0002"})
    assert resp.status_code == 400 and "already exists (Bob)" in html(resp)
    assert snapshot(web) == before


def test_deactivate_and_reactivate(web: Web, agent) -> None:
    pid = add(web, "+15551230001", "Ann")
    assert post(agent, f"/profiles/{pid}/deactivate").status_code == 302
    assert web.store.profiles.get(pid)["status"] == "inactive"
    page = html(agent.get(f"/profiles/{pid}"))
    assert "Profile deactivated." in page and "Reactivate" in page
    post(agent, f"/profiles/{pid}/activate")
    assert web.store.profiles.get(pid)["status"] == "active"
    actions = [r["action"] for r in web.store.audit.recent(5)]
    assert actions[:2] == ["profile.reactivate", "profile.deactivate"]
    assert agent.get(f"/profiles/{pid}/deactivate").status_code == 405


def test_opt_out_and_resubscribe_by_hand_are_recorded(web: Web, agent) -> None:
    pid = add(web, "+15551230001", "Ann")
    post(agent, f"/profiles/{pid}/opt-out")
    assert not web.store.profiles.get(pid)["subscribed"]
    post(agent, f"/profiles/{pid}/resubscribe")
    assert web.store.profiles.get(pid)["subscribed"]
    events = [(e["action"], e["source"], e["actor"]) for e in web.store.opt_events.history(pid)]
    assert events == [("opt_out", "agent", "agent"), ("opt_in", "agent", "agent")]
    audit = [(r["action"], r["actor"]) for r in web.store.audit.recent(2)]
    assert audit == [("profile.opt_in", "agent"), ("profile.opt_out", "agent")]
    page = html(agent.get(f"/profiles/{pid}"))
    assert "opted out\n       by hand (agent)" in page or "by hand (agent)" in page


# -- a profile's page ----------------------------------------------------------------------


def test_profile_page_shows_details_history_and_actions(web: Web, agent) -> None:
    pid = add(web, "+15551230001", "Ann", custom={"city": "Paris"})
    web.inbound.receive("a", encode_deliver("+15551230001", "first from Ann")[0])
    out = web.outbox.submit("reply one", profile_id=pid, short_code="55123", user="agent")
    web.store.db.execute(
        "UPDATE messages SET status='failed', error='the network refused it',"
        " maybe_duplicate=1, modem_id='a' WHERE id=?",
        (out.message_id,),
    )
    page = html(agent.get(f"/profiles/{pid}"))
    assert 'aria-controls="profile-actions"' in page and 'data-disclosure="profile-actions"' in page
    for item in ("Text This Profile", "Edit", "Deactivate"):
        assert item in page
    assert page.index("reply one") < page.index("first from Ann")  # newest first
    assert "may have been sent twice" in page and "the network refused it" in page
    assert 'title="the network refused it"' in page and "✗" in page
    assert "55123 · Modem A" in page  # the modem's label from the configuration
    assert "sent by agent" in page and "received" in page
    assert "city" in page and "Paris" in page
    assert 'data-live="true"' in page and "js/profiles.js" in page and "js/chat.js" in page


def test_history_is_paged(web: Web, agent) -> None:
    pid = add(web, "+15551230001", "Ann")
    for i in range(105):
        web.outbox.submit(f"msg {i:03d}", profile_id=pid, short_code="55123")
    page = html(agent.get(f"/profiles/{pid}"))
    assert "msg 104" in page and "msg 005" in page and "msg 004" not in page
    older = re.search(r'href="(/profiles/\d+\?before=\d+)">Older messages', page).group(1)
    page = html(agent.get(older))
    assert "msg 004" in page and "msg 000" in page and "msg 005" not in page
    assert 'data-live="true"' not in page


def test_text_from_handsets_and_names_is_escaped(web: Web, agent) -> None:
    pid = add(web, "+15551230001", XSS_NAME, custom={"<b>k</b>": XSS_BODY})
    web.inbound.receive("a", encode_deliver("+15551230001", XSS_BODY)[0])
    web.dispatcher.modem_up("a", object())
    pages = [
        html(agent.get("/profiles")),
        html(agent.get(f"/profiles/{pid}")),
        html(agent.get(f"/profiles/{pid}/text")),
        html(agent.get(f"/profiles/{pid}/edit")),
    ]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>k" not in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in pages[1]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[0]
    assert 'data-name="&lt;script&gt;alert(&#34;n&#34;)' in pages[0]


# -- Text This Profile ---------------------------------------------------------------------


def test_text_form_shows_short_codes_with_their_modems(web: Web, agent) -> None:
    pid = add(web, "+15551230001", "Ann")
    web.dispatcher.modem_up("a", object())
    page = html(agent.get(f"/profiles/{pid}/text"))
    assert re.search(r'<option value="55123" selected>55123 Support — modem up</option>', page)
    assert "55999 Alerts — no modem up" in page
    assert 'data-max-parts="10"' in page and 'data-catalog-url="/api/emoji"' in page
    assert "js/compose.js" in page and "js/smscount.js" in page and "js/emoji-picker.js" in page
    assert "Send Message" in page and "<script>" not in page.split("</main>")[0]
    key1 = idempotency_key(page)
    assert key1 != idempotency_key(html(agent.get(f"/profiles/{pid}/text")))


def test_send_queues_under_the_master_campaign_and_shows_in_the_history(web: Web, agent) -> None:
    pid = add(web, "+15551230001", "Ann")
    sub = web.events.subscribe()
    page = html(agent.get(f"/profiles/{pid}/text"))
    data = {
        "text": "Hi :thumbsup:",
        "short_code": "55999",
        "idempotency_key": idempotency_key(page),
    }
    resp = post(agent, f"/profiles/{pid}/text", data)
    assert resp.status_code == 302 and resp.headers["Location"] == f"/profiles/{pid}"
    rows = web.store.messages.page().rows
    assert len(rows) == 1
    msg = web.store.messages.get(rows[0]["id"])
    assert msg["body"] == "Hi 👍" and msg["short_code"] == "55999" and msg["created_by"] == "agent"
    assert msg["campaign_id"] == web.store.campaigns.master_id() and msg["status"] == "queued"
    assert msg["idempotency_key"] == data["idempotency_key"]
    event = sub.get(1)
    assert event.kind == "message.new" and event.data["profile_id"] == pid
    sub.close()
    page = html(agent.get(f"/profiles/{pid}"))
    assert "Message queued (1 SMS) from 55999." in page
    assert f'data-message-id="{msg["id"]}"' in page and "Hi 👍" in page and "⏳" in page
    # The same form sent again (double click, reload): one message.
    resp = post(agent, f"/profiles/{pid}/text", data)
    assert resp.status_code == 302 and len(web.store.messages.page().rows) == 1
    assert "already been sent" in html(agent.get(f"/profiles/{pid}"))


@pytest.mark.parametrize(
    ("setup", "fields", "field", "words"),
    [
        (None, {"text": "   "}, "text", "The message is empty."),
        (None, {"text": "x" * 1600}, "text", "10"),
        (None, {"text": "y" * 20_000}, "text", "far too long"),
        (None, {"short_code": "99999"}, "short_code", "There is no short code '99999'"),
        (None, {"short_code": ""}, "short_code", "Choose a short code"),
        ({"subscribed": False}, {}, "profile", "has opted out"),
        ({"status": "inactive"}, {}, "profile", "is inactive"),
    ],
)
def test_send_refused_says_why_keeps_the_text_and_sends_nothing(
    web: Web, agent, setup, fields, field, words
) -> None:
    pid = add(web, "+15551230001", "Ann", **(setup or {}))
    data = {"text": "Hello <there>", "short_code": "55123", "idempotency_key": "k1", **fields}
    resp = post(agent, f"/profiles/{pid}/text", data)
    page = html(resp)
    assert resp.status_code == 400
    assert str(escape(words)) in page
    assert re.search(rf'id="{field}-error"', page)
    shown = data["text"] if len(data["text"]) < 10_000 else data["text"][:100]
    assert shown.replace("<", "&lt;").replace(">", "&gt;") in page
    assert 'name="idempotency_key" value="k1"' in page
    assert len(web.store.messages.page().rows) == 0


def test_the_text_page_warns_before_typing_when_no_text_can_go(web: Web, agent) -> None:
    pid = add(web, "+15551230001", "Ann", subscribed=False)
    assert "has opted out" in html(agent.get(f"/profiles/{pid}/text"))


# -- import and export ---------------------------------------------------------------------


def upload(client, data: bytes, filename: str = "people.csv"):
    return post(
        client,
        "/profiles/import",
        {"file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def test_import_shows_a_report_row_by_row(web: Web, agent) -> None:
    add(web, "+15551230001", "Ann")
    data = (
        "\ufeffname,phone,status,subscribed,city\r\n"
        "Ann Lee,5551230001,,,Paris\r\n"
        "Bob,5551230002,active,yes,Oslo\r\n"
        "Cy,12,,,\r\n"
        f"{XSS_NAME},5551230004,,,{XSS_BODY}\r\n"
    ).encode()
    resp = upload(agent, data)
    page = html(resp)
    assert resp.status_code == 200
    assert "row 4: phone: The number &#39;12&#39; has the wrong number of digits" in page
    assert re.search(r'<div class="stat">2</div>imported', page)
    assert re.search(r'<div class="stat">1</div>updated', page)
    assert "Columns read: name, phone, status, subscribed, city" in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert web.store.profiles.by_phone("+15551230001")["name"] == "Ann Lee"
    assert custom_fields(web.store.profiles.by_phone("+15551230002")) == {"city": "Oslo"}
    assert web.store.profiles.by_phone("+15551230004")["name"] == XSS_NAME


@pytest.mark.parametrize(
    ("data", "filename", "words"),
    [
        (b"PK\x03\x04\x14\x00\x00\x00binary", "people.xlsx", "not CSV"),
        (b"%PDF-1.4\n\x00\x01\x02", "people.pdf", "not a text file"),
        ("phone,name\n5551230001,Zoë\n".encode("utf-16"), "people.csv", "not a text file"),
        ("phone,name\n5551230001,Zoë\n".encode("cp1252"), "people.csv", "not UTF-8"),
        (b"first,last\nAnn,Lee\n", "people.csv", "no &#39;phone&#39; column"),
        (b"", "empty.csv", "the file is empty"),
    ],
)
def test_a_file_that_is_not_a_csv_of_profiles_imports_nothing(
    web: Web, agent, data, filename, words
) -> None:
    add(web, "+15551230009", "Zed")
    before = snapshot(web)
    resp = upload(agent, data, filename)
    page = html(resp)
    assert resp.status_code == 400 and words in page and "Nothing was imported." in page
    assert filename in page
    assert snapshot(web) == before


def test_import_without_a_file(agent) -> None:
    resp = post(agent, "/profiles/import", {}, content_type="multipart/form-data")
    assert resp.status_code == 400 and "Choose a CSV file" in html(resp)


def test_export_is_csv_with_formulas_escaped(web: Web, agent) -> None:
    add(web, "+15551230001", "=1+2", custom={"note": "@SUM(A1)"})
    resp = agent.get("/profiles/export.csv")
    assert resp.mimetype == "text/csv" and resp.headers["Cache-Control"] == "no-store"
    assert re.match(
        r'attachment; filename="profiles-\d{8}-\d{4}.csv"', resp.headers["Content-Disposition"]
    )
    rows = list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert rows == [
        ["name", "phone", "status", "subscribed", "note"],
        ["'=1+2", "'+15551230001", "active", "yes", "'@SUM(A1)"],
    ]
    assert web.store.audit.recent(1)[0]["action"] == "profile.export"


def test_csv_round_trip_over_http(web: Web, agent, tmp_path) -> None:
    add(web, "+15551230001", 'Ann, "the" first', custom={"city": "São Paulo", "n": "-3"})
    add(web, "+447700900123", "Zoë", status="inactive", subscribed=False)
    add(web, "+15551230003", XSS_NAME)
    exported = agent.get("/profiles/export.csv").get_data()
    other = Web(tmp_path / "other")
    try:
        client = other.client(AGENT)
        resp = upload(client, exported)
        assert resp.status_code == 200 and re.search(
            r'<div class="stat">3</div>imported', html(resp)
        )
        fields = ("name", "phone", "status", "subscribed", "custom")
        ours = sorted(tuple(r[k] for k in fields) for r in web.store.profiles.all())
        theirs = sorted(tuple(r[k] for k in fields) for r in other.store.profiles.all())
        assert ours == theirs
    finally:
        other.store.close()
    resp = upload(agent, exported)  # into the same gateway: nothing changes
    assert re.search(r'<div class="stat">3</div>already up to date', html(resp))
