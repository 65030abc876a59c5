"""The REST API under /api/v1, endpoint by endpoint: tokens (missing, mistyped, revoked, of a
disabled user, of the wrong role), sending with idempotency keys, reading and listing messages,
profiles, the conversation, short codes and modems, the error shapes and the rate limit. Every
answer is checked against the OpenAPI document (api_client.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import parse_config
from gateway.modem.manager import ModemStatus
from gateway.modem.pdu import encode_deliver
from gateway.modem.states import ModemState

from .api_client import DOC, ApiClient
from .conftest import ADMIN, AGENT, CONFIG, Web, csrf_token

PHONE = "+15551230001"
OTHER = "+15551230002"


class Api:
    """The app with a token for each role, and clients that use them."""

    def __init__(self, web: Web, extra: str = "api: {rate_per_minute: 0}\n") -> None:
        config = parse_config(CONFIG.format(data_dir=web.config.data_dir) + extra)
        web.use(config)
        self.web = web
        self.admin_token = web.store.api_tokens.create("admin", "admin's script").secret
        self.agent_token = web.store.api_tokens.create("agent", "booking system").secret
        self.admin = ApiClient(web.app.test_client(), self.admin_token)
        self.agent = ApiClient(web.app.test_client(), self.agent_token)
        self.anon = ApiClient(web.app.test_client(), None)


@pytest.fixture
def api(web: Web) -> Api:
    return Api(web)


def receive(web: Web, phone: str, text: str) -> int:
    got = web.inbound.receive("a", encode_deliver(phone, text)[0])
    assert got.message_id is not None
    return got.message_id


# -- tokens --------------------------------------------------------------------------------


def test_no_token_is_401_with_a_challenge(api: Api) -> None:
    resp = api.anon.get("/api/v1/messages")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.json["error"]["code"] == "unauthorized"
    assert "Authorization: Bearer" in resp.json["error"]["message"]


@pytest.mark.parametrize(
    "header",
    ["Bearer gw_not-a-token", "Bearer nonsense", "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQ=", "Bearer "],
)
def test_a_wrong_token_is_401(api: Api, header: str) -> None:
    resp = api.anon.get("/api/v1/me", headers={"Authorization": header})
    assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers


def test_a_revoked_token_is_401(api: Api) -> None:
    assert api.agent.get("/api/v1/me").status_code == 200
    [row] = api.web.store.api_tokens.list("agent")
    api.web.store.api_tokens.revoke(row["id"], by="admin")
    resp = api.agent.get("/api/v1/me")
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_a_token_of_a_disabled_user_is_401_and_works_again_when_enabled(api: Api) -> None:
    api.web.store.users.set_disabled("agent", True)
    assert api.agent.get("/api/v1/me").status_code == 401
    api.web.store.users.set_disabled("agent", False)
    assert api.agent.get("/api/v1/me").json == {
        "user": "agent",
        "role": "agent",
        "token_id": api.agent.get("/api/v1/me").json["token_id"],
    }


def test_a_token_acts_with_its_users_role(api: Api) -> None:
    assert api.admin.get("/api/v1/me").json["role"] == "admin"
    assert api.agent.get("/api/v1/me").json["role"] == "agent"
    api.web.store.users.set_role("agent", "admin")  # a role change applies at once
    assert api.agent.get("/api/v1/me").json["role"] == "admin"


def test_a_browser_session_is_not_an_api_token(api: Api) -> None:
    browser = api.web.client(ADMIN)
    resp = browser.get("/api/v1/me")
    assert resp.status_code == 401


def test_token_requests_need_no_csrf_but_the_web_apps_calls_still_do(api: Api) -> None:
    resp = api.agent.post("/api/v1/messages", {"to": PHONE, "text": "no CSRF token"})
    assert resp.status_code == 201
    pid = resp.json["profile_id"]
    browser = api.web.client(AGENT)
    resp = browser.post(f"/api/profiles/{pid}/messages", json={"text": "forged?"})
    assert resp.status_code == 400  # CSRF refused, as before
    token = csrf_token(browser, f"/profiles/{pid}")
    resp = browser.post(
        f"/api/profiles/{pid}/messages", json={"text": "real"}, headers={"X-CSRFToken": token}
    )
    assert resp.status_code == 201


def test_last_use_is_written_at_most_once_a_minute(api: Api) -> None:
    tokens = api.web.store.api_tokens
    new = tokens.create("agent", "clock")
    t0 = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
    tokens.authenticate(new.secret, at=t0)
    tokens.authenticate(new.secret, at=t0 + timedelta(seconds=59))
    assert tokens.get(new.id)["last_used_at"].startswith("2030-01-01T08:00:00")
    tokens.authenticate(new.secret, at=t0 + timedelta(seconds=61))
    assert tokens.get(new.id)["last_used_at"].startswith("2030-01-01T08:01:01")


def test_tokens_are_stored_hashed(api: Api) -> None:
    rows = api.web.store.db.q("SELECT * FROM api_tokens")
    stored = " ".join(str(v) for row in rows for v in tuple(row))
    assert api.admin_token not in stored and api.agent_token not in stored


def test_agents_see_and_revoke_only_their_own_tokens(api: Api) -> None:
    mine = api.agent.get("/api/v1/tokens").json["data"]
    assert {t["user"] for t in mine} == {"agent"}
    assert all("token" not in t for t in mine)
    resp = api.agent.get("/api/v1/tokens?user=admin")
    assert resp.status_code == 403 and resp.json["error"]["field"] == "user"
    admins = api.web.store.api_tokens.list("admin")[0]["id"]
    resp = api.agent.delete(f"/api/v1/tokens/{admins}")
    assert resp.status_code == 403 and resp.json["error"]["code"] == "forbidden"
    assert api.admin.get("/api/v1/me").status_code == 200  # still valid
    everyone = api.admin.get("/api/v1/tokens").json["data"]
    assert {t["user"] for t in everyone} == {"admin", "agent"}
    resp = api.agent.delete(f"/api/v1/tokens/{mine[0]['id']}")
    assert resp.status_code == 200 and resp.json["revoked"]
    assert api.agent.get("/api/v1/me").status_code == 401


def test_an_admin_revokes_anyones_token(api: Api) -> None:
    agents = api.web.store.api_tokens.list("agent")[0]["id"]
    assert api.admin.delete(f"/api/v1/tokens/{agents}").status_code == 200
    assert api.agent.get("/api/v1/me").status_code == 401
    assert api.admin.delete("/api/v1/tokens/999").status_code == 404


# -- sending -------------------------------------------------------------------------------


def test_send_is_201_then_200_for_the_same_key_then_409_for_another_request(api: Api) -> None:
    body = {"to": "(555) 123-0001", "text": "Your appointment is at 9", "idempotency_key": "b-1"}
    first = api.agent.post("/api/v1/messages", body)
    assert first.status_code == 201
    msg = first.json
    assert (msg["phone"], msg["status"], msg["direction"]) == (PHONE, "queued", "out")
    assert (msg["short_code"], msg["created_by"], msg["parts_total"]) == ("55123", "agent", 1)
    again = api.agent.post("/api/v1/messages", {**body, "to": PHONE})  # the same number
    assert again.status_code == 200 and again.json["id"] == msg["id"]
    other = api.agent.post("/api/v1/messages", {**body, "text": "Another text"})
    assert other.status_code == 409
    assert other.json["error"] == {
        "code": "idempotency_conflict",
        "field": "idempotency_key",
        "message": other.json["error"]["message"],
    }
    assert f"message {msg['id']}" in other.json["error"]["message"]
    assert api.web.store.db.value("SELECT COUNT(*) FROM messages") == 1


def test_send_to_a_profile_and_by_short_code(api: Api) -> None:
    pid = api.web.store.profiles.add(PHONE, "Ann")
    resp = api.agent.post(
        "/api/v1/messages", {"profile_id": pid, "text": "Hi Ann", "short_code": "55999"}
    )
    assert resp.status_code == 201
    assert (resp.json["profile_id"], resp.json["short_code"]) == (pid, "55999")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"text": "hi"}, "to", "to (a phone number) or profile_id"),
        ({"to": PHONE, "profile_id": 1, "text": "hi"}, "to", "not both"),
        ({"to": PHONE}, "text", "text of the message is required"),
        ({"to": PHONE, "text": ""}, "text", "empty"),
        ({"to": PHONE, "text": 5}, "text", "must be a string"),
        ({"to": PHONE, "text": "x" * 10_001}, "text", "too long"),
        ({"to": PHONE, "text": "a\x00b"}, "text", "control character"),
        ({"to": "12", "text": "hi"}, "to", ""),
        (
            {"to": PHONE, "text": "hi", "short_code": "00000"},
            "short_code",
            "There is no short code",
        ),
        ({"to": PHONE, "text": "hi", "idempotency_key": " k"}, "idempotency_key", "space"),
        ({"to": PHONE, "text": "hi", "colour": "red"}, "colour", "unknown field"),
        ({"profile_id": True, "text": "hi"}, "profile_id", "whole number"),
        ({"profile_id": 999, "text": "hi"}, "profile_id", "no profile with id 999"),
        ({"to": PHONE, "text": "你" * 2000}, "text", "parts"),  # more parts than allowed
    ],
)
def test_send_refuses_bad_input_with_422_naming_the_field(api, body, field, words) -> None:
    resp = api.agent.post("/api/v1/messages", body)
    assert resp.status_code == 422, resp.json
    error = resp.json["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert words.lower() in error["message"].lower()
    assert api.web.store.db.value("SELECT COUNT(*) FROM messages") == 0


def test_send_refuses_an_opted_out_or_inactive_profile(api: Api) -> None:
    out = api.web.store.profiles.add(PHONE, "Ann", subscribed=False)
    resp = api.agent.post("/api/v1/messages", {"profile_id": out, "text": "hi"})
    assert resp.status_code == 422 and resp.json["error"]["field"] == "profile_id"
    assert "opted out" in resp.json["error"]["message"]
    resp = api.agent.post("/api/v1/messages", {"to": PHONE, "text": "hi"})
    assert resp.status_code == 422 and resp.json["error"]["field"] == "to"


@pytest.mark.parametrize(
    ("data", "content_type", "status", "words"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (b'"text"', "application/json", 400, "JSON object"),
        (b"to=1&text=hi", "application/x-www-form-urlencoded", 400, "Content-Type"),
        (b"to=1&text=%ff", "application/x-www-form-urlencoded", 400, "UTF-8"),
        (b"\xff\xfe", "application/json", 400, "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, ""),
        (b'{"text": "' + b"x" * 70_000 + b'"}', "application/json", 413, "too large"),
    ],
)
def test_malformed_bodies(api: Api, data, content_type, status, words) -> None:
    resp = api.agent.post("/api/v1/messages", data=data, content_type=content_type)
    assert resp.status_code == status
    assert words in resp.json["error"]["message"]


# -- reading messages ----------------------------------------------------------------------


def test_get_a_message_with_its_parts(api: Api) -> None:
    resp = api.agent.post("/api/v1/messages", {"to": PHONE, "text": "hello"})
    mid = resp.json["id"]
    api.web.store.messages.ensure_parts(mid, [(1, "00", 10)])
    got = api.agent.get(f"/api/v1/messages/{mid}").json
    assert got["id"] == mid and got["text"] == "hello"
    assert [(p["seq"], p["status"]) for p in got["parts"]] == [(1, "pending")]
    inbound = receive(api.web, OTHER, "a reply")
    got = api.agent.get(f"/api/v1/messages/{inbound}").json
    assert (got["direction"], got["status"], got["parts"]) == ("in", "received", [])


@pytest.mark.parametrize("url", ["/api/v1/messages/999", "/api/v1/messages/" + "9" * 30])
def test_an_unknown_message_is_404(api: Api, url: str) -> None:
    resp = api.agent.get(url)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"


def test_list_messages_in_keyset_pages_without_gaps_or_repeats(api: Api) -> None:
    ids = [
        api.agent.post("/api/v1/messages", {"to": PHONE, "text": f"n{i}"}).json["id"]
        for i in range(7)
    ]
    seen: list[int] = []
    url = "/api/v1/messages?limit=3"
    while True:
        page = api.agent.get(url).json
        seen += [m["id"] for m in page["data"]]
        if page["next"] is None:
            break
        url = f"/api/v1/messages?limit=3&cursor={page['next']}"
    assert seen == sorted(ids, reverse=True)


def test_list_messages_filters(api: Api) -> None:
    out = api.agent.post("/api/v1/messages", {"to": PHONE, "text": "out"}).json
    api.agent.post("/api/v1/messages", {"to": OTHER, "text": "other", "short_code": "55999"})
    inbound = receive(api.web, PHONE, "in")

    def ids(query: str) -> list[int]:
        resp = api.agent.get(f"/api/v1/messages?{query}")
        assert resp.status_code == 200, resp.json
        return [m["id"] for m in resp.json["data"]]

    assert ids("direction=in") == [inbound]
    assert ids(f"direction=out&profile_id={out['profile_id']}") == [out["id"]]
    assert ids("short_code=55999&status=queued") == [out["id"] + 1]
    assert ids("status=delivered") == []
    assert ids("q=othe") == [out["id"] + 1]
    assert ids("q=other&direction=in") == []
    assert len(ids("since=2000-01-01T00:00:00Z")) == 3
    assert ids("since=2999-01-01T00:00:00%2B02:00") == []
    created = api.web.store.messages.get(inbound)["created_at"]
    assert ids(f"since={created.replace('+', '%2B')}") == [inbound]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("direction=sideways", "direction"),
        ("status=lost", "status"),
        ("since=yesterday", "since"),
        ("since=2026-01-01T00:00:00", "since"),
        ("profile_id=x", "profile_id"),
        ("cursor=abc", "cursor"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("colour=red", "colour"),
        ("q=" + "x" * 201, "q"),
    ],
)
def test_list_messages_refuses_bad_parameters(api: Api, query: str, field: str) -> None:
    resp = api.agent.get(f"/api/v1/messages?{query}")
    assert resp.status_code == 422 and resp.json["error"]["field"] == field


# -- profiles ------------------------------------------------------------------------------


def test_profile_create_read_change_deactivate(api: Api) -> None:
    resp = api.agent.post(
        "/api/v1/profiles",
        {"name": "Ann Lee", "phone": "(555) 123-0001", "custom": {"class": "4B"}},
    )
    assert resp.status_code == 201
    ann = resp.json
    assert (ann["phone"], ann["status"], ann["subscribed"]) == (PHONE, "active", True)
    assert ann["custom"] == {"class": "4B"}
    assert api.agent.get(f"/api/v1/profiles/{ann['id']}").json == ann
    changed = api.agent.patch(f"/api/v1/profiles/{ann['id']}", {"name": "Ann Smith"}).json
    assert (changed["name"], changed["custom"]) == ("Ann Smith", {"class": "4B"})
    out = api.agent.patch(f"/api/v1/profiles/{ann['id']}", {"subscribed": False}).json
    assert out["subscribed"] is False
    last = api.web.store.opt_events.last(ann["id"])
    assert (last["action"], last["source"], last["actor"]) == ("opt_out", "agent", "agent")
    gone = api.agent.delete(f"/api/v1/profiles/{ann['id']}")
    assert gone.status_code == 200 and gone.json["status"] == "inactive"
    assert api.web.store.profiles.get(ann["id"]) is not None  # kept, with its history
    back = api.agent.patch(f"/api/v1/profiles/{ann['id']}", {"status": "active"}).json
    assert (back["status"], back["subscribed"]) == ("active", False)  # re-subscribing is apart


def test_a_profile_shows_its_subscription_to_each_short_code(api: Api) -> None:
    """Issue 11/12: a STOP to one short code shows in ``subscriptions`` (one page query for
    the list), while ``subscribed``, the all-short-codes switch, stays on."""
    store = api.web.store
    one = store.profiles.add("+15551230091", "Stopped one")
    other = store.profiles.add("+15551230092", "Subscribed")
    store.subscriptions.set_one(one, "55123", False)
    got = api.agent.get(f"/api/v1/profiles/{one}").json
    assert got["subscribed"] is True
    assert got["subscriptions"] == {"55123": False, "55999": True}
    listed = {p["id"]: p["subscriptions"] for p in api.agent.get("/api/v1/profiles").json["data"]}
    assert listed[one] == {"55123": False, "55999": True}
    assert listed[other] == {"55123": True, "55999": True}


def test_profile_duplicates_are_409_and_bad_fields_422(api: Api) -> None:
    api.agent.post("/api/v1/profiles", {"phone": PHONE})
    other = api.agent.post("/api/v1/profiles", {"phone": OTHER}).json
    resp = api.agent.post("/api/v1/profiles", {"phone": "555-123-0001", "name": "Dup"})
    assert resp.status_code == 409 and resp.json["error"]["field"] == "phone"
    resp = api.agent.patch(f"/api/v1/profiles/{other['id']}", {"phone": PHONE})
    assert resp.status_code == 409
    for body, field in [
        ({"name": "No number"}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"phone": "+15551230009", "status": "gone"}, "status"),
        ({"phone": "+15551230003", "subscribed": "yes"}, "subscribed"),
        ({"phone": "+15551230003", "custom": {"a": 1}}, "custom"),
        ({"phone": "+15551230003", "custom": ["a"]}, "custom"),
        ({"phone": "+15551230003", "name": "a\nb"}, "name"),
        ({"phone": "+15551230003", "nickname": "Al"}, "nickname"),
    ]:
        resp = api.agent.post("/api/v1/profiles", body)
        assert resp.status_code == 422, body
        assert resp.json["error"]["field"] == field, (body, resp.json)
    assert api.agent.patch("/api/v1/profiles/999", {"name": "x"}).status_code == 404
    assert api.agent.delete("/api/v1/profiles/999").status_code == 404
    assert api.agent.get("/api/v1/profiles/999").status_code == 404


def test_profile_list_search_and_pages(api: Api) -> None:
    store = api.web.store
    ids = [store.profiles.add(f"+1555123{i:04d}", f"Person {i}") for i in range(7)]
    store.profiles.add("+15559990000", "Zed Zebra", status="inactive")
    seen: list[int] = []
    url = "/api/v1/profiles?limit=3&status=active"
    while url:
        page = api.agent.get(url).json
        seen += [p["id"] for p in page["data"]]
        url = page["next"] and f"/api/v1/profiles?limit=3&status=active&cursor={page['next']}"
    assert seen == ids
    assert [p["name"] for p in api.agent.get("/api/v1/profiles?q=zebra").json["data"]] == [
        "Zed Zebra"
    ]
    by_number = api.agent.get("/api/v1/profiles?q=123-0004").json["data"]
    assert [p["id"] for p in by_number] == [ids[4]]
    assert api.agent.get("/api/v1/profiles?status=gone").status_code == 422
    assert api.agent.get("/api/v1/profiles?q=" + "x" * 201).status_code == 422


def test_a_profiles_conversation_newest_first_in_pages(api: Api) -> None:
    sent = api.agent.post("/api/v1/messages", {"to": PHONE, "text": "Are you coming?"}).json
    pid = sent["profile_id"]
    reply = receive(api.web, PHONE, "Yes")
    api.agent.post("/api/v1/messages", {"to": OTHER, "text": "someone else"})
    page = api.agent.get(f"/api/v1/profiles/{pid}/messages?limit=1").json
    assert [m["id"] for m in page["data"]] == [reply] and page["next"]
    rest = api.agent.get(f"/api/v1/profiles/{pid}/messages?cursor={page['next']}").json
    assert [m["id"] for m in rest["data"]] == [sent["id"]] and rest["next"] is None
    assert api.agent.get("/api/v1/profiles/999/messages").status_code == 404


# -- short codes and modems ----------------------------------------------------------------


class FakeManager:
    def __init__(self, statuses: list[ModemStatus]) -> None:
        self._statuses = statuses

    def statuses(self) -> list[ModemStatus]:
        return self._statuses


def test_short_codes_and_modem_health(api: Api, monkeypatch) -> None:
    codes = api.agent.get("/api/v1/short-codes").json["data"]
    assert [(c["code"], c["up"], c["modems"]) for c in codes] == [
        ("55123", False, ["a"]),
        ("55999", False, ["b"]),
    ]
    modems = api.agent.get("/api/v1/modems").json["data"]
    assert [(m["id"], m["state"]) for m in modems] == [("a", "unknown"), ("b", "unknown")]

    up = ModemStatus("a", label="Modem A", state=ModemState.UP)
    failing = ModemStatus(
        "b",
        state=ModemState.UP,
        sending={
            "state": "failing",
            "failures": 3,
            "reason": "CMS ERROR 38",
            "since": None,
            "next_check": "2030-01-01T08:00:00.000000+00:00",
        },
    )
    api.web.use(manager=FakeManager([up, failing]))
    client = ApiClient(api.web.app.test_client(), api.agent_token)
    monkeypatch.setattr(api.web.dispatcher, "short_code_up", lambda code: code == "55123")
    modems = client.get("/api/v1/modems").json["data"]
    assert [(m["id"], m["state"], m["short_codes"]) for m in modems] == [
        ("a", "up", ["55123"]),
        ("b", "failing", ["55999"]),
    ]
    assert modems[1]["sending"]["failures"] == 3
    codes = client.get("/api/v1/short-codes").json["data"]
    assert [c["up"] for c in codes] == [True, False]


# -- addresses, methods, rate limit --------------------------------------------------------


def test_unknown_addresses_and_methods_answer_in_the_apis_shape(api: Api) -> None:
    resp = api.agent.get("/api/v1/nothing-here")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    resp = api.agent.request("put", "/api/v1/messages")
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"]
    resp = api.anon.get("/api/v1/messages/abc")
    assert resp.status_code == 404


def test_the_rate_limit_is_per_token_with_retry_after(web: Web) -> None:
    api = Api(web, "api: {rate_per_minute: 30, burst: 3}\n")
    codes = [api.agent.get("/api/v1/me").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    resp = api.agent.get("/api/v1/me")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) == 2
    assert "wait 2 s" in resp.json["error"]["message"]
    assert api.admin.get("/api/v1/me").status_code == 200  # another token, its own bucket


def test_the_openapi_document_needs_no_token(api: Api) -> None:
    resp = api.anon.get("/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.json["openapi"] == "3.1.0"


def test_every_operation_answers_as_documented_in_success_and_error(api: Api) -> None:
    """A tour of every operation of the document, each with a success and with errors; every
    answer is checked against the document by the client (api_client.py)."""
    c = api.agent
    sent = c.post("/api/v1/messages", {"to": PHONE, "text": "tour"}).json
    c.post("/api/v1/messages", {"to": PHONE, "text": "tour", "idempotency_key": "t"})
    c.post("/api/v1/messages", {"to": PHONE, "text": "tour", "idempotency_key": "t"})
    c.post("/api/v1/messages", {"to": PHONE, "text": "other", "idempotency_key": "t"})
    c.post("/api/v1/messages", data=b"{", content_type="application/json")
    c.post("/api/v1/messages", data=b"{}" + b" " * 70_000, content_type="application/json")
    c.post("/api/v1/messages", {"to": PHONE})
    c.get("/api/v1/messages")
    c.get("/api/v1/messages?limit=0")
    c.get(f"/api/v1/messages/{sent['id']}")
    c.get("/api/v1/messages/999")
    c.get("/api/v1/messages/1?x=1")
    pid = c.post("/api/v1/profiles", {"phone": OTHER}).json["id"]
    c.post("/api/v1/profiles", {"phone": OTHER})
    c.post("/api/v1/profiles", {"phone": "1"})
    c.post("/api/v1/profiles", data=b"[]", content_type="application/json")
    c.post("/api/v1/profiles", data=b"{}" + b" " * 70_000, content_type="application/json")
    c.get("/api/v1/profiles")
    c.get("/api/v1/profiles?cursor=x")
    c.get(f"/api/v1/profiles/{pid}")
    c.get("/api/v1/profiles/999")
    c.get(f"/api/v1/profiles/{pid}?x=1")
    c.patch(f"/api/v1/profiles/{pid}", {"name": "Bo"})
    c.patch(f"/api/v1/profiles/{pid}", {"phone": PHONE})
    c.patch(f"/api/v1/profiles/{pid}", {"status": "x"})
    c.patch(f"/api/v1/profiles/{pid}", data=b"1", content_type="application/json")
    c.patch(f"/api/v1/profiles/{pid}", data=b"{}" + b" " * 70_000, content_type="application/json")
    c.patch("/api/v1/profiles/999", {"name": "x"})
    c.get(f"/api/v1/profiles/{pid}/messages")
    c.get("/api/v1/profiles/999/messages")
    c.get(f"/api/v1/profiles/{pid}/messages?limit=x")
    c.delete(f"/api/v1/profiles/{pid}")
    c.delete("/api/v1/profiles/999")
    for url in ("/api/v1/short-codes", "/api/v1/modems", "/api/v1/me"):
        c.get(url)
        c.get(url + "?x=1")
    c.get("/api/v1/tokens")
    c.get("/api/v1/tokens?user=admin")
    c.get("/api/v1/tokens?x=1")
    admins = api.web.store.api_tokens.list("admin")[0]["id"]
    c.delete(f"/api/v1/tokens/{admins}")
    c.delete("/api/v1/tokens/999")
    c.get("/api/v1/openapi.json")
    mine = api.web.store.api_tokens.list("agent")[0]["id"]
    c.delete(f"/api/v1/tokens/{mine}")
    c.get("/api/v1/me")  # revoked now: 401
    from .test_api_v1_broadcasts import tour as tour_broadcasts  # (it imports this module)

    tour_broadcasts(api.admin)
    c.seen |= api.admin.seen

    for path, methods in DOC["paths"].items():
        for method in methods:
            statuses = {s for m, p, s in c.seen if (m, p) == (method, path)}
            assert any(s < 300 for s in statuses), f"{method} {path}: no success seen"
            if path != "/openapi.json":
                assert any(s >= 400 for s in statuses), f"{method} {path}: no error seen"
    assert {s for _, _, s in c.seen} >= {200, 201, 400, 401, 403, 404, 409, 413, 422}


def test_a_store_that_cannot_record_a_tokens_use_still_serves_reads(api: Api, monkeypatch):
    from contextlib import contextmanager

    from gateway.store import StoreFault

    fresh = api.web.store.api_tokens.create("agent", "never used").secret

    @contextmanager
    def full_disk():
        raise StoreFault("full", api.web.store.db.path, "the disk is full; free some space")
        yield

    monkeypatch.setattr(api.web.store.db, "tx", full_disk)
    client = ApiClient(api.web.app.test_client(), fresh)
    assert client.get("/api/v1/me").status_code == 200
    resp = client.post("/api/v1/messages", {"to": PHONE, "text": "hi"})
    assert resp.status_code == 503 and "disk is full" in resp.json["error"]["message"]
    assert resp.headers["Retry-After"]


def test_the_document_is_openapi_3_1_with_valid_schemas() -> None:
    import jsonschema

    assert DOC["openapi"] == "3.1.0" and DOC["info"]["version"]
    for schema in DOC["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for path, methods in DOC["paths"].items():
        assert path.startswith("/")
        for method, op in methods.items():
            assert op["operationId"] and op["summary"], (method, path)
            assert any(code.startswith("2") for code in op["responses"]), (method, path)
            for parameter in op.get("parameters", []):
                jsonschema.Draft202012Validator.check_schema(parameter["schema"])
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path
    ids = [op["operationId"] for methods in DOC["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))
