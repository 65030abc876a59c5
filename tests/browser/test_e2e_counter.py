"""The counter on the real Text This Profile page (served by the daemon, wired by compose.js)
shows exactly what tests/vectors/count.json says, and what it shows is what the server sends."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from e2e_helpers import E2E_TIMEOUT_S
from playwright.sync_api import expect

from gateway.modem import text as sms

pytestmark = pytest.mark.browser

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "count.json").read_text(encoding="utf-8")
)
CARLOS = "+15551230008"  # Carlos Mendes: active, subscribed; only his form is used here
FATIMA = "+15551230009"  # Fatima Haddad: receives the multi-line text

# Every text in one round trip: set the box, fire `input` as typing does, read what the counter
# shows. The texts travel as one JSON string (thousands of small arguments are slow).
COUNT_ALL = """(texts) => {
    const box = document.querySelector("form[data-compose] textarea[name=text]");
    const out = document.querySelector("form[data-compose] [data-counter]");
    return JSON.stringify(JSON.parse(texts).map((text) => {
        box.value = text;
        box.dispatchEvent(new Event("input", {bubbles: true}));
        const d = out.dataset;
        return {value: box.value, encoding: d.encoding, parts: Number(d.parts),
                remaining: Number(d.remaining), error: d.error === "true",
                status: out.querySelector(".smscount-status").textContent};
    }));
}"""


def shown_counts(page, texts: list[str]) -> list[dict]:
    return json.loads(page.evaluate(COUNT_ALL, json.dumps(texts)))


def expected(vector: dict, text: str) -> dict:
    """What the counter must show for ``text`` counted like ``vector``: the vector itself, or
    for a text the text box changed (a textarea keeps no CR: CR LF and CR become LF, as the
    form sends them) text.py's answer for what is really in the box."""
    if text == vector["text"]:
        return {k: vector[k] for k in ("encoding", "parts", "remaining")}
    a = sms.analyze(text, ref16=bool(vector.get("ref16")))
    return {"encoding": a.encoding, "parts": a.parts, "remaining": a.remaining}


def check(page, vectors: list[dict]) -> int:
    """Compare the page's counter with every vector; returns how many were shown as written."""
    shown = shown_counts(page, [v["text"] for v in vectors])
    wrong, as_written = [], 0
    for vector, got in zip(vectors, shown, strict=True):
        as_written += got["value"] == vector["text"]
        want = expected(vector, got["value"])
        have = {k: got[k] for k in ("encoding", "parts", "remaining")}
        if got["error"] or have != want:
            wrong.append(f"{vector['note']!r}: shows {have} ({got['status']!r}), wants {want}")
        elif not got["status"].startswith(f"{want['remaining']} character"):
            wrong.append(f"{vector['note']!r}: the visible line says {got['status']!r}")
    assert not wrong, f"{len(wrong)} of {len(vectors)} vectors:\n" + "\n".join(wrong)
    return as_written


def test_counter_on_text_this_profile_matches_every_vector(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    url = f"{gw.url}/profiles/{gw.profile(CARLOS)['id']}/text"
    plain = [v for v in VECTORS if not v.get("ref16")]
    wide = [v for v in VECTORS if v.get("ref16")]
    assert plain and wide

    page.goto(url)
    box = page.locator("form[data-compose] textarea[name=text]")
    expect(box).to_have_attribute("data-ref16", "false")  # the demo's messages.ref16
    expect(page.get_by_role("button", name="Emoji")).to_be_enabled()  # catalog loaded
    as_written = check(page, plain)

    # The same page as the server renders it with messages.ref16: true (only that attribute
    # differs), for the vectors counted with 16-bit concatenation references.
    def with_ref16(route) -> None:
        response = route.fetch()
        body = response.text()
        assert 'data-ref16="false"' in body
        body = body.replace('data-ref16="false"', 'data-ref16="true"')
        route.fulfill(response=response, body=body)

    page.route(url, with_ref16)
    page.goto(url)
    expect(box).to_have_attribute("data-ref16", "true")
    as_written += check(page, wide)
    # Only texts with CR can change in a text box; every other vector was shown as written.
    assert as_written == sum("\r" not in v["text"] for v in VECTORS)


def test_multiline_text_sends_as_counted(logged_in_page, gateway_daemon):
    """A line break typed in the form costs one septet, as the counter says, not CR LF's two:
    160 septets with a line break are one SMS on the page, at the server and at the handset."""
    page, gw = logged_in_page, gateway_daemon
    profile = gw.profile(FATIMA)
    page.goto(f"{gw.url}/profiles/{profile['id']}/text")
    box = page.get_by_label("Message")
    box.fill("a" * 80 + "\n" + "b" * 79)
    counter = page.locator("#text-count")
    expect(counter).to_have_attribute("data-parts", "1")
    expect(counter).to_have_attribute("data-remaining", "0")
    page.get_by_role("button", name="Send Message").click()
    expect(page.locator(".flash")).to_contain_text(re.compile(r"Message queued \(1 SMS\)"))
    received = gw.handset(FATIMA).wait_for_message(timeout=E2E_TIMEOUT_S)
    assert received.text == "a" * 80 + "\n" + "b" * 79
    assert received.parts == 1
