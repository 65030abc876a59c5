"""The Messages page: list, filters, search, pagination, CSV export and a message's parts."""

from __future__ import annotations

import csv
import io
import re

import pytest

from gateway.modem import pdu
from gateway.web.views.messages import PAGE_SIZE, safe_cell

from .conftest import AGENT, Web, csrf_token

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _inbound(web: Web, text: str, number: str = "+15551230001", modem: str = "a") -> int:
    return web.inbound.receive(modem, pdu.encode_deliver(number, text)[0]).message_id


def _outbound(web: Web, text: str, to: str = "+15551230002", short_code: str = "55123") -> int:
    return web.outbox.submit(text, to=to, short_code=short_code).message_id


def _deliver(web: Web, message_id: int, modem: str = "a", report: int = 0) -> None:
    """Walk an outbound message through sending and a status report (``report`` is TP-ST)."""
    msgs = web.store.messages
    assert msgs.claim(message_id, modem)
    m = msgs.get(message_id)
    msgs.ensure_parts(message_id, [(i + 1, "00", 10) for i in range(m["parts_total"])])
    for part in msgs.parts(message_id):
        msgs.part_writing(part["id"], modem)
        msgs.part_sent(part["id"], 40 + part["seq"])
    msgs.finish_sending(message_id)
    category, _ = pdu.status_meaning(report)
    for part in msgs.parts(message_id):
        msgs.part_report(part["id"], report, category)


def test_routes_need_a_login(web: Web) -> None:
    message_id = _inbound(web, "hi")
    anon = web.client(None)
    for url in ("/messages", f"/messages/{message_id}", "/messages/export.csv"):
        resp = anon.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url


def test_list_shows_both_directions_with_status_and_links(web: Web) -> None:
    in_id = _inbound(web, "question from a parent")
    out_id = _outbound(web, "an answer")
    html = web.client(AGENT).get("/messages").get_data(as_text=True)
    assert "question from a parent" in html and "an answer" in html
    assert f'data-message-id="{in_id}"' in html and f'data-message-id="{out_id}"' in html
    assert f'href="/messages/{out_id}"' in html
    profile_id = web.store.messages.get(in_id)["profile_id"]
    assert f'href="/profiles/{profile_id}"' in html
    assert "queued" in html and "received" in html
    assert "js/messages.js" in html


def test_bodies_and_errors_are_escaped(web: Web) -> None:
    in_id = _inbound(web, HOSTILE)
    out_id = _outbound(web, "to be failed")
    web.store.messages.fail(out_id, HOSTILE)
    client = web.client()
    for url in ("/messages", f"/messages/{in_id}", f"/messages/{out_id}"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, url
        assert "&lt;script&gt;alert(" in html, url


def test_filters_and_search(web: Web) -> None:
    _inbound(web, "from the first parent", number="+15551230001", modem="a")
    _inbound(web, "from the second parent", number="+15551230003", modem="b")
    out_id = _outbound(web, "outbound words", short_code="55999")
    web.store.messages.fail(out_id, "no modem")
    client = web.client()

    def bodies(query: str) -> set[str]:
        html = client.get("/messages?" + query).get_data(as_text=True)
        return {
            b
            for b in ("from the first parent", "from the second parent", "outbound words")
            if b in html
        }

    assert bodies("direction=in") == {"from the first parent", "from the second parent"}
    assert bodies("direction=out") == {"outbound words"}
    assert bodies("status=failed") == {"outbound words"}
    assert bodies("short_code=55999") == {"outbound words", "from the second parent"}
    assert bodies("short_code=55123") == {"from the first parent"}
    assert bodies("modem=b") == {"from the second parent"}
    assert bodies("kind=unknown") == {"from the first parent", "from the second parent"}
    assert bodies("q=second") == {"from the second parent"}
    assert bodies("q=%2B15551230001") == {"from the first parent"}


def test_unknown_filter_value_is_named_and_ignored(web: Web) -> None:
    _inbound(web, "still listed")
    resp = web.client().get("/messages?status=bogus&modem=%3Cb%3E")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "status: there is no &#39;bogus&#39;" in html
    assert "modem: there is no &#39;&lt;b&gt;&#39;" in html
    assert "still listed" in html


def test_pages_go_older_and_newer_by_id(web: Web) -> None:
    ids = [_outbound(web, f"numbered message {i:03d}") for i in range(PAGE_SIZE + 3)]
    client = web.client()

    def link(page: str, rel: str) -> str:
        return re.search(rf'rel="{rel}" href="([^"]+)"', page).group(1).replace("&amp;", "&")

    first = client.get("/messages").get_data(as_text=True)
    assert "numbered message 052" in first and "numbered message 003" in first
    assert "numbered message 002" not in first and 'rel="prev"' not in first
    assert link(first, "next") == f"/messages?before={ids[3]}"
    second = client.get(link(first, "next")).get_data(as_text=True)
    assert "numbered message 002" in second and "numbered message 003" not in second
    assert 'rel="next"' not in second
    assert link(second, "prev") == f"/messages?after={ids[2]}"
    back = client.get(link(second, "prev")).get_data(as_text=True)
    assert "numbered message 052" in back and "numbered message 002" not in back
    assert 'rel="prev"' not in back  # the newest page again
    # Filters ride along in the links.
    filtered = client.get("/messages?direction=out").get_data(as_text=True)
    assert link(filtered, "next") == f"/messages?before={ids[3]}&direction=out"
    assert client.get("/messages?before=nonsense").status_code == 200


def test_text_search_finds_words_and_word_starts(web: Web) -> None:
    _inbound(web, "The bus is late again", number="+15551230001")
    _inbound(web, "Two buses, no driver", number="+15551230003")
    _outbound(web, "Business hours: 9 to 5")
    _outbound(web, "ÉCOLE fermée demain")
    _outbound(web, "Okay, see you at 5")
    _inbound(web, "ok", number="+15551230003")
    client = web.client()

    def found(query: str) -> list[str]:
        html = client.get("/messages?q=" + query).get_data(as_text=True)
        return re.findall(r'<div class="clamp">([^<]*)</div>', html)

    newest_first = ["Business hours: 9 to 5", "Two buses, no driver", "The bus is late again"]
    assert found("bus") == newest_first
    assert found("bus late") == ["The bus is late again"]
    assert found("ecole") == ["ÉCOLE fermée demain"]  # case and accents do not matter
    assert found("%22bus%22*(:^") == newest_first  # FTS5's syntax is not the user's
    assert found("%25%25") == []
    # A word of one or two letters is a whole word, not the start of every word it begins.
    assert found("ok") == ["ok"] and found("oka") == ["Okay, see you at 5"]


def test_unknown_message_is_404(web: Web) -> None:
    resp = web.client().get("/messages/4242")
    assert resp.status_code == 404 and b"There is no message 4242" in resp.data


def test_detail_shows_parts_reports_and_verdict(web: Web) -> None:
    out_id = _outbound(web, "x" * 200)  # two GSM-7 parts
    _deliver(web, out_id, modem="a", report=0)
    html = web.client(AGENT).get(f"/messages/{out_id}").get_data(as_text=True)
    assert "Delivered: the network confirmed that all 2 part(s) reached the phone." in html
    assert "1 of 2" in html and "2 of 2" in html
    assert ">41<" in html and ">42<" in html  # TP-MRs
    assert "0 (0x00): " in html and "received by the recipient" in html


def test_detail_of_a_failed_report_says_why(web: Web) -> None:
    out_id = _outbound(web, "short")
    _deliver(web, out_id, report=0x43)
    html = web.client().get(f"/messages/{out_id}").get_data(as_text=True)
    assert "67 (0x43)" in html and "not obtainable" in html
    assert "Failed: the network could not deliver it." in html


def test_maybe_duplicate_is_marked(web: Web) -> None:
    out_id = _outbound(web, "twice?")
    msgs = web.store.messages
    msgs.claim(out_id, "a")
    msgs.ensure_parts(out_id, [(1, "00", 10)])
    part = msgs.parts(out_id)[0]
    msgs.part_writing(part["id"], "a")
    msgs.part_unsent(part["id"], "timeout after the PDU went out", maybe_sent=True)
    msgs.part_writing(part["id"], "a")
    msgs.part_sent(part["id"], 7)
    msgs.finish_sending(out_id)
    client = web.client()
    assert "may have been sent twice" in client.get("/messages").get_data(as_text=True)
    assert "may have been sent twice" in client.get(f"/messages/{out_id}").get_data(as_text=True)


def test_export_csv_of_the_current_filter(web: Web) -> None:
    _inbound(web, '=HYPERLINK("http://evil")', number="+15551230001")
    _inbound(web, 'a plain, "quoted" reply', number="+15551230003")
    _outbound(web, "not inbound")
    resp = web.client(AGENT).get("/messages/export.csv?direction=in")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [r["body"] for r in rows] == ['a plain, "quoted" reply', '\'=HYPERLINK("http://evil")']
    assert all(r["direction"] == "in" for r in rows)
    assert rows[0]["phone"] == "+15551230003"  # a phone number is not a formula
    assert web.store.audit.recent(1)[0]["action"] == "messages.export"


def test_export_is_complete_across_batches(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.web.views.messages.EXPORT_BATCH", 4)
    ids = [_outbound(web, f"m{i}") for i in range(10)]
    text = web.client().get("/messages/export.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == sorted(ids, reverse=True)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("+15551230001", "+15551230001"),
        ("-5", "-5"),
        ("hello", "hello"),
        (None, ""),
        (3, "3"),
    ],
)
def test_safe_cell(value: object, shown: str) -> None:
    assert safe_cell(value) == shown


def test_no_state_changing_routes(web: Web) -> None:
    """The page only reads: a POST is refused whatever the token."""
    client = web.client()
    token = csrf_token(client, "/messages")
    assert client.post("/messages", data={"csrf_token": token}).status_code == 405
