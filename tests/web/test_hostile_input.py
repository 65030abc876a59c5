"""Query strings and JSON bodies that are wrong in odd ways get a clear answer, never a 500."""

from __future__ import annotations

import pytest

from .conftest import AGENT, Web, csrf_token

ODD = ["%C2%B2", "99999999999999999999999", "-1", "1e3", "", "abc"]


@pytest.mark.parametrize("value", ODD)
def test_odd_numbers_in_query_strings(web: Web, value: str) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann")
    client = web.client(AGENT)
    for url in (
        f"/profiles?page={value}",
        f"/profiles/{pid}?before={value}",
        f"/messages?page={value}",
        f"/inbox?page={value}",
    ):
        assert client.get(url).status_code == 200, url
    for url in (f"/api/profiles/{pid}/conversation?after={value}", f"/api/inbox?after={value}"):
        assert client.get(url).status_code in (200, 400), url


def test_lone_surrogates_in_json_are_refused(web: Web) -> None:
    pid = web.store.profiles.add("+15551230001", "Ann")
    client = web.client(AGENT)
    token = csrf_token(client, "/profiles")
    resp = client.post(
        f"/api/profiles/{pid}/messages",
        data='{"text": "hi", "idempotency_key": "\\ud800"}',
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert resp.status_code == 400
    assert web.store.db.value("SELECT COUNT(*) FROM messages") == 0
    resp = client.post(
        f"/api/profiles/{pid}/read",
        json={"last_id": 2**70},
        headers={"X-CSRFToken": token},
    )
    assert resp.status_code == 400


def test_a_form_whose_bytes_are_not_utf8_is_refused_not_sent_as_escapes(web: Web) -> None:
    """Werkzeug keeps a form value whose bytes are not UTF-8 as its percent escapes
    ("a%ED%A0%80b"), which Text This Profile would then have sent as that literal text."""
    pid = web.store.profiles.add("+15551230001", "Ann")
    client = web.client(AGENT)
    token = csrf_token(client, f"/profiles/{pid}/text")
    code = web.config.short_codes[0].code
    body = f"csrf_token={token}&text=a%ED%A0%80b&short_code={code}".encode()
    resp = client.post(
        f"/profiles/{pid}/text", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert resp.status_code == 400
    assert b"UTF-8" in resp.data
    assert web.store.db.value("SELECT COUNT(*) FROM messages") == 0


def test_a_store_fault_in_a_page_is_a_clear_503(web: Web, monkeypatch) -> None:
    from gateway.store import StoreError

    client = web.client(AGENT)

    def broken(*args, **kwargs):
        raise StoreError("/data/gateway.sqlite3: the disk is full; free space on it")

    monkeypatch.setattr(web.store.profiles, "page", broken)
    resp = client.get("/profiles")
    assert resp.status_code == 503
    assert b"the disk is full" in resp.data
