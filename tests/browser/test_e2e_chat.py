"""End to end through the real daemon: the chat panel on /profiles. A handset's reply appears in
the open panel without reload; Enter sends, Shift+Enter starts a new line; × Close and Esc close
the panel and give the focus back to the CHAT button."""

from __future__ import annotations

import pytest
from e2e_helpers import E2E_TIMEOUT_S
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

JAMES = "+15551230002"  # James Chen: the demo's conversation on 55123, sticky to support-a
LIVE_MS = 2_000  # "appear within a second": two, so that a loaded test machine does not flake


def chat_button(page, name: str):
    row = page.locator("table.profiles-table tbody tr", has_text=name)
    return row.get_by_role("button", name="CHAT")


def test_chat_reply_live_enter_sends_shift_enter_newline_close(
    logged_in_page, gateway_daemon, artifacts_dir
):
    page, gw = logged_in_page, gateway_daemon
    profile = gw.profile(JAMES)
    handset = gw.handset(JAMES)
    modem_number = gw.modem_numbers[profile["sticky_modem"]]

    page.goto(f"{gw.url}/profiles")
    button = chat_button(page, "James Chen")
    button.click()
    panel = page.get_by_role("dialog", name="Chat with James Chen")
    expect(panel).to_be_visible()
    history = panel.locator("ol.history")
    expect(history.locator("li.bubble.in").last).to_contain_text("Can I come at 16:30?")
    box = panel.get_by_label("Message")
    expect(box).to_be_focused()
    expect(panel.locator(".chat-short-code")).to_have_value("55123")
    page.evaluate("window.__sameDocument = true")

    # The handset answers the number it talked with; the panel shows it without reload.
    handset.send(to=modem_number, text="Or 17:00 if that is easier for you")
    expect(history.locator("li.bubble.in").last).to_contain_text(
        "Or 17:00 if that is easier for you", timeout=LIVE_MS
    )

    # Shift+Enter is a new line, Enter sends.
    box.press_sequentially("17:00 works")
    box.press("Shift+Enter")
    box.press_sequentially("See you then 🙂")
    expect(box).to_have_value("17:00 works\nSee you then 🙂")
    expect(history.locator("li.bubble.out", has_text="See you then")).to_have_count(0)
    box.press("Enter")
    sent = history.locator("li.bubble.out").last
    expect(sent.locator(".body-text")).to_have_text("17:00 works\nSee you then 🙂")
    expect(box).to_have_value("")

    received = handset.wait_for_message(
        timeout=E2E_TIMEOUT_S, predicate=lambda m: "See you then" in m.text
    )
    assert received.text == "17:00 works\nSee you then 🙂"
    assert received.sender == modem_number  # the same SIM the conversation was with
    expect(sent).to_have_attribute("data-status", "delivered", timeout=int(E2E_TIMEOUT_S * 1000))
    expect(sent.locator(".chat-mark")).to_have_text("✓✓")
    page.screenshot(path=artifacts_dir / "e2e-chat-panel.png")

    # Esc closes; the focus goes back to the CHAT button that opened the panel.
    box.press("Escape")
    expect(panel).to_be_hidden()
    expect(button).to_be_focused()

    # Open again with the keyboard, close with × Close.
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    expect(history.locator("li.bubble.out").last).to_contain_text("See you then")
    panel.get_by_role("button", name="× Close").click()
    expect(panel).to_be_hidden()
    expect(button).to_be_focused()
    assert page.evaluate("window.__sameDocument") is True


PRIYA = "+15551230005"  # Priya Nair: her chat is only used here


def test_a_late_answer_does_not_undo_a_newer_status(logged_in_page, gateway_daemon):
    """The conversation fetched after a send can come back after the status events that
    followed it: its older status ("sent") must not replace "delivered" for good."""
    page, gw = logged_in_page, gateway_daemon
    handset = gw.handset(PRIYA)
    page.goto(f"{gw.url}/profiles?q=Priya")
    page.get_by_role("button", name="CHAT").click()
    panel = page.get_by_role("dialog", name="Chat with Priya Nair")
    expect(panel.locator(".chat-short-code")).to_have_value("55123")  # loaded
    box = panel.get_by_label("Message")

    held = []  # the conversation requests, answered by the test when it chooses

    def hold(route) -> None:
        held.append(route)

    page.route("**/api/profiles/*/conversation*", hold)
    modem = gw.net.modem(gw.modem_numbers["support-a"])
    latency, modem.send_latency = modem.send_latency, 0.3  # the answer to the send comes first
    try:
        box.fill("Status order check")
        box.press("Enter")
        out = panel.locator("li.bubble.out", has_text="Status order check")
        # By events alone: the fetch that follows the send is held.
        expect(out).to_have_attribute("data-status", "delivered", timeout=int(E2E_TIMEOUT_S * 1000))
        handset.wait_for_message(timeout=E2E_TIMEOUT_S, predicate=lambda m: "order" in m.text)
    finally:
        modem.send_latency = latency
    assert held, "the chat fetched nothing after sending"

    # Now the held answer arrives, as it was when the server wrote it: the message "sent".
    page.evaluate(
        """() => { window.__applied = 0;
            new MutationObserver(() => { window.__applied += 1; })
                .observe(document.querySelector("#chat-panel .chat-short-code"),
                         {childList: true}); }"""
    )
    first = held.pop(0)
    response = first.fetch()
    data = response.json()
    for m in data["messages"]:
        if m["body"] == "Status order check":
            m["status"] = "sent"
    first.fulfill(response=response, json=data)
    page.wait_for_function("() => window.__applied > 0")  # the answer has been applied
    assert out.get_attribute("data-status") == "delivered"
    page.unroute("**/api/profiles/*/conversation*")  # the requests still held go on
