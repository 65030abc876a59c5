"""What a new user tripped over (issue 11), checked in the real demo with headless Chromium: the
Settings page's "Configuration in force" read back from the DOM at two desktop widths, Send then
Back then Send on Text This Profile, Send disabled with one reason, times in one format, and 😀
drawn in colour. Screenshots go to artifacts/screenshots/newuser-*.png for people to look at."""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime

import pytest
from e2e_helpers import E2E_TIMEOUT_S
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# The geometry of every configuration card, read in the page: each <dt> (label) with the <dd>
# (value) that follows it, their widths and whether any text is clipped.
CONFIG_GEOMETRY_JS = """
() => [...document.querySelectorAll('#configuration .config-cards .card')].map(card => ({
  title: card.querySelector('h3').textContent.trim(),
  rows: [...card.querySelectorAll('dt')].map(dt => {
    const dd = dt.nextElementSibling;
    const cs = el => getComputedStyle(el);
    const em = parseFloat(cs(dt).fontSize);
    return {
      label: dt.textContent.trim(),
      labelClipped: dt.scrollWidth > dt.clientWidth || dt.scrollHeight > dt.clientHeight + 1,
      labelVisible: dt.getBoundingClientRect().width > 0,
      value: dd && dd.tagName === 'DD' ? dd.textContent.trim() : null,
      valueWidth: dd ? dd.getBoundingClientRect().width : 0,
      valueTextWidth: dd ? (() => { const r = document.createRange(); r.selectNodeContents(dd);
                                    return r.getBoundingClientRect().width; })() : 0,
      valueVisible: dd ? dd.getBoundingClientRect().height > 0 : false,
      valueClipped: dd ? dd.scrollWidth > dd.clientWidth : true,
      // Lines the value's text takes (distinct tops of its line boxes), not the height of
      // its grid cell, which a two-line label stretches.
      valueLines: dd ? (() => { const r = document.createRange(); r.selectNodeContents(dd);
                                return new Set([...r.getClientRects()].map(
                                  x => Math.round(x.top))).size; })() : 0,
      em: em,
    };
  }),
}))
"""


@pytest.mark.parametrize("width", [1280, 1920])
def test_configuration_in_force_is_readable(logged_in_page, gateway_daemon, artifacts_dir, width):
    page, gw = logged_in_page, gateway_daemon
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{gw.url}/settings#configuration")
    expect(page.get_by_role("heading", name="Configuration in force")).to_be_visible()
    page.locator("#configuration").screenshot(
        path=artifacts_dir / f"newuser-settings-configuration-{width}.png"
    )
    cards = page.evaluate(CONFIG_GEOMETRY_JS)
    titles = [c["title"] for c in cards]
    assert "Messages" in titles and "General" in titles, titles
    problems = []
    for card in cards:
        assert card["rows"], f"card {card['title']} shows no setting"
        for row in card["rows"]:
            where = f"{card['title']} › {row['label']!r} at {width}px"
            if row["value"] is None or not row["value"]:
                problems.append(f"{where}: no value")
                continue
            if not row["valueVisible"]:
                problems.append(f"{where}: value not visible")
            if row["labelClipped"] or not row["labelVisible"]:
                problems.append(f"{where}: label clipped")
            if row["valueClipped"]:
                problems.append(f"{where}: value clipped")
            # A value box narrower than eight characters wraps words a letter at a time.
            if row["valueWidth"] < 8 * row["em"] * 0.5:
                problems.append(f"{where}: value box {row['valueWidth']:.0f}px wide")
            # A short value (a word or a number) stays on one line.
            if len(row["value"]) <= 20 and row["valueLines"] > 1:
                problems.append(f"{where}: {row['value']!r} wraps over {row['valueLines']} lines")
    assert not problems, "\n".join(problems)


def new_profile(gw, phone: str, name: str) -> int:
    """A profile of this test's own (the demo's ten are other tests' fixtures) with a handset;
    named like a real person, as the screenshots of later tests show it in the lists."""
    gw.handset(phone)
    row = gw.store.profiles.by_phone(phone)
    return int(row["id"]) if row is not None else gw.store.profiles.add(phone, name)


def sent_count(gw, pid: int, body: str) -> int:
    return sum(
        1
        for m in gw.store.messages.conversation(pid)
        if m["direction"] == "out" and m["body"] == body
    )


def test_send_back_send_sends_once_and_asks_before_sending_again(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    pid = new_profile(gw, "+15551239101", "Grace Park")
    body = "Field trip forms are due on Monday."
    page.goto(f"{gw.url}/profiles/{pid}/text")
    page.get_by_label("Message").fill(body)
    page.get_by_role("button", name="Send Message").click()
    page.wait_for_url(f"{gw.url}/profiles/{pid}")
    expect(page.locator(".flash")).to_contain_text("Message queued")
    assert sent_count(gw, pid, body) == 1

    page.go_back()
    page.wait_for_url(f"{gw.url}/profiles/{pid}/text")
    expect(page.get_by_label("Message")).to_have_value(body)  # the browser restored the text
    page.get_by_role("button", name="Send Message").click()
    # Not sent again: the page says it was already sent and asks.
    warning = page.get_by_role("alert").filter(has_text="already sent")
    expect(warning).to_be_visible()
    expect(page).to_have_url(f"{gw.url}/profiles/{pid}/text")
    assert sent_count(gw, pid, body) == 1

    # Meant it: sending again is a new message, once.
    warning.get_by_role("button", name="Send it again").click()
    page.wait_for_url(f"{gw.url}/profiles/{pid}")
    expect(page.locator(".flash")).to_contain_text("Message queued")
    assert sent_count(gw, pid, body) == 2


@pytest.fixture
def refusal_page(browser, admin_storage_state):
    """A logged-in 1280x800 page that, unlike ``page``, lets the server answer 400 (Chromium
    logs a refused form's status as a console error); page errors still fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies(admin_storage_state["cookies"])
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield new_page
    finally:
        context.close()
    assert not errors, errors


def test_a_refused_text_fixed_and_sent_is_not_taken_for_a_repeat(refusal_page, gateway_daemon):
    """The guard remembers texts the server accepted, not every press of Send: a text refused
    (here: the profile became inactive meanwhile) and sent again after the fix goes at once."""
    page, gw = refusal_page, gateway_daemon
    pid = new_profile(gw, "+15551239102", "Ivan Petrov")
    body = "Picture day is on Wednesday."
    page.goto(f"{gw.url}/profiles/{pid}/text")
    gw.store.profiles.update(pid, status="inactive")
    page.get_by_label("Message").fill(body)
    page.get_by_role("button", name="Send Message").click()
    expect(page.locator("#profile-error")).to_contain_text("inactive")
    gw.store.profiles.update(pid, status="active")
    page.goto(f"{gw.url}/profiles/{pid}/text")
    page.get_by_label("Message").fill(body)
    page.get_by_role("button", name="Send Message").click()
    page.wait_for_url(f"{gw.url}/profiles/{pid}")
    assert sent_count(gw, pid, body) == 1


def visible_texts(page, selector: str) -> list[str]:
    return page.locator(selector).evaluate_all(
        "els => els.filter(e => e.offsetParent !== null).map(e => e.textContent.trim())"
    )


def test_send_is_disabled_with_one_reason_when_the_text_is_too_long(refusal_page, gateway_daemon):
    page, gw = refusal_page, gateway_daemon
    pid = new_profile(gw, "+15551239103", "Lena Fischer")
    page.goto(f"{gw.url}/profiles/{pid}/text")
    send = page.get_by_role("button", name="Send Message")
    box = page.get_by_label("Message")
    box.fill("x" * 1600)  # 11 parts; the demo's limit is 10
    expect(page.locator("#text-count")).to_contain_text("too long")
    expect(send).to_be_disabled()
    expect(send).to_have_attribute("aria-describedby", "text-count")
    box.fill("x" * 100)
    expect(send).to_be_enabled()

    # Sent anyway (a form submitted without its script): the server refuses, and the page
    # that comes back says "too long" once, in the counter, with Send disabled.
    box.fill("y" * 1600)
    with page.expect_navigation():
        page.evaluate("document.querySelector('form[data-compose]').submit()")
    expect(page.locator("#text-count")).to_contain_text("too long")
    expect(page.get_by_role("button", name="Send Message")).to_be_disabled()
    shown = [t for t in visible_texts(page, "main *:not(:has(*))") if "too long" in t.lower()]
    assert len(shown) == 1, shown
    assert sent_count(gw, pid, "y" * 1600) == 0


def test_send_is_disabled_saying_why_once_when_the_profile_cannot_be_texted(
    refusal_page, gateway_daemon
):
    page, gw = refusal_page, gateway_daemon
    pid = new_profile(gw, "+15551239104", "Noah Williams")
    gw.store.profiles.update(pid, subscribed=False)
    page.goto(f"{gw.url}/profiles/{pid}/text")
    send = page.get_by_role("button", name="Send Message")
    expect(send).to_be_disabled()
    expect(send).to_have_attribute("aria-describedby", "profile-error")
    expect(page.locator("#profile-error")).to_have_text(
        "The profile has opted out; they must text START to receive messages again."
    )
    page.get_by_label("Message").fill("Hello")
    expect(send).to_be_disabled()  # typing does not turn it back on
    with page.expect_navigation():
        page.evaluate("document.querySelector('form[data-compose]').submit()")
    shown = [t for t in visible_texts(page, "main *:not(:has(*))") if "opted out" in t]
    assert len(shown) == 1, shown


def wait_for_inbound(gw, pid: int, body: str) -> dict:
    """The stored inbound message of this profile with this text (waits on the bus)."""
    sub = gw.daemon.services.events.subscribe()
    try:
        deadline = time.monotonic() + E2E_TIMEOUT_S
        while True:
            for m in gw.store.messages.conversation(pid):
                if m["direction"] == "in" and m["body"] == body:
                    return dict(m)
            left = deadline - time.monotonic()
            assert left > 0, f"no inbound {body!r} for profile {pid}"
            sub.get(timeout=min(left, 0.5))
    finally:
        sub.close()


def site_time(stamp: str) -> str:
    """The demo's site time zone is UTC: how every page must show this store time."""
    return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def test_every_page_shows_times_one_way_in_the_site_time_zone(
    browser, admin_storage_state, gateway_daemon
):
    """A browser in another time zone (Kiritimati, UTC+14: another date as well) with a 12-hour
    locale still shows the site's "YYYY-MM-DD HH:MM" in the site's zone in the chat (rendered by
    the script), on the profile page and in the Inbox (rendered by the server)."""
    gw = gateway_daemon
    phone = "+15551239105"
    pid = new_profile(gw, phone, "Rosa Diaz")
    modem_number = gw.modem_numbers[gw.short_code_modems["55123"][0]]
    gw.handset(phone).send(to=modem_number, text="What time is the concert?")
    message = wait_for_inbound(gw, pid, "What time is the concert?")
    expected = site_time(message["created_at"])

    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="Pacific/Kiritimati", locale="en-US"
    )
    context.add_cookies(admin_storage_state["cookies"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        assert re.search(r"[AP]M$", page.evaluate("new Date().toLocaleTimeString()"))  # 12-hour
        page.goto(f"{gw.url}/profiles/{pid}")
        row_time = page.locator(f"tr[data-message-id='{message['id']}'] time")
        expect(row_time).to_have_text(expected)

        page.goto(f"{gw.url}/profiles?q=Rosa+Diaz")
        page.locator("tr", has_text="Rosa Diaz").get_by_role("button", name="CHAT").click()
        panel = page.get_by_role("dialog", name="Chat with Rosa Diaz")
        bubble = panel.locator("li.bubble.in", has_text="What time is the concert?")
        expect(bubble.locator("time")).to_have_text(expected)

        page.goto(f"{gw.url}/inbox")
        expect(
            page.locator("tr", has_text="What time is the concert?").locator("time").first
        ).to_have_text(expected)
        shown = page.locator("main time").all_inner_texts()
        assert shown and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", t) for t in shown), shown
    finally:
        context.close()
    assert not errors, errors


# Pixels of a PNG that are clearly coloured (not grey: black, white and anti-aliasing), counted
# in the page itself: the screenshot is decoded by the browser, no image library needed.
COLOUR_PIXELS_JS = """
async (b64) => {
  const img = new Image();
  img.src = "data:image/png;base64," + b64;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 80) n++;
  }
  return n;
}
"""


def colour_pixels(page, locator, path) -> int:
    png = locator.screenshot(path=path)
    return page.evaluate(COLOUR_PIXELS_JS, base64.b64encode(png).decode())


def test_emoji_are_drawn_in_colour(logged_in_page, gateway_daemon, artifacts_dir):
    page, gw = logged_in_page, gateway_daemon
    pid = new_profile(gw, "+15551239106", "Yuki Tanaka")
    page.goto(f"{gw.url}/profiles/{pid}/text")
    button = page.get_by_role("button", name="Emoji")
    box = page.get_by_label("Message")
    box.fill("😀😀😀")
    # The page's own 😀 (the Emoji button) and one typed in the text box, in the page's fonts.
    for name, where in (("button", button), ("textarea", box)):
        found = colour_pixels(page, where, artifacts_dir / f"newuser-emoji-{name}.png")
        assert found > 20, f"😀 in the {name} is drawn without colour ({found} coloured pixels)"
    # Text in the app's font stack (a bubble, a table cell) gets the colour emoji too.
    stack = page.evaluate("getComputedStyle(document.body).fontFamily")
    families = [f.strip().strip('"').lower() for f in stack.split(",")]
    emoji = min(i for i, f in enumerate(families) if "emoji" in f)
    assert emoji < families.index("system-ui") and emoji < families.index("sans-serif"), stack
    # Digits and # stay with the text font (the emoji font has glyphs for them, for keycaps).
    box.fill("Room 12 # 3, call 555-0100 😀")
    colour_pixels(page, box, artifacts_dir / "newuser-emoji-with-digits.png")
    widths = page.evaluate(
        """() => {
           const stack = getComputedStyle(document.body).fontFamily;
           const textOnly = stack.split(",").filter(f => !/emoji/i.test(f)).join(",");
           return [stack, textOnly].map(family => {
             const s = document.createElement("span");
             s.textContent = "Room 12 # 3, call 555-0100";
             s.style.fontFamily = family;
             document.querySelector("main").append(s);
             const w = s.getBoundingClientRect().width;
             s.remove();
             return w;
           });
         }"""
    )
    assert abs(widths[0] - widths[1]) < 1, f"digits drawn by the emoji font: {widths}"


def test_chat_send_is_disabled_while_the_text_is_too_long(logged_in_page, gateway_daemon):
    page, gw = logged_in_page, gateway_daemon
    pid = new_profile(gw, "+15551239107", "Omar Farouk")
    page.goto(f"{gw.url}/profiles?q=Omar+Farouk")
    page.locator("tr", has_text="Omar Farouk").get_by_role("button", name="CHAT").click()
    panel = page.get_by_role("dialog", name="Chat with Omar Farouk")
    box = panel.get_by_label("Message")
    send = panel.get_by_role("button", name="Send")
    box.fill("z" * 1600)
    expect(panel.locator(".chat-counter")).to_contain_text("too long")
    expect(send).to_be_disabled()
    box.press("Enter")  # Enter sends: not this text
    expect(panel.locator(".chat-error")).to_be_hidden()  # one message: the counter's
    assert sent_count(gw, pid, "z" * 1600) == 0
    box.fill("Hello Omar")
    expect(send).to_be_enabled()
