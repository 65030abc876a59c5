"""Settings → Webhooks: admins only; add (a secret is made and shown), remove, the dead-letter
list and "resend"; what a receiver answered is shown as text, never as HTML."""

from __future__ import annotations

from gateway.store.states import AgentState, MessageStatus
from gateway.store.times import iso, now

from .conftest import AGENT, Web, csrf_token


def _inbound(web: Web) -> None:
    profile, _ = web.store.profiles.get_or_create("+12025550120")
    web.store.messages.add_inbound(
        profile_id=profile["id"], phone="+12025550120", short_code="55123", modem_id="a",
        body="hi", encoding=None, parts_total=1, status=MessageStatus.RECEIVED, kind="reply",
        received_at=iso(now()), agent_state=AgentState.OPEN,
    )  # fmt: skip


def test_agents_may_not_see_or_change_webhooks(web: Web) -> None:
    agent = web.client(AGENT)
    assert agent.get("/settings/webhooks").status_code == 403
    token = csrf_token(agent, "/home")
    resp = agent.post(
        "/settings/webhooks",
        data={"short_code": "55123", "url": "https://x.example/h", "csrf_token": token},
    )
    assert resp.status_code == 403
    assert web.services.webhooks.all() == []


def test_add_shows_the_secret_and_remove(web: Web) -> None:
    admin = web.client()
    token = csrf_token(admin, "/settings/webhooks")
    resp = admin.post(
        "/settings/webhooks",
        data={
            "short_code": "55123",
            "url": "https://crm.example.org/sms",
            "event-inbound": "1",
            "event-opt": "1",
            "csrf_token": token,
        },
    )
    assert resp.status_code == 302 and "new=" in resp.headers["Location"]
    [hook] = web.services.webhooks.all()
    assert hook.events == ("inbound", "opt")
    page = admin.get(resp.headers["Location"]).get_data(as_text=True)
    assert hook.secret in page and "details open" in page
    assert web.store.audit.recent(1)[0]["action"] == "webhook.add"

    bad = admin.post(
        "/settings/webhooks",
        data={"short_code": "55123", "url": "javascript:alert(1)", "csrf_token": token},
        follow_redirects=True,
    )
    assert "url: a webhook URL starts with http" in bad.get_data(as_text=True)
    assert len(web.services.webhooks.all()) == 1

    resp = admin.post(f"/settings/webhooks/{hook.id}/remove", data={"csrf_token": token})
    assert resp.status_code == 302 and web.services.webhooks.all() == []


def test_dead_letters_are_listed_escaped_and_resent(web: Web) -> None:
    hooks = web.services.webhooks
    hook = hooks.add("55123", "http://127.0.0.1:9/h", ["inbound"], user="t")
    for _ in range(3):
        _inbound(web)
    # Each attempt fails and gives up at once (as the 20th of max_attempts would).
    for d in web.store.webhooks.next_pending(hook.id):
        web.store.webhooks.attempt_failed(d, "the receiver answered 500: <b>x</b>", iso(now()),
                                          iso(now()), give_up=True)  # fmt: skip
    admin = web.client()
    page = admin.get("/settings/webhooks").get_data(as_text=True)
    assert page.count('data-delivery="') == 3
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    token = csrf_token(admin, "/settings/webhooks")
    [first, *_] = hooks.dead_letters(hook.id)
    resp = admin.post(f"/settings/webhooks/dead/{first.id}/resend", data={"csrf_token": token})
    assert resp.status_code == 302
    assert hooks.get(hook.id).pending == 1 and hooks.get(hook.id).dead == 2
    admin.post(f"/settings/webhooks/{hook.id}/resend", data={"csrf_token": token})
    assert hooks.get(hook.id).pending == 3 and hooks.get(hook.id).dead == 0
    assert [r["action"] for r in web.store.audit.recent(2)] == ["webhook.resend"] * 2


def test_settings_links_to_webhooks(web: Web) -> None:
    page = web.client().get("/settings").get_data(as_text=True)
    assert 'href="/settings/webhooks"' in page
