"""The API tokens page (every user: their own tokens; admins: anyone's) and the API reference
page rendered from the OpenAPI document; both linked from Settings."""

from __future__ import annotations

import re

from gateway import __version__
from gateway.web.api.openapi import document

from .conftest import ADMIN, AGENT, Web, csrf_token


def _secret(html: str) -> str:
    found = re.search(r'value="(gw_[A-Za-z0-9_-]+)"', html)
    assert found, "no token shown"
    return found.group(1)


def test_an_agent_creates_a_token_shown_once_that_works(web: Web) -> None:
    client = web.client(AGENT)
    token = csrf_token(client, "/api-tokens")
    resp = client.post("/api-tokens", data={"csrf_token": token, "label": "booking system"})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    secret = _secret(html)
    assert "not shown again" in html
    assert secret not in client.get("/api-tokens").get_data(as_text=True)
    me = web.app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json["user"] == "agent"
    [row] = web.store.api_tokens.list("agent")
    assert (row["label"], row["created_by"]) == ("booking system", "agent")
    assert web.store.audit.recent(5)[0]["action"] == "token.create"


def test_creating_a_token_needs_the_csrf_token(web: Web) -> None:
    client = web.client(AGENT)
    resp = client.post("/api-tokens", data={"label": "x"})
    assert resp.status_code == 400
    assert web.store.api_tokens.list() == []


def test_an_agent_sees_only_their_tokens_and_cannot_act_for_others(web: Web) -> None:
    admins = web.store.api_tokens.create("admin", "admin's monitor")
    web.store.api_tokens.create("agent", "mine")
    client = web.client(AGENT)
    html = client.get("/api-tokens").get_data(as_text=True)
    assert "mine" in html and "admin&#39;s monitor" not in html
    token = csrf_token(client, "/api-tokens")
    resp = client.post("/api-tokens", data={"csrf_token": token, "user": "admin"})
    assert resp.status_code == 403
    resp = client.post(f"/api-tokens/{admins.id}/revoke", data={"csrf_token": token})
    assert resp.status_code == 403
    assert web.store.api_tokens.get(admins.id)["revoked_at"] is None


def test_an_admin_makes_and_revokes_tokens_for_anyone(web: Web) -> None:
    client = web.client(ADMIN)
    token = csrf_token(client, "/api-tokens")
    resp = client.post("/api-tokens", data={"csrf_token": token, "user": "agent", "label": "x"})
    secret = _secret(resp.get_data(as_text=True))
    [row] = web.store.api_tokens.list("agent")
    resp = client.post(f"/api-tokens/{row['id']}/revoke", data={"csrf_token": token})
    assert resp.status_code == 302
    assert web.store.api_tokens.get(row["id"])["revoked_at"] is not None
    me = web.app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 401
    html = client.get("/api-tokens").get_data(as_text=True)
    assert "revoked" in html


def test_a_bad_label_or_a_disabled_user_is_refused_with_the_reason(web: Web) -> None:
    client = web.client(ADMIN)
    token = csrf_token(client, "/api-tokens")
    resp = client.post("/api-tokens", data={"csrf_token": token, "label": "x" * 101})
    assert resp.status_code == 400 and "at most 100" in resp.get_data(as_text=True)
    web.store.users.set_disabled("agent", True)
    resp = client.post("/api-tokens", data={"csrf_token": token, "user": "agent"})
    assert resp.status_code == 400 and "disabled" in resp.get_data(as_text=True)
    assert web.store.api_tokens.list() == []


def test_the_reference_page_shows_every_operation_and_is_linked_from_settings(web: Web) -> None:
    client = web.client(AGENT)
    html = client.get("/api-tokens/reference").get_data(as_text=True)
    doc = document(__version__)
    for path, methods in doc["paths"].items():
        for method in methods:
            assert f"{method.upper()} /api/v1{path}" in html, (method, path)
    for name in doc["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    assert 'src="http' not in html and 'href="http' not in html  # nothing from another host
    settings = web.client(ADMIN).get("/settings").get_data(as_text=True)
    assert 'href="/api-tokens"' in settings and 'href="/api-tokens/reference"' in settings
    assert 'href="/api-tokens"' in client.get("/home").get_data(as_text=True)  # the left pane


def test_the_reference_pages_code_spans_escape_everything_else() -> None:
    from gateway.web.views.api_tokens import ticks

    assert str(ticks("<b>`a<i>`</b>")) == "&lt;b&gt;<code>a&lt;i&gt;</code>&lt;/b&gt;"


def test_a_token_of_a_disabled_user_is_shown_as_such(web: Web) -> None:
    web.store.api_tokens.create("agent", "nightly sync")
    web.store.users.set_disabled("agent", True)
    html = web.client(ADMIN).get("/api-tokens").get_data(as_text=True)
    row = html[html.index("nightly sync") :].split("</tr>")[0]
    assert "user disabled" in row and "badge-ok" not in row
