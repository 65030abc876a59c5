"""End to end through the real daemon on a phone's screen (390x844) with the keyboard alone: the
menu toggle, the main actions of /profiles and the Text This Profile form."""

from __future__ import annotations

import pytest
from e2e_helpers import E2E_TIMEOUT_S
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
CARLOS = "+15551230008"  # Carlos Mendes: texted from the form here, with the keyboard only
MAX_TABS = 60

# What has the focus, in words a failure message can show; plus whether it can be seen.
FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return {name: "(body)", visible: false};
    const name = el.getAttribute("aria-label") || el.id
        || (el.textContent || "").trim().slice(0, 40) || el.tagName.toLowerCase();
    const box = el.getBoundingClientRect();
    const visible = el.checkVisibility() && box.width > 0 && box.height > 0
        && box.bottom > 0 && box.top < window.innerHeight && box.left >= 0
        && box.right <= window.innerWidth + 1;
    return {name, visible, tag: el.tagName.toLowerCase()};
}"""


def tab_to(page, locator, what: str, key: str = "Tab") -> list[str]:
    """Press Tab (or ``key``) until ``locator`` has the focus; every element passed on the way
    must be on the screen (a keyboard user must see where the focus is). Returns the names
    passed."""
    passed: list[str] = []
    for _ in range(MAX_TABS):
        page.keyboard.press(key)
        focused = page.evaluate(FOCUSED)
        passed.append(focused["name"])
        assert focused["visible"], f"the focus is on {focused['name']!r}, not visible on screen"
        if locator.evaluate("(el) => el === document.activeElement"):
            return passed
    raise AssertionError(f"{key} never reached {what} in {MAX_TABS} presses: {passed}")


def test_phone_menu_and_profiles_with_keyboard(logged_in_page, gateway_daemon, artifacts_dir):
    page, gw = logged_in_page, gateway_daemon
    page.set_viewport_size(PHONE)
    page.goto(f"{gw.url}/profiles")

    toggle = page.get_by_role("button", name="Menu")
    sidebar = page.locator("#sidebar")
    expect(sidebar).to_be_hidden()
    tab_to(page, toggle, "the Menu button")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(sidebar).to_be_visible()
    inbox_link = sidebar.get_by_role("link", name="Inbox")
    tab_to(page, inbox_link, "the Inbox link in the menu")
    page.screenshot(path=artifacts_dir / "phone-menu-open.png")
    tab_to(page, toggle, "the Menu button", key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(sidebar).to_be_hidden()

    # The search, then the actions of the toolbar and of a row.
    search = page.get_by_label("Search by name or number")
    tab_to(page, search, "the search box")
    page.keyboard.type("Maria")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{gw.url}/profiles?**")
    expect(page.locator("table.profiles-table tbody tr")).to_have_count(1)
    passed = tab_to(page, page.get_by_role("link", name="Add profile"), "Add profile")
    assert "Search" in passed
    tab_to(page, page.get_by_role("link", name="Export CSV"), "Export CSV")
    chat = page.get_by_role("button", name="CHAT")
    tab_to(page, chat, "the CHAT button")
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Chat with Maria Garcia")
    expect(panel).to_be_visible()
    expect(panel.get_by_label("Message")).to_be_focused()
    expect(panel.locator("li.bubble").first).to_be_visible()
    page.screenshot(path=artifacts_dir / "phone-chat.png")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(chat).to_be_focused()


def test_phone_text_this_profile_with_keyboard(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    profile = gw.profile(CARLOS)
    handset = gw.handset(CARLOS)  # on the network before anything is sent to it
    page.set_viewport_size(PHONE)
    page.goto(f"{gw.url}/profiles/{profile['id']}")

    actions = page.get_by_role("button", name="Actions")
    tab_to(page, actions, "the Actions button")
    page.keyboard.press("Enter")
    text_link = page.get_by_role("link", name="Text This Profile")
    expect(text_link).to_be_focused()  # the menu opens with its first item focused
    page.keyboard.press("Enter")
    page.wait_for_url(f"{gw.url}/profiles/{profile['id']}/text")

    tab_to(page, page.get_by_label("From short code"), "the short code")
    box = page.get_by_label("Message")
    tab_to(page, box, "the text box")
    page.keyboard.type("Keyboard only :smile:")
    expect(box).to_have_value("Keyboard only 😄")
    emoji = page.get_by_role("button", name="Emoji")
    tab_to(page, emoji, "the Emoji button")
    page.keyboard.press("Enter")
    picker = page.get_by_role("dialog", name="Emoji")
    expect(picker).to_be_visible()
    page.keyboard.press("Escape")
    expect(picker).to_be_hidden()
    expect(emoji).to_be_focused()
    tab_to(page, page.get_by_role("button", name="Send Message"), "Send Message")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{gw.url}/profiles/{profile['id']}")
    expect(page.locator(".flash")).to_contain_text("Message queued")
    received = handset.wait_for_message(timeout=E2E_TIMEOUT_S)
    assert received.text == "Keyboard only 😄"
