"""End to end through the real daemon and its simulator: log in, find a profile, Text This
Profile with an emoji from the picker and a typed :thumbsup:, see the text reach the simulated
handset from the short code's modem, and its status change on the profile page without reload."""

from __future__ import annotations

import re

import pytest
from e2e_helpers import E2E_TIMEOUT_S, log_in
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PRIYA = "+15551230005"  # Priya Nair: active, subscribed, no conversation yet
WAIT_MS = int(E2E_TIMEOUT_S * 1000)


def test_log_in_find_text_with_emoji_reaches_handset(page, gateway_daemon, artifacts_dir):
    gw = gateway_daemon
    profile = gw.profile(PRIYA)
    handset = gw.handset(PRIYA)

    log_in(page, gw.url)
    page.get_by_role("link", name="Profiles").first.click()
    page.wait_for_url(f"{gw.url}/profiles")

    search = page.get_by_label("Search by name or number")
    search.fill("Priya")
    search.press("Enter")
    page.wait_for_url(re.compile(r"/profiles\?q=Priya"))
    rows = page.locator("table.profiles-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Priya Nair")
    rows.first.get_by_role("link", name=PRIYA).click()
    page.wait_for_url(f"{gw.url}/profiles/{profile['id']}")

    page.get_by_role("button", name="Actions").click()
    page.get_by_role("link", name="Text This Profile").click()
    page.wait_for_url(f"{gw.url}/profiles/{profile['id']}/text")
    expect(page.get_by_label("From short code")).to_have_value("55123")

    box = page.get_by_label("Message")
    counter = page.locator("#text-count")
    box.click()
    page.keyboard.type("Hello ")
    expect(counter).to_have_attribute("data-encoding", "gsm7")

    # The emoji picker with the keyboard: open, search, Enter inserts the first match.
    emoji_button = page.get_by_role("button", name="Emoji")
    expect(emoji_button).to_be_enabled()
    emoji_button.focus()
    page.keyboard.press("Enter")
    picker = page.get_by_role("dialog", name="Emoji")
    expect(picker).to_be_visible()
    page.keyboard.type("rocket")
    expect(page.locator(".emoji-picker-option:visible").first).to_have_text("🚀")
    page.keyboard.press("Enter")
    expect(picker).to_be_hidden()
    expect(box).to_be_focused()

    page.keyboard.type(" launch :thumbsup:")
    expected = "Hello 🚀 launch 👍"
    expect(box).to_have_value(expected)  # :thumbsup: became the emoji as its colon was typed
    expect(counter).to_have_attribute("data-encoding", "ucs2")
    expect(counter).to_contain_text("Unicode")
    units = len(expected.encode("utf-16-le")) // 2
    expect(counter).to_have_attribute("data-remaining", str(70 - units))
    page.screenshot(path=artifacts_dir / "e2e-text-this-profile.png")

    page.get_by_role("button", name="Send Message").click()
    page.wait_for_url(f"{gw.url}/profiles/{profile['id']}")
    expect(page.locator(".flash")).to_contain_text("Message queued (1 SMS) from 55123")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    received = handset.wait_for_message(timeout=E2E_TIMEOUT_S, predicate=lambda m: "🚀" in m.text)
    assert received.text == expected
    sent = gw.store.messages.conversation(profile["id"])[-1]
    assert sent["direction"] == "out" and sent["body"] == expected
    assert sent["modem_id"] in gw.short_code_modems["55123"]
    assert received.sender == gw.modem_numbers[sent["modem_id"]]

    row = page.locator(f"#message-history tr[data-message-id='{sent['id']}']")
    expect(row.locator("td[data-label='Message']")).to_have_text(expected)
    status = row.locator("td[data-status]")
    expect(status).to_contain_text(re.compile(r"\b(sent|delivered)\b"), timeout=WAIT_MS)
    expect(status).to_contain_text("delivered", timeout=WAIT_MS)
    assert page.evaluate("window.__sameDocument") is True
    page.screenshot(path=artifacts_dir / "e2e-profile-after-send.png")
