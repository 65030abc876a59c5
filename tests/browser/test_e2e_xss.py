"""End to end through the real daemon: a handset's text made of HTML is shown as text, inert, on
every page that shows handset text, whether the server rendered it or a script added it live."""

from __future__ import annotations

import pytest
from e2e_helpers import E2E_TIMEOUT_S
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

HANNAH = "+15551230007"  # Hannah Lee: active, subscribed, no conversation in the demo
HOSTILE = 'Hi <script>window.__xss=1</script> <img src=x onerror="window.__xss=2"> bye'
WAIT_MS = int(E2E_TIMEOUT_S * 1000)

# Anything the text could have become if it were parsed as HTML.
INERT = """() => ({
    xss: window.__xss === undefined ? null : window.__xss,
    imgs: Array.from(document.images)
        .filter((i) => /\\/x$/.test(i.src) || i.hasAttribute("onerror")).length,
    scripts: Array.from(document.scripts).filter((s) => s.textContent.includes("__xss")).length,
})"""


def assert_inert(page, where: str, shown) -> None:
    """``shown`` (a locator) holds the text literally, and nothing ran or was created from it."""
    expect(shown.first).to_contain_text(HOSTILE)
    assert page.evaluate(INERT) == {"xss": None, "imgs": 0, "scripts": 0}, where


def test_hostile_handset_text_is_shown_inert(logged_in_page, gateway_daemon, artifacts_dir):
    page, gw = logged_in_page, gateway_daemon
    handset = gw.handset(HANNAH)

    # The Inbox open when the text arrives: its row is added live by inbox.js, from the event
    # itself (the page reads /api/inbox once, when its event stream opens, and not again).
    with page.expect_response(lambda r: "/api/inbox" in r.url, timeout=WAIT_MS):
        page.goto(f"{gw.url}/inbox")
    expect(page.locator("main")).to_be_visible()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/inbox" in r.url else None)
    handset.send(to=gw.modem_numbers["support-a"], text=HOSTILE)
    live_row = page.locator("tr", has_text="Hannah Lee")
    expect(live_row.first).to_be_visible(timeout=WAIT_MS)
    assert_inert(page, "inbox (live row)", live_row.locator(".js-body"))
    assert asked == [], "the live row was fetched, not taken from its event"
    page.screenshot(path=artifacts_dir / "e2e-xss-inbox.png")

    page.reload()  # the same row rendered by the server
    assert_inert(page, "inbox", page.locator("tr", has_text="Hannah Lee").locator(".js-body"))

    page.goto(f"{gw.url}/agent")
    item = page.locator(".queue-item", has_text="Hannah Lee")
    assert_inert(page, "agent view queue", item.locator(".queue-messages li"))
    item.get_by_role("button", name="Answer").click()
    work = page.locator("#agent-work")
    expect(work).to_be_visible()
    assert_inert(page, "agent view conversation", work.locator("li.bubble.in .body-text"))
    work.get_by_role("button", name="Return to queue").click()
    expect(item.get_by_role("button", name="Answer")).to_be_visible()

    profile = gw.profile(HANNAH)
    page.goto(f"{gw.url}/profiles/{profile['id']}")
    assert_inert(page, "profile history", page.locator("#message-history td.body-text"))

    page.goto(f"{gw.url}/profiles?q=Hannah")
    page.locator("table.profiles-table").get_by_role("button", name="CHAT").click()
    panel = page.get_by_role("dialog", name="Chat with Hannah Lee")
    expect(panel).to_be_visible()
    assert_inert(page, "chat panel", panel.locator("li.bubble.in .body-text"))

    page.goto(f"{gw.url}/home")
    assert_inert(page, "home", page.locator("main"))
