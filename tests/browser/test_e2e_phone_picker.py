"""The emoji picker's rows and the chat's Send at phone and desktop width (issue 11, "what a new
user tripped over"), in the real demo with headless Chromium: as the picker opens, after a search
and scrolled to its end, the lowest row it shows is whole and above the hint line (it opened
with a row cut in half by the hint), on Text This Profile and in the chat panel; the chat's Send
is off while the text is empty and Enter then sends nothing. Screenshots go to
artifacts/screenshots/phone-emoji-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from test_e2e_newuser import new_profile

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


# The emoji picker's list scrolled to its end: the last option's box and the hint's top.
PICKER_END_JS = """
() => {
  const list = document.querySelector('.emoji-picker:not([hidden]) .emoji-picker-list');
  list.scrollTop = list.scrollHeight;
  const options = list.querySelectorAll('.emoji-picker-option');
  const last = options[options.length - 1].getBoundingClientRect();
  const hint = list.parentElement.querySelector('.emoji-picker-hint').getBoundingClientRect();
  const dialog = list.parentElement.getBoundingClientRect();
  return {lastBottom: last.bottom, lastTop: last.top,
          listBottom: list.getBoundingClientRect().bottom,
          hintTop: hint.top, hintHeight: hint.height, dialogBottom: dialog.bottom,
          viewport: innerHeight};
}
"""


# The picker as it opens: the rows the list shows (any part of), the lowest one's box, the
# list's visible bottom and the hint's top.
PICKER_OPEN_JS = """
() => {
  const list = document.querySelector('.emoji-picker:not([hidden]) .emoji-picker-list');
  const box = list.getBoundingClientRect();
  const shown = [...list.querySelectorAll('.emoji-picker-group:not([hidden]) [role=option]')]
    .map(o => o.getBoundingClientRect())
    .filter(r => r.height && r.bottom > box.top + 0.5 && r.top < box.bottom - 0.5);
  const lowest = shown.reduce((a, r) => (r.bottom > a.bottom ? r : a), shown[0]);
  const hint = list.parentElement.querySelector('.emoji-picker-hint').getBoundingClientRect();
  return {rows: shown.length, lastBottom: lowest.bottom, lastTop: lowest.top,
          listBottom: box.bottom, hintTop: hint.top, hintHeight: hint.height,
          dialogBottom: list.parentElement.getBoundingClientRect().bottom, viewport: innerHeight};
}
"""


def picker_open(page) -> dict:
    expect(page.locator(".emoji-picker-option").first).to_be_visible()
    return page.evaluate(PICKER_OPEN_JS)


def picker_end(page) -> dict:
    # Groups are laid out as they come into view (content-visibility), so the list grows while
    # it scrolls: scroll to the end frame by frame until its height stops changing.
    page.evaluate(
        """async () => {
             const l = document.querySelector('.emoji-picker:not([hidden]) .emoji-picker-list');
             let last = -1;
             for (let i = 0; i < 100 && l.scrollHeight !== last; i++) {
               last = l.scrollHeight;
               l.scrollTop = l.scrollHeight;
               await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
             }
           }"""
    )
    return page.evaluate(PICKER_END_JS)


def assert_last_row_above_hint(got: dict, where: str) -> None:
    assert got["hintHeight"] > 0, f"{where}: hint not shown: {got}"
    assert got["lastBottom"] <= got["hintTop"] + 0.5, f"{where}: last row under the hint: {got}"
    assert got["lastBottom"] <= got["listBottom"] + 0.5, f"{where}: last row cut: {got}"
    assert got["dialogBottom"] <= got["viewport"] + 0.5, f"{where}: picker off screen: {got}"


@pytest.mark.parametrize("size", [PHONE, {"width": 1280, "height": 800}], ids=["390", "1280"])
def test_emoji_picker_last_row_is_above_its_hint(
    logged_in_page, gateway_daemon, artifacts_dir, size
):
    page, gw = logged_in_page, gateway_daemon
    pid = new_profile(gw, "+15551239203", "Lena Hartmann")
    page.set_viewport_size(size)
    page.goto(f"{gw.url}/profiles/{pid}/text")
    page.get_by_role("button", name="Emoji").click()
    expect(page.get_by_role("dialog", name="Emoji")).to_be_visible()
    got = picker_open(page)
    page.screenshot(path=artifacts_dir / f"phone-emoji-text-{size['width']}.png")
    assert_last_row_above_hint(got, f"Text This Profile at {size['width']}px, as it opens")
    got = picker_end(page)
    assert_last_row_above_hint(got, f"Text This Profile at {size['width']}px")

    # The chat panel's picker too.
    page.keyboard.press("Escape")
    page.goto(f"{gw.url}/profiles?q=Lena+Hartmann")
    page.locator("tr", has_text="Lena Hartmann").get_by_role("button", name="CHAT").click()
    panel = page.get_by_role("dialog", name="Chat with Lena Hartmann")
    expect(panel.get_by_label("Message")).to_be_enabled()
    panel.get_by_role("button", name="Emoji").click()
    expect(page.get_by_role("dialog", name="Emoji")).to_be_visible()
    got = picker_open(page)
    page.screenshot(path=artifacts_dir / f"phone-emoji-chat-{size['width']}.png")
    assert_last_row_above_hint(got, f"chat at {size['width']}px, as it opens")
    page.keyboard.type("cat")  # a search lays the list out again
    expect(page.locator(".emoji-picker-message")).to_contain_text("found")
    assert_last_row_above_hint(page.evaluate(PICKER_OPEN_JS), f"chat at {size['width']}px, cat")
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    got = picker_end(page)
    assert_last_row_above_hint(got, f"chat at {size['width']}px")


def test_chat_send_is_off_while_the_text_is_empty(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    pid = new_profile(gw, "+15551239205", "Ines Moreau")
    page.goto(f"{gw.url}/profiles?q=Ines+Moreau")
    page.locator("tr", has_text="Ines Moreau").get_by_role("button", name="CHAT").click()
    panel = page.get_by_role("dialog", name="Chat with Ines Moreau")
    box, send = panel.get_by_label("Message"), panel.get_by_role("button", name="Send")
    expect(box).to_be_enabled()
    expect(send).to_be_disabled()
    expect(send).to_have_attribute("title", "Write the message to send it.")
    box.fill("  ")
    expect(send).to_be_disabled()
    box.press("Enter")  # Enter sends: nothing to send, and one reason (the title), no error
    expect(panel.locator(".chat-error")).to_be_hidden()
    box.fill("Hello Ines")
    expect(send).to_be_enabled()
    box.fill("")
    expect(send).to_be_disabled()
    assert not [m for m in gw.store.messages.conversation(pid) if m["direction"] == "out"]
