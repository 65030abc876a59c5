"""What a new user tripped over at phone width (issue 11), in the real demo with headless
Chromium at 390 x 844: no page is wider than the screen (Inbox cards pushed CHAT off it; the
Keywords form's fields did too), the emoji picker's last row is above its hint line, the
Profiles table's name opens the profile, and Send is off while the text is empty."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PAGES = [
    "/home",
    "/inbox",
    "/profiles",
    "/profiles/1",
    "/profiles/1/text",
    "/messages",
    "/agent",
    "/broadcasts",
    "/broadcasts/new",
    "/segments",
    "/modems",
    "/settings",
    "/settings/keywords",
    "/api-tokens",
    "/phones",
]

# Elements whose right edge is past the viewport, the page's own scroll width, and whether any
# scrollable box (a table wrapper) hides content sideways: a card that must be swiped is as
# bad as a page that must be.
OVERFLOW_JS = """
() => {
  const d = document.documentElement;
  const wide = [];
  for (const el of document.querySelectorAll('main *, .content *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || getComputedStyle(el).position === 'fixed') continue;
    if (r.right > d.clientWidth + 1) wide.push(`${el.tagName}.${el.className} ${r.right}`);
  }
  return {scroll: d.scrollWidth, client: d.clientWidth, wide: wide.slice(0, 5)};
}
"""


def test_no_page_is_wider_than_a_phone(logged_in_page, gateway_daemon, artifacts_dir):
    page, gw = logged_in_page, gateway_daemon
    page.set_viewport_size(PHONE)
    found = {}
    for path in PAGES:
        page.goto(gw.url + path)
        got = page.evaluate(OVERFLOW_JS)
        if got["scroll"] > got["client"] or got["wide"]:
            found[path] = got
    page.goto(gw.url + "/inbox")
    page.screenshot(path=artifacts_dir / "phone-inbox.png")
    assert found == {}


def test_an_inbox_cards_chat_is_on_the_screen_and_opens_the_chat(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    page.set_viewport_size(PHONE)
    page.goto(gw.url + "/inbox")
    button = page.locator("table.inbox-table tbody tr .chat-open:visible").first
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    button.click()
    expect(page.locator("#chat-panel")).to_be_visible()


def test_the_emoji_pickers_last_row_is_above_its_hint(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    for size in (PHONE, {"width": 1280, "height": 800}):
        page.set_viewport_size(size)
        page.goto(gw.url + "/profiles/1/text")
        page.get_by_role("button", name="Emoji").first.click()
        option = page.locator(".emoji-picker-option").last
        expect(option).to_be_attached()
        # Twice: the groups are laid out as they come into view (content-visibility), so the
        # list's height settles once the last one has been reached.
        for _ in range(2):
            page.evaluate(
                "() => { const l = document.querySelector('.emoji-picker-list');"
                " l.scrollTop = l.scrollHeight; }"
            )
            page.wait_for_timeout(100)
        last = option.bounding_box()
        listed = page.locator(".emoji-picker-list").bounding_box()
        assert last is not None and listed is not None
        assert last["y"] + last["height"] <= listed["y"] + listed["height"] + 1, size
        hint = page.locator(".emoji-picker-hint")
        if hint.is_visible():
            hint_box = hint.bounding_box()
            assert hint_box is not None
            assert last["y"] + last["height"] <= hint_box["y"], size


def test_the_profiles_tables_name_opens_the_profile(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    page.goto(gw.url + "/profiles")
    link = page.locator("table.profiles-table tbody a[data-profile-name]").first
    name = link.inner_text()
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/profiles/\d+$"))
    expect(page.locator("h1")).to_contain_text(name)


def test_send_is_off_while_the_text_is_empty(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    page.goto(gw.url + "/profiles/1/text")
    send = page.get_by_role("button", name="Send Message")
    box = page.get_by_label("Message")
    expect(send).to_be_disabled()
    box.fill("   ")
    expect(send).to_be_disabled()
    box.fill("Hello")
    expect(send).to_be_enabled()
    box.fill("")
    expect(send).to_be_disabled()
