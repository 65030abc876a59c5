"""Settings › Keywords (admins add, see and remove keywords; agents may not) and the places
the profile pages show subscription per short code: Text This Profile's drop-down offers only
the short codes the profile may be texted from, with the reason for the others; the profile
page changes one short code or all (issue 11)."""

from __future__ import annotations

import html as htmllib
import json
import re

from gateway.messaging.subscriptions import OptSource

from .conftest import AGENT, Web, csrf_token

PHONE = "+15551230001"


def page(resp) -> str:
    return resp.get_data(as_text=True)


def _options(html: str) -> dict[str, str]:
    """The short-code drop-down's options: value -> the whole <option ...>text."""
    select = html[html.index('<select id="short_code"') : html.index("</select>")]
    return {
        m.group(1): htmllib.unescape(m.group(0))
        for m in re.finditer(r'<option value="([^"]*)"[^>]*>[^<]*', select)
    }


def test_the_drop_down_offers_only_the_short_codes_the_profile_may_be_texted_from(
    web: Web,
) -> None:
    pid = web.store.profiles.add(PHONE, "Ann")
    web.services.subscriptions.unsubscribe(pid, OptSource.by_hand("t"), short_code="55123")
    client = web.client(AGENT)
    html = page(client.get(f"/profiles/{pid}/text"))
    options = _options(html)
    assert "disabled" in options["55123"]
    assert "— The profile has opted out of 55123; they must text START" in options["55123"]
    assert "disabled" not in options["55999"] and "selected" in options["55999"]
    assert 'class="form-error" role="status"' not in html  # it can be texted: no warning
    # A post naming the short code anyway is refused with the same reason.
    resp = client.post(
        f"/profiles/{pid}/text",
        data={"csrf_token": csrf_token(client, f"/profiles/{pid}"), "text": "hi",
              "short_code": "55123"},
    )  # fmt: skip
    assert resp.status_code == 400 and "opted out of 55123" in page(resp)
    resp = client.post(
        f"/profiles/{pid}/text",
        data={"csrf_token": csrf_token(client, f"/profiles/{pid}"), "text": "hi",
              "short_code": "55999"},
    )  # fmt: skip
    assert resp.status_code == 302
    assert web.store.messages.page().rows[0]["short_code"] == "55999"


def test_opted_out_of_all_nothing_is_offered_and_the_page_says_why(web: Web) -> None:
    pid = web.store.profiles.add(PHONE, "Ann", subscribed=False)
    html = page(web.client(AGENT).get(f"/profiles/{pid}/text"))
    assert all("disabled" in o for o in _options(html).values())
    assert "The profile has opted out; they must text START" in html


def test_the_profile_page_changes_one_short_code_or_all(web: Web) -> None:
    pid = web.store.profiles.add(PHONE, "Ann")
    client = web.client(AGENT)
    token = csrf_token(client, f"/profiles/{pid}")
    resp = client.post(
        f"/profiles/{pid}/opt-out", data={"csrf_token": token, "short_code": "55999"}
    )
    assert resp.status_code == 302
    html = page(client.get(f"/profiles/{pid}"))
    assert 'data-subscription="55999">opted out' in html
    assert 'data-subscription="55123">subscribed' in html
    assert "subscribed to 55123" in html
    assert "Opted out of 55999 by hand" in html
    assert "opted out of 55999" in html  # the opt history names the short code
    resp = client.post(f"/profiles/{pid}/resubscribe", data={"csrf_token": token})
    assert resp.status_code == 302
    assert web.store.subscriptions.subscribed(pid, "55999")
    html = page(client.get(f"/profiles/{pid}"))
    assert "subscribed to every short code" in html
    bad = client.post(f"/profiles/{pid}/opt-out", data={"csrf_token": token, "short_code": "1"})
    assert bad.status_code == 400


def test_the_profile_list_names_the_short_codes_that_differ(web: Web) -> None:
    ann = web.store.profiles.add(PHONE, "Ann")
    bob = web.store.profiles.add("+15551230002", "Bob", subscribed=False)
    by = OptSource.by_hand("t")
    web.services.subscriptions.unsubscribe(ann, by, short_code="55123")
    web.services.subscriptions.subscribe(bob, by, short_code="55999")
    html = page(web.client(AGENT).get("/profiles"))
    assert 'subscribed <span class="muted" data-opted-out-of>except 55123</span>' in html
    assert "but subscribed to 55999" in html


def _add_form(client, **fields: str):
    data = {
        "csrf_token": csrf_token(client, "/settings/keywords"),
        "short_code": "55123",
        "word": "School",
        "reply": "Welcome!",
        "campaign": "",
        "time_limit_minutes": "1440",
        "exit_word": "EXIT",
        "q1_ask": "Which school?",
        "q1_field": "school",
        "q1_choices": "Lincoln, Washington",
        **fields,
    }
    return client.post("/settings/keywords", data=data)


def test_admins_add_see_and_remove_keywords(web: Web) -> None:
    admin = web.client()
    assert 'id="keywords-link"' in page(admin.get("/settings"))
    resp = _add_form(admin)
    assert resp.status_code == 302
    html = page(admin.get("/settings/keywords"))
    assert "Keyword SCHOOL added to 55123." in html
    row = html[html.index('data-keyword="55123/SCHOOL"') :]
    row = row[: row.index("</tr>")]
    assert "Which school?" in row and "<code>school</code>" in row
    assert "Lincoln, Washington" in row and "0 started, 0 open, 0 done" in row
    (kw,) = web.services.keywords.live()
    assert web.store.audit.recent(1)[0]["action"] == "keyword.add"
    remove = admin.post(
        f"/settings/keywords/{kw['id']}/remove",
        data={"csrf_token": csrf_token(admin, "/settings/keywords")},
    )
    assert remove.status_code == 302
    assert "No keyword yet." in page(admin.get("/settings/keywords"))


def test_a_refused_keyword_keeps_the_form_and_marks_the_fields(web: Web) -> None:
    admin = web.client()
    resp = _add_form(admin, word="stop", q1_field="phone", time_limit_minutes="soon")
    assert resp.status_code == 400
    html = page(resp)
    assert 'id="time_limit_minutes-error"' in html and "whole number of minutes" in html
    resp = _add_form(admin, word="stop", q1_field="phone")
    html = page(resp)
    assert "is an opt-out keyword of 55123" in html
    assert "question 1: field &#39;phone&#39; is a profile column" in html
    assert 'value="Which school?"' in html  # what was typed is kept
    assert web.services.keywords.live() == []


def test_agents_may_not_manage_keywords(web: Web) -> None:
    agent = web.client(AGENT)
    assert agent.get("/settings/keywords").status_code == 403
    token = csrf_token(agent, "/home")
    resp = agent.post("/settings/keywords", data={"csrf_token": token, "word": "JOIN"})
    assert resp.status_code == 403


def test_a_form_without_its_csrf_token_is_refused(web: Web) -> None:
    admin = web.client()
    resp = admin.post("/settings/keywords", data={"short_code": "55123", "word": "JOIN"})
    assert resp.status_code == 400
    assert web.services.keywords.live() == []


def test_an_inbox_row_changes_the_subscription_to_its_own_short_code(web: Web) -> None:
    from gateway.modem.pdu import encode_deliver

    web.inbound.receive("a", encode_deliver(PHONE, "STOP")[0])  # modem a: 55123
    pid = web.store.profiles.by_phone(PHONE)["id"]
    client = web.client(AGENT)
    html = page(client.get("/inbox?kind=opt-out"))
    row = re.search(r'<tr data-id="\d+"[^>]*data-short-code="55123">.*?</tr>', html, re.S)
    assert row is not None
    assert 'opted out<span class="js-code-of"> of 55123</span>' in row.group(0)
    resubscribe = re.search(r'<form[^>]*class="inline js-resubscribe"[^>]*>', row.group(0))
    assert " hidden" not in resubscribe.group(0)
    assert 'name="short_code" class="js-short-code" value="55123"' in row.group(0)
    resp = client.post(
        f"/inbox/profiles/{pid}/resubscribe",
        data={"csrf_token": csrf_token(client, "/inbox"), "short_code": "55123"},
    )
    assert resp.status_code == 302
    assert web.store.subscriptions.subscribed(pid, "55123")
    last = web.store.opt_events.last(pid)
    assert (last["action"], last["short_code"], last["all_codes"]) == ("opt_in", "55123", 0)


def test_admins_edit_what_a_keyword_does(web: Web) -> None:
    admin = web.client()
    assert _add_form(admin, double_opt_in="yes").status_code == 302
    (kw,) = web.services.keywords.live()
    html = page(admin.get(f"/settings/keywords/{kw['id']}/edit"))
    assert "Edit SCHOOL of 55123" in html and 'value="Lincoln, Washington"' in html
    assert 'id="word"' not in html  # the word and short code stay
    assert "reply Y within 1 day" in html
    data = {
        "csrf_token": csrf_token(admin, "/settings/keywords"),
        "question_rows": "4",
        "reply": "Welcome back!",
        "campaign": "Schools",
        "double_opt_in": "yes",
        # The standard text asking for Y, as the form showed it: it follows the new limit.
        "confirm_prompt": kw["confirm_prompt"],
        "time_limit_minutes": "120",
        "exit_word": "EXIT",
        "q1_ask": "Which school?",
        "q1_field": "school",
        "q1_choices": "Lincoln, Washington, Roosevelt",
        "q2_ask": "Which grade?",
        "q2_field": "grade",
    }
    resp = admin.post(f"/settings/keywords/{kw['id']}/edit", data=data)
    assert resp.status_code == 302
    row = web.store.keywords.get(kw["id"])
    assert row["reply"] == "Welcome back!" and row["time_limit_minutes"] == 120
    assert "reply Y within 2 hours" in row["confirm_prompt"]
    assert [q["field"] for q in json.loads(row["questions"])] == ["school", "grade"]
    assert web.store.audit.recent(1)[0]["action"] == "keyword.update"
    bad = admin.post(f"/settings/keywords/{kw['id']}/edit", data={**data, "reply": ""})
    assert bad.status_code == 400 and "the automatic reply is empty" in page(bad)
    assert admin.get("/settings/keywords/999/edit").status_code == 404
