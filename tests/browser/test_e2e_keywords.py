"""End to end through the real demo daemon (issue 11): an admin adds a keyword with a double
opt-in and a question on Settings › Keywords; a handset texts it, confirms with Y and answers;
the profile page shows the subscription, the filled field and the path; Text This Profile
offers only the short codes a profile may be texted from."""

from __future__ import annotations

import pytest
from e2e_helpers import E2E_TIMEOUT_S
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

NEWCOMER = "+15551239876"  # not a demo profile: becomes one by texting the keyword
AISHA = "+15551230003"  # Aisha Okafor: no other browser test uses her


def test_a_keyword_with_double_opt_in_from_a_handset(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    page.goto(f"{gw.url}/settings")
    page.locator("#keywords-link").click()
    page.wait_for_url(f"{gw.url}/settings/keywords")
    page.get_by_label("Short code").select_option("55999")
    page.get_by_label("Keyword (one word)").fill("Clubs")
    page.get_by_label("Automatic reply").fill("You are on the clubs list.")
    page.get_by_label("Subscribe texters under campaign").fill("Clubs")
    page.get_by_label("Double opt-in").check()
    page.get_by_label("Question 1").fill("Which club? Chess or Drama")
    page.locator("#q1_field").fill("club")
    page.locator("#q1_choices").fill("Chess, Drama")
    page.get_by_label("Reply after the last answer").fill("See you there!")
    page.get_by_role("button", name="Add keyword").click()
    row = page.locator('tr[data-keyword="55999/CLUBS"]')
    expect(row).to_contain_text("Which club? Chess or Drama")
    expect(row).to_contain_text("campaign Clubs")

    handset = gw.handset(NEWCOMER)
    alerts = gw.modem_numbers[gw.short_code_modems["55999"][0]]
    handset.send(to=alerts, text="clubs")
    prompt = handset.wait_for_message(timeout=E2E_TIMEOUT_S)
    assert prompt.sender == alerts and "reply Y within 1 day to confirm" in prompt.text
    gw.net.clock.advance(1)
    handset.send(to=alerts, text="Y")
    assert handset.wait_for_message(timeout=E2E_TIMEOUT_S).text == "You are on the clubs list."
    assert handset.wait_for_message(timeout=E2E_TIMEOUT_S).text == "Which club? Chess or Drama"
    gw.net.clock.advance(1)
    handset.send(to=alerts, text="drama")
    assert handset.wait_for_message(timeout=E2E_TIMEOUT_S).text == "See you there!"

    page.goto(f"{gw.url}/profiles/{gw.profile(NEWCOMER)['id']}")
    expect(page.locator('[data-subscription="55999"]')).to_have_text("subscribed")
    expect(page.locator("dl.details", has_text="club")).to_contain_text("Drama")
    expect(page.locator("#keyword-paths")).to_contain_text("CLUBS to 55999: done")
    page.goto(f"{gw.url}/settings/keywords")
    expect(row).to_contain_text("1 started, 0 open, 1 done")


def test_text_this_profile_offers_only_the_short_codes_it_may_text_from(
    logged_in_page, gateway_daemon
):
    page, gw = logged_in_page, gateway_daemon
    pid = gw.profile(AISHA)["id"]
    page.goto(f"{gw.url}/profiles/{pid}")
    page.locator('tr[data-short-code="55123"]').get_by_role(
        "button", name="Opt out of 55123"
    ).click()
    expect(page.locator('[data-subscription="55123"]')).to_have_text("opted out")
    page.goto(f"{gw.url}/profiles/{pid}/text")
    select = page.locator("#short_code")
    expect(select.locator('option[value="55123"]')).to_be_disabled()
    expect(select.locator('option[value="55123"]')).to_contain_text("opted out of 55123")
    expect(select).to_have_value("55999")
    # A STOP to the other short code while her page is open: its row changes live. (The page
    # catches up once its stream is open; what comes after that arrives as events.)
    with page.expect_response(lambda r: "/conversation?after=" in r.url, timeout=10_000):
        page.goto(f"{gw.url}/profiles/{pid}")
    alerts = gw.modem_numbers[gw.short_code_modems["55999"][0]]
    gw.handset(AISHA).send(to=alerts, text="STOP")
    expect(page.locator('[data-subscription="55999"]')).to_have_text(
        "opted out", timeout=E2E_TIMEOUT_S * 1000
    )
    expect(page.locator('[data-subscription="55123"]')).to_have_text("opted out")
