"""End to end through the real daemon: no CHAT button on /profiles for a profile that opted out,
whether the demo seeded it so or the handset texts STOP while we watch."""

from __future__ import annotations

import pytest
from e2e_helpers import E2E_TIMEOUT_S
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TOM = "+15551230004"  # Tom Becker: opted out in the demo's seed (he texted STOP to 55999)
OLIVER = "+15551230010"  # Oliver Smith: active and subscribed until he texts STOP here


def row(page, name: str):
    return page.locator("table.profiles-table tbody tr", has_text=name)


def test_chat_absent_for_opted_out_profiles(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    page.goto(f"{gw.url}/profiles")
    tom = row(page, "Tom Becker")
    expect(tom).to_contain_text("opted out")
    expect(tom.get_by_role("button", name="CHAT")).to_have_count(0)
    oliver = row(page, "Oliver Smith")
    expect(oliver.get_by_role("button", name="CHAT")).to_be_visible()

    handset = gw.handset(OLIVER)
    # STOP ALL: a STOP to one short code alone leaves the others (and the chat from them).
    handset.send(to=gw.modem_numbers["support-a"], text="STOP ALL")
    # The confirmation goes out after the opt-out is committed.
    confirmation = handset.wait_for_message(timeout=E2E_TIMEOUT_S)
    assert "unsubscribed" in confirmation.text.lower()
    assert not gw.profile(OLIVER)["subscribed"]

    page.reload()
    oliver = row(page, "Oliver Smith")
    expect(oliver).to_contain_text("opted out")
    expect(oliver.get_by_role("button", name="CHAT")).to_have_count(0)
    # Every other subscribed, active profile keeps its button.
    expect(row(page, "Maria Garcia").get_by_role("button", name="CHAT")).to_be_visible()
