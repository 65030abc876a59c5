"""Screenshots of the main pages of the demo, on a desktop (1280x800) and a phone (390x844), saved
to artifacts/screenshots/screen-*.png for people to look at (a few are copied to docs/screenshots
for docs/web.md). Each page is also checked to load without a console error or outside request
(the ``page`` fixture) and to show its heading."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MARIA = "+15551230001"  # Maria Garcia: the demo's friendliest conversation
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def test_login_screen(page, gateway_daemon, artifacts_dir):
    page.set_viewport_size(DESKTOP)
    page.goto(f"{gateway_daemon.url}/login")
    expect(page.get_by_label("User name")).to_be_focused()
    page.screenshot(path=artifacts_dir / "screen-login.png")


def test_main_screens(logged_in_page, gateway_daemon, artifacts_dir):
    page, gw = logged_in_page, gateway_daemon
    maria = gw.profile(MARIA)

    def shot(name: str, path: str, heading: str) -> None:
        page.goto(f"{gw.url}{path}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        page.screenshot(path=artifacts_dir / f"screen-{name}.png")

    shot("home", "/home", "Home")
    shot("profiles", "/profiles", "Profiles")
    shot("profile", f"/profiles/{maria['id']}", "Maria Garcia")

    page.goto(f"{gw.url}/profiles/{maria['id']}/text")
    expect(page.get_by_role("button", name="Emoji")).to_be_enabled()
    page.get_by_label("Message").click()
    page.keyboard.type("Sofia's class trip is on Friday — bring a packed lunch :thumbsup:")
    expect(page.locator("#text-count")).to_have_attribute("data-encoding", "ucs2")
    page.screenshot(path=artifacts_dir / "screen-text-this-profile.png")

    page.goto(f"{gw.url}/profiles")
    page.locator("tr", has_text="Maria Garcia").get_by_role("button", name="CHAT").click()
    panel = page.get_by_role("dialog", name="Chat with Maria Garcia")
    expect(panel.locator("li.bubble").last).to_be_visible()
    page.screenshot(path=artifacts_dir / "screen-chat.png")
    panel.get_by_role("button", name="× Close").click()

    shot("inbox", "/inbox", "Inbox")
    shot("agent", "/agent", "Agent View")
    page.locator(".queue-item").first.get_by_role("button", name="Answer").click()
    expect(page.locator("#agent-work li.bubble").first).to_be_visible()
    page.screenshot(path=artifacts_dir / "screen-agent-answering.png")
    page.get_by_role("button", name="Return to queue").click()
    expect(page.locator("#agent-work")).to_be_hidden()

    shot("messages", "/messages", "Messages")
    shot("modems", "/modems", "Modems")
    expect(page.locator(".modem-card [data-field=state]", has_text="up")).to_have_count(3)
    page.screenshot(path=artifacts_dir / "screen-modems.png")
    shot("settings", "/settings", "Settings")
    shot("phones", "/phones", "Phones")

    page.set_viewport_size(PHONE)
    shot("phone-profiles", "/profiles", "Profiles")
    page.locator("tr", has_text="Maria Garcia").get_by_role("button", name="CHAT").click()
    expect(panel.locator("li.bubble").last).to_be_visible()
    page.screenshot(path=artifacts_dir / "screen-phone-chat.png")
    shot("phone-home", "/home", "Home")
    page.get_by_role("button", name="Menu").click()
    expect(page.locator("#sidebar")).to_be_visible()
    page.screenshot(path=artifacts_dir / "screen-phone-menu.png")
