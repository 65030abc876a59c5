"""The JSON API: conversation, sending, read marks, the emoji catalog, and the server-sent event
stream (through the test client and through a real cheroot server on a free port)."""

from __future__ import annotations

import dataclasses
import http.cookiejar
import json
import re
import threading
import time
import urllib.parse
import urllib.request

import pytest

from gateway.modem.pdu import encode_deliver
from gateway.web.app import create_app
from gateway.web.context import app_state
from gateway.web.server import WebServer

from .conftest import AGENT, Web, csrf_token

XSS = "<script>alert(1)</script> <img src=x onerror=alert(1)>"


def receive(web: Web, phone: str, text: str) -> int:
    """An SMS from ``phone`` as the modem would hand it in; the message id."""
    got = web.inbound.receive("a", encode_deliver(phone, text)[0])
    assert got.message_id is not None
    return got.message_id


def post_json(client, url: str, body: object, *, token: str | None = None):
    headers = {"X-CSRFToken": token} if token else {}
    return client.post(url, json=body, headers=headers)


@pytest.fixture
def modems_up(web: Web, monkeypatch) -> None:
    """Every short code has a healthy modem (the tests run no modem)."""
    monkeypatch.setattr(web.dispatcher, "short_code_up", lambda code: True)


# -- access --------------------------------------------------------------------------------


def test_anonymous_gets_401_json_everywhere(web: Web) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann")
    anon = web.client(None)
    for url in ("/api/events", f"/api/profiles/{pid}/conversation", "/api/emoji"):
        resp = anon.get(url)
        assert resp.status_code == 401 and resp.json["error"], url
    for url in (f"/api/profiles/{pid}/messages", f"/api/profiles/{pid}/read"):
        # A refused request clears the session, so each POST carries a fresh valid token.
        resp = post_json(anon, url, {"text": "hi"}, token=csrf_token(anon, "/login"))
        assert resp.status_code == 401 and resp.is_json, url
    assert web.store.db.value("SELECT COUNT(*) FROM messages") == 0


def test_posts_without_csrf_header_are_refused(web: Web, modems_up) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann")
    client = web.client(AGENT)
    for url in (f"/api/profiles/{pid}/messages", f"/api/profiles/{pid}/read"):
        resp = post_json(client, url, {"text": "hi"})
        assert resp.status_code == 400 and "reload the page" in resp.json["error"], url
    assert web.store.db.value("SELECT COUNT(*) FROM messages") == 0


# -- conversation --------------------------------------------------------------------------


def test_conversation_returns_handset_text_as_plain_json(web: Web, modems_up) -> None:
    first = receive(web, "+15551230001", "hello")
    second = receive(web, "+15551230001", XSS)
    pid = web.store.messages.get(first)["profile_id"]
    client = web.client(AGENT)
    data = client.get(f"/api/profiles/{pid}/conversation").json
    assert data["chat_available"] is True and data["reason"] is None
    assert data["profile"]["phone"] == "+15551230001"
    assert [m["id"] for m in data["messages"]] == [first, second]
    assert data["messages"][1]["body"] == XSS  # a string, as typed; the page uses textContent
    assert set(data["messages"][0]) >= {
        "id", "direction", "body", "status", "kind", "created_at", "parts_total", "error",
        "maybe_duplicate", "short_code",
    }  # fmt: skip
    assert [s["code"] for s in data["short_codes"]] == ["55123", "55999"]
    assert data["default_short_code"] == "55123"
    assert data["unread"] == 2
    newer = client.get(f"/api/profiles/{pid}/conversation?after={first}").json
    assert [m["id"] for m in newer["messages"]] == [second]


def test_conversation_says_why_chat_is_unavailable(web: Web) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann", subscribed=False)
    data = web.client(AGENT).get(f"/api/profiles/{pid}/conversation").json
    assert data["chat_available"] is False and "opted out" in data["reason"]


def test_conversation_bad_input(web: Web) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann")
    client = web.client(AGENT)
    resp = client.get("/api/profiles/999/conversation")
    assert resp.status_code == 404 and "999" in resp.json["error"]
    resp = client.get(f"/api/profiles/{pid}/conversation?after=x")
    assert resp.status_code == 400 and resp.json["field"] == "after"


# -- sending -------------------------------------------------------------------------------


def test_send_queues_the_text_and_answers_the_waiting_messages(web: Web, modems_up) -> None:
    mid = receive(web, "+15551230001", "are you open?")
    pid = web.store.messages.get(mid)["profile_id"]
    sub = web.events.subscribe()
    client = web.client(AGENT)
    token = csrf_token(client)
    resp = post_json(
        client,
        f"/api/profiles/{pid}/messages",
        {"text": "Yes :thumbsup:", "short_code": "55999", "idempotency_key": "k-1"},
        token=token,
    )
    assert resp.status_code == 201, resp.json
    message = resp.json["message"]
    assert message["body"] == "Yes 👍" and message["status"] == "queued"
    assert message["short_code"] == "55999" and message["created_by"] == "agent"
    row = web.store.messages.get(message["id"])
    assert row["direction"] == "out" and row["profile_id"] == pid
    assert web.store.messages.get(mid)["agent_state"] == "answered"
    event = sub.get(timeout=1)
    assert event.kind == "message.new" and event.data["id"] == message["id"]
    # The same key again (a retry after a lost answer): the same message, nothing new.
    again = post_json(
        client,
        f"/api/profiles/{pid}/messages",
        {"text": "Yes :thumbsup:", "idempotency_key": "k-1"},
        token=token,
    )
    assert again.status_code == 200 and again.json["message"]["id"] == message["id"]
    assert web.store.db.value("SELECT COUNT(*) FROM messages WHERE direction = 'out'") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "   "}, "text"),
        ({"text": 5}, "text"),
        ({}, "text"),
        ({"text": "x" * 1531}, "text"),  # more than 10 parts
        ({"text": "hi", "short_code": "00000"}, "short_code"),
        ({"text": "hi", "short_code": 55123}, "short_code"),
    ],
)
def test_send_refuses_bad_input(web: Web, modems_up, body: dict, field: str) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann")
    client = web.client(AGENT)
    resp = post_json(client, f"/api/profiles/{pid}/messages", body, token=csrf_token(client))
    assert resp.status_code == 400 and resp.json["field"] == field, resp.json
    assert resp.json["error"]
    assert web.store.db.value("SELECT COUNT(*) FROM messages") == 0


def test_send_refuses_non_json_and_unknown_profiles(web: Web) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann")
    client = web.client(AGENT)
    token = csrf_token(client)
    resp = client.post(
        f"/api/profiles/{pid}/messages", data="text=hi", headers={"X-CSRFToken": token}
    )
    assert resp.status_code == 400 and resp.json["field"] == "text"
    resp = post_json(client, "/api/profiles/999/messages", {"text": "hi"}, token=token)
    assert resp.status_code == 404 and resp.is_json
    assert web.store.db.value("SELECT COUNT(*) FROM messages") == 0


def test_send_to_an_opted_out_profile_is_refused(web: Web, modems_up) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann", subscribed=False)
    client = web.client(AGENT)
    resp = post_json(
        client, f"/api/profiles/{pid}/messages", {"text": "hi"}, token=csrf_token(client)
    )
    assert resp.status_code == 400 and resp.json["field"] == "profile"
    assert "opted out" in resp.json["error"]
    assert web.store.db.value("SELECT COUNT(*) FROM messages") == 0


def test_mark_read(web: Web) -> None:
    mid = receive(web, "+15551230001", "one")
    receive(web, "+15551230001", "two")
    pid = web.store.messages.get(mid)["profile_id"]
    client = web.client(AGENT)
    token = csrf_token(client)
    resp = post_json(client, f"/api/profiles/{pid}/read", {"last_id": mid}, token=token)
    assert resp.status_code == 200 and resp.json["unread"] == 1
    assert post_json(client, f"/api/profiles/{pid}/read", {}, token=token).json["unread"] == 0
    resp = post_json(client, f"/api/profiles/{pid}/read", {"last_id": "x"}, token=token)
    assert resp.status_code == 400 and resp.json["field"] == "last_id"


# -- emoji ---------------------------------------------------------------------------------


def test_emoji_catalog_is_served_and_cacheable(web: Web) -> None:
    client = web.client(AGENT)
    resp = client.get("/api/emoji")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    data = resp.json
    assert any(e["emoji"] == "👍" for e in data["emoji"]) and isinstance(data["shortcodes"], dict)
    assert "max-age=86400" in resp.headers["Cache-Control"]
    etag = resp.headers["ETag"]
    assert client.get("/api/emoji", headers={"If-None-Match": etag}).status_code == 304


# -- server-sent events through the test client --------------------------------------------


def read_until(chunks, pattern: str, limit: float = 2.0) -> str:
    """Read the stream until ``pattern`` shows up (the stream itself ends by its deadline)."""
    seen = ""
    deadline = time.monotonic() + limit
    for chunk in chunks:
        seen += chunk.decode("utf-8")
        if re.search(pattern, seen) or time.monotonic() > deadline:
            break
    return seen


def test_event_stream_delivers_bus_events(web: Web) -> None:
    web.app.config["GATEWAY_SSE_SECONDS"] = 2.0
    client = web.client(AGENT)
    resp = client.get("/api/events", buffered=False)
    try:
        assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
        assert resp.headers["Cache-Control"] == "no-cache"
        assert resp.headers["X-Accel-Buffering"] == "no"
        event = web.events.publish("message.new", id=7, profile_id=3, direction="in", body=XSS)
        seen = read_until(resp.iter_encoded(), r"data: .*\n\n")
    finally:
        resp.close()
    block = seen.split("\n\n")[-2] if seen.endswith("\n\n") else seen
    lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
    assert lines["id"] == str(event.id) and lines["event"] == "message.new"
    assert json.loads(lines["data"]) == {
        "id": 7,
        "profile_id": 3,
        "direction": "in",
        "body": XSS,
    }
    assert web.events.subscriber_count == 0  # closed with the response


def test_event_stream_heartbeat_and_end(web: Web) -> None:
    web.app.config.update(GATEWAY_SSE_SECONDS=0.4, GATEWAY_SSE_HEARTBEAT=0.1)
    client = web.client(AGENT)
    resp = client.get("/api/events", buffered=False)
    started = time.monotonic()
    text = b"".join(resp.iter_encoded()).decode()  # ends by itself after 0.4 s
    assert time.monotonic() - started < 2
    assert text.startswith("retry: ") and ": keep-alive\n\n" in text
    assert web.events.subscriber_count == 0


def test_event_stream_ends_when_the_app_stops(web: Web) -> None:
    client = web.client(AGENT)
    resp = client.get("/api/events", buffered=False)
    chunks = resp.iter_encoded()
    next(chunks)
    app_state(web.app).stopping.set()
    started = time.monotonic()
    rest = b"".join(chunks)
    assert time.monotonic() - started < 2 and b"data:" not in rest


def test_event_streams_are_limited_and_slots_come_back(web: Web) -> None:
    web.app = create_app(web.services, TESTING=True, GATEWAY_SSE_MAX_STREAMS=1)
    client = web.client(AGENT)
    first = client.get("/api/events", buffered=False)
    second = client.get("/api/events")
    assert second.status_code == 503 and second.headers["Retry-After"] == "10"
    first.close()  # never read: closing alone gives the slot and the subscription back
    assert web.events.subscriber_count == 0
    third = client.get("/api/events", buffered=False)
    assert third.status_code == 200
    third.close()


# -- server-sent events through a real server ----------------------------------------------


class Browser:
    """urllib with a cookie jar, logged in to a running WebServer."""

    def __init__(self, base: str, who: tuple[str, str]) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        page = self.opener.open(f"{base}/login", timeout=5).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode(
            {"username": who[0], "password": who[1], "csrf_token": token}
        ).encode()
        landed = self.opener.open(f"{base}/login", data=form, timeout=5)
        assert landed.url.endswith("/home"), landed.url

    def open(self, path: str, timeout: float = 5):
        return self.opener.open(f"{self.base}{path}", timeout=timeout)


@pytest.fixture
def server(web: Web):
    config = dataclasses.replace(
        web.config, web=dataclasses.replace(web.config.web, bind="127.0.0.1", port=0)
    )
    srv = WebServer(dataclasses.replace(web.services, config=config), threads=4)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_live_server_streams_each_event_at_once(web: Web, server: WebServer) -> None:
    browser = Browser(server.url, AGENT)
    stream = browser.open("/api/events")
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.headers["Cache-Control"] == "no-cache"
    assert stream.readline() == b"retry: 2000\n"  # the first chunk comes before any event
    assert stream.readline() == b": connected\n" and stream.readline() == b"\n"
    for n in range(3):
        published = time.monotonic()
        event = web.events.publish("message.status", id=n, profile_id=1, status="delivered")
        lines = [stream.readline() for _ in range(4)]
        # Each event is on the wire well within a second: cheroot writes every chunk through.
        assert time.monotonic() - published < 1.0
        assert lines == [
            f"id: {event.id}\n".encode(),
            b"event: message.status\n",
            f'data: {{"id":{n},"profile_id":1,"status":"delivered"}}\n'.encode(),
            b"\n",
        ]
    # Stopping the server ends the stream (the browser would reconnect to the next one).
    stopper = threading.Thread(target=server.stop)
    started = time.monotonic()
    stopper.start()
    assert b"data:" not in stream.read()  # the stream ends cleanly, with no further event
    stopper.join(5)
    assert time.monotonic() - started < 4
    assert server.hub.count() == 0
