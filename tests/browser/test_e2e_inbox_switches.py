"""End to end through the real daemon: the Inbox's two switches. A live row (made by inbox.js
from the event) offers Reactivate for an inactive sender and Re-subscribe for one who opted out;
each button changes its own switch and leaves the other alone."""

from __future__ import annotations

import pytest
from e2e_helpers import E2E_TIMEOUT_S
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SAMUEL = "+15551230006"  # Samuel Brooks: inactive in the demo's seed, subscribed
WAIT_MS = int(E2E_TIMEOUT_S * 1000)


def test_reactivate_and_resubscribe_are_separate_buttons(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    handset = gw.handset(SAMUEL)
    with page.expect_response(lambda r: "/api/inbox" in r.url, timeout=WAIT_MS):
        page.goto(f"{gw.url}/inbox")

    handset.send(to=gw.modem_numbers["support-a"], text="Hello, we are back in town")
    row = page.locator("tr", has_text="we are back in town").first
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row.get_by_role("button", name="Reactivate")).to_be_visible()
    expect(row.get_by_role("button", name="Re-subscribe")).to_be_hidden()
    with page.expect_navigation(timeout=WAIT_MS):
        row.get_by_role("button", name="Reactivate").click()
    expect(page.locator("main")).to_contain_text("Samuel Brooks is active again.", timeout=WAIT_MS)
    profile = gw.profile(SAMUEL)
    assert (profile["status"], profile["subscribed"]) == ("active", 1)

    # He opts out while the page is open: his rows now offer Re-subscribe, and no Reactivate.
    handset.send(to=gw.modem_numbers["support-a"], text="STOP")
    handset.wait_for_message(timeout=E2E_TIMEOUT_S)  # the confirmation
    stop_row = page.locator("tr", has_text="STOP").first
    expect(stop_row).to_be_visible(timeout=WAIT_MS)
    expect(stop_row.get_by_role("button", name="Re-subscribe")).to_be_visible(timeout=WAIT_MS)
    expect(stop_row.get_by_role("button", name="Reactivate")).to_be_hidden()
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    with page.expect_navigation(timeout=WAIT_MS):
        stop_row.get_by_role("button", name="Re-subscribe").click()
    assert asked and asked[0].startswith("Subscribe Samuel Brooks again?")
    expect(page.locator("main")).to_contain_text(
        # The row's button re-subscribes to the short code the STOP went to.
        "Samuel Brooks is subscribed to 55123 again.",
        timeout=WAIT_MS,
    )
    profile = gw.profile(SAMUEL)
    assert (profile["status"], profile["subscribed"]) == ("active", 1)
