"""End to end in Chromium against the demo daemon (issue 11): build a segment and see its count
change as the conditions are typed; compose a broadcast whose counter counts the LONGEST
expansion of its merge fields over the segment (not the sample's), preview it, send a test,
create it, and watch its page count the messages as they reach the simulated handsets; pause
and cancel from the page."""

from __future__ import annotations

import re

import pytest
from e2e_helpers import E2E_TIMEOUT_S
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

WAIT_MS = int(E2E_TIMEOUT_S * 1000)
SHORT = "+15559990001"
LONG = "+15559990002"
OUT = "+15559990003"
LONG_CLUB = "Chess and Strategy Games for Advanced Players of the Upper School Library " * 2


def test_segment_count_compose_longest_expansion_test_send_and_live_progress(
    logged_in_page, gateway_daemon, artifacts_dir
):
    page, gw = logged_in_page, gateway_daemon
    s = gw.store
    s.profiles.add(SHORT, "Ana Short", custom={"club": "Chess"})
    s.profiles.add(LONG, "Lee Long", custom={"club": LONG_CLUB.strip()})
    out = s.profiles.add(OUT, "Oz Out", subscribed=False, custom={"club": "Chess"})
    handsets = {n: gw.handset(n) for n in (SHORT, LONG, OUT)}

    # A segment, counted as it is typed.
    page.goto(f"{gw.url}/segments/new")
    page.get_by_label("Name", exact=True).fill("E2E club")
    row = page.locator("[data-condition-row]").first
    row.get_by_label("Field").fill("club")
    row.get_by_label("Field").dispatch_event("change")
    row.get_by_label("Operator").select_option("is not empty")
    count = page.locator("[data-field=segment-count]")
    expect(count).to_have_text("3", timeout=WAIT_MS)
    row.get_by_label("Operator").select_option("starts with")
    row.get_by_label("Value").fill("Chess and")
    expect(count).to_have_text("1", timeout=WAIT_MS)
    expect(page.locator("#segment-sample")).to_contain_text("Lee Long")
    row.get_by_label("Operator").select_option("is not empty")
    expect(count).to_have_text("3", timeout=WAIT_MS)
    page.get_by_role("button", name="Save segment").click()
    expect(page.locator(".flash")).to_contain_text("Segment 'E2E club' saved.")

    # Compose: the counter counts the longest club name of the segment.
    page.get_by_role("link", name="Broadcast to it").click()
    page.wait_for_url(re.compile(r"/broadcasts/new\?segment=\d+"))
    expect(page.get_by_label("Segment", exact=True)).to_have_value(re.compile(r"\d+"))
    box = page.get_by_label("Message")
    box.fill("Hi {first_name}, the {club} club meets today.")
    counter = page.locator("#text-count")
    expect(page.locator("[data-field=audience-count]")).to_contain_text(
        "3 profile(s)", timeout=WAIT_MS
    )
    expect(counter).to_have_attribute("data-parts", "2", timeout=WAIT_MS)  # the long club's
    expect(page.locator("[data-field=preview-text]")).to_have_text(
        "Hi Ana, the Chess club meets today."  # the first profile (by id): one SMS alone
    )
    page.screenshot(path=artifacts_dir / "e2e-broadcast-compose.png", full_page=True)
    box.fill("Hi {first_name}!")
    expect(counter).to_have_attribute("data-parts", "1", timeout=WAIT_MS)
    box.fill("Hi {first_name}, the {club} club meets today.")
    expect(counter).to_have_attribute("data-parts", "2", timeout=WAIT_MS)

    # A test to one number first: sent at once, filled in with that number's own profile.
    page.get_by_label("Number to send a test to").fill(LONG)
    page.get_by_role("button", name="Send a test").click()
    expect(page.locator(".flash")).to_contain_text(f"Test sent to {LONG}")
    test = handsets[LONG].wait_for_message(timeout=E2E_TIMEOUT_S)
    assert test.text == f"Hi Lee, the {LONG_CLUB.strip()} club meets today."

    page.get_by_label("Name", exact=True).fill("E2E club news")
    expect(page.locator("[data-field=audience-count]")).to_contain_text(
        "3 profile(s)", timeout=WAIT_MS
    )
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.get_by_role("button", name="Create broadcast").click()
    page.wait_for_url(re.compile(r"/broadcasts/\d+$"))
    expect(page.locator(".flash")).to_contain_text("2 recipient(s), 1 skipped")
    assert asked == [
        "Send this broadcast from 55123 to 3 profile(s)? Opted-out and inactive ones are skipped."
    ]
    # The page follows the broadcast live (no reload): both sent, the opted-out one skipped.
    page.evaluate("window.__sameDocument = true")
    expect(page.locator('[data-count="sent"]')).to_have_text("2", timeout=WAIT_MS)
    expect(page.locator('[data-field="state"]')).to_have_text("Sent", timeout=WAIT_MS)
    expect(page.locator('[data-count="skipped"]')).to_have_text("1")
    assert page.evaluate("window.__sameDocument") is True
    got = handsets[SHORT].wait_for_message(timeout=E2E_TIMEOUT_S)
    assert got.text == "Hi Ana, the Chess club meets today."
    assert handsets[OUT].inbox == [] and s.profiles.get(out)["subscribed"] == 0
    page.screenshot(path=artifacts_dir / "e2e-broadcast-progress.png")


def test_pause_then_cancel_from_the_page(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    bs = gw.daemon.services.broadcasts
    for i in range(3):
        gw.store.profiles.add(f"+1555998000{i}", f"Later {i}", custom={"e2e_later": "yes"})
    # Scheduled for tomorrow: nothing goes while the page pauses and cancels it.
    reply = bs.create(
        "See you tomorrow",
        short_code=gw.daemon.config.short_codes[0].code,
        audience=bs.audience(conditions=bs.parse_where(["e2e_later=yes"])),
        at="2099-01-01T09:00",
        timezone="UTC",
    )
    # The Broadcasts table follows a change made elsewhere (here: the CLI's way in).
    page.goto(f"{gw.url}/broadcasts")
    badge = page.locator(f'tr[data-broadcast-id="{reply["id"]}"] [data-field="state"]')
    expect(badge).to_have_text("Scheduled")
    _wait_live(page)
    bs.pause(reply["id"])
    expect(badge).to_have_text("Paused", timeout=WAIT_MS)
    bs.resume(reply["id"])
    expect(badge).to_have_text("Scheduled", timeout=WAIT_MS)

    page.goto(f"{gw.url}/broadcasts/{reply['id']}")
    state = page.locator('[data-field="state"]')
    expect(state).to_have_text("Scheduled")
    page.get_by_role("button", name="Pause").click()
    expect(state).to_have_text("Paused")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Cancel broadcast").click()
    expect(state).to_have_text("Cancelled")
    expect(page.locator('[data-count="cancelled"]')).to_have_text("3")
    expect(page.get_by_role("button", name="Resume")).to_be_hidden()


def test_a_broadcast_scheduled_on_the_form_goes_at_its_time(logged_in_page, gateway_daemon):
    from datetime import UTC, datetime, timedelta

    page, gw = logged_in_page, gateway_daemon
    numbers = ["+15559970001", "+15559970002", "+15559970003"]
    for i, n in enumerate(numbers):
        gw.store.profiles.add(n, f"Sched {i}", subscribed=i != 2, custom={"e2e_sched": "yes"})
    handsets = {n: gw.handset(n) for n in numbers}
    page.goto(f"{gw.url}/broadcasts/new")
    page.get_by_label("Name", exact=True).fill("E2E scheduled")
    page.get_by_role("radio", name="Conditions").check()
    row = page.locator("[data-audience-part=conditions] [data-condition-row]").first
    row.get_by_label("Field").fill("e2e_sched")
    row.get_by_label("Value").fill("yes")
    expect(page.locator("[data-field=audience-count]")).to_contain_text(
        "3 profile(s)", timeout=WAIT_MS
    )
    page.get_by_label("Message").fill("On time")
    at = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    expect(page.get_by_label("Date and time")).to_be_hidden()  # while "Now" is chosen
    page.get_by_role("radio", name="At").check()
    page.get_by_label("Date and time").fill(at.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_label("Time zone").select_option("UTC")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.get_by_role("button", name="Create broadcast").click()
    page.wait_for_url(re.compile(r"/broadcasts/\d+$"))
    expect(page.locator('[data-field="state"]')).to_have_text("Scheduled")
    expect(page.locator('[data-field="state"]')).to_have_text("Sent", timeout=WAIT_MS + 6000)
    for n in numbers[:2]:
        msg = handsets[n].wait_for_message(timeout=E2E_TIMEOUT_S)
        assert msg.text == "On time"
    assert handsets[numbers[2]].inbox == []  # opted out: skipped
    bid = int(page.url.rsplit("/", 1)[1])
    first = gw.store.db.value("SELECT MIN(created_at) FROM messages WHERE broadcast_id = ?", (bid,))
    assert datetime.fromisoformat(first) >= at


def _wait_live(page) -> None:
    """Until the page's live stream is open (polled with evaluate: wait_for_function's own
    polling evaluates a string, which the app's CSP forbids)."""
    import time

    deadline = time.monotonic() + E2E_TIMEOUT_S
    while not page.evaluate("Boolean(window.Live && window.Live.connected())"):
        assert time.monotonic() < deadline, "the live stream did not open"
        page.wait_for_timeout(50)
