"""The emoji picker (emoji-picker.js) with the keyboard alone, on a desktop and a phone screen,
and the browser's :name: expansion against the server's emoji.emojize(language="alias")."""

from __future__ import annotations

import json
import random

import emoji
import pytest

from gateway.web import emoji_catalog

pytestmark = pytest.mark.browser


@pytest.fixture
def compose(page, static_server):
    """The compose test page with the picker's catalog loaded."""
    page.goto(f"{static_server}/pages/compose.html")
    page.wait_for_function("document.body.dataset.ready === 'true'")
    return page


def focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def dialog(page):
    return page.get_by_role("dialog", name="Emoji")


def open_with_keyboard(page) -> None:
    """From the text box, Tab to the Emoji button and press Enter."""
    page.locator("#body").focus()
    page.keyboard.press("Tab")
    assert focused_id(page) == "emoji-button"
    page.keyboard.press("Enter")
    dialog(page).wait_for(state="visible")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        "Search emoji by name"
    )


def test_keyboard_search_insert_expand_and_close(compose, artifacts_dir):
    box = compose.locator("#body")
    box.focus()
    compose.keyboard.type("Thanks ")
    counter = compose.locator("#counter")
    assert counter.get_attribute("data-encoding") == "gsm7"

    open_with_keyboard(compose)
    assert compose.locator("#emoji-button").get_attribute("aria-expanded") == "true"
    compose.keyboard.type("thumbs")
    found = compose.locator(".emoji-picker-option:visible")
    assert found.all_inner_texts()[:2] == ["👍", "👎"]
    compose.screenshot(path=artifacts_dir / "emoji-picker-search.png")
    compose.keyboard.press("Enter")

    dialog(compose).wait_for(state="hidden")
    assert box.input_value() == "Thanks 👍"
    assert focused_id(compose) == "body"
    assert counter.get_attribute("data-encoding") == "ucs2"
    assert counter.inner_text().startswith("61 characters remaining · 1 SMS")
    assert "👍" in compose.locator(".smscount-unicode").inner_text()

    compose.keyboard.type(" see you :thumbsup: and :thumbs_up::xyz:")
    assert box.input_value() == "Thanks 👍 see you 👍 and 👍:xyz:"
    assert counter.get_attribute("data-remaining") == str(
        70 - len("Thanks 👍 see you 👍 and 👍:xyz:".encode("utf-16-le")) // 2
    )

    open_with_keyboard(compose)
    compose.keyboard.press("Escape")
    dialog(compose).wait_for(state="hidden")
    assert focused_id(compose) == "emoji-button"
    assert compose.locator("#emoji-button").get_attribute("aria-expanded") == "false"
    compose.screenshot(path=artifacts_dir / "compose-after-picker.png")


def test_arrow_keys_move_in_the_grid_and_recent_comes_first(compose, artifacts_dir):
    open_with_keyboard(compose)
    compose.keyboard.press("ArrowDown")  # into the grid, on the first emoji
    grid = compose.get_by_role("listbox", name="Emoji")
    assert focused_id(compose) == grid.get_attribute("id")

    def active() -> str:
        return compose.locator(f"#{grid.get_attribute('aria-activedescendant')}").inner_text()

    assert active() == "😀"
    compose.keyboard.press("ArrowRight")
    assert active() == "😁"
    compose.keyboard.press("ArrowDown")  # one row further, same column
    below = active()
    compose.keyboard.press("ArrowUp")
    assert active() == "😁"
    compose.keyboard.press("ArrowDown")
    assert active() == below
    boxes = compose.evaluate(
        """(id) => {
            const opts = [...document.querySelectorAll('#' + id + ' [role=option]:not([hidden])')];
            const a = document.getElementById(document.getElementById(id)
                .getAttribute('aria-activedescendant')).getBoundingClientRect();
            const b = opts[1].getBoundingClientRect();
            return [a.left, a.top, b.left, b.top];
        }""",
        grid.get_attribute("id"),
    )
    assert boxes[0] == boxes[2] and boxes[1] > boxes[3]  # straight below the second emoji
    compose.keyboard.press("End")
    assert active() == emoji_catalog.catalog()[-1]["emoji"]
    compose.keyboard.press("Home")
    compose.keyboard.press("ArrowRight")
    compose.keyboard.press("Enter")
    assert compose.locator("#body").input_value() == "😁"
    assert focused_id(compose) == "body"

    open_with_keyboard(compose)
    recent = compose.get_by_role("group", name="Recently used")
    assert recent.locator("[role=option]").all_inner_texts() == ["😁"]
    assert compose.locator("[aria-selected=true]").all_inner_texts() == ["😁"]  # only the recent
    assert recent.locator("[aria-selected=true]").count() == 1
    compose.keyboard.press("ArrowDown")
    compose.keyboard.press("PageDown")
    assert active() not in ("😀", "😁")
    compose.keyboard.type("s")  # searching hides "Recently used"
    assert recent.is_hidden()
    compose.keyboard.press("Backspace")
    assert recent.is_visible()
    compose.screenshot(path=artifacts_dir / "emoji-picker-open.png")
    compose.keyboard.press("Escape")


def test_typing_in_the_grid_goes_back_to_searching(compose):
    open_with_keyboard(compose)
    compose.keyboard.press("ArrowDown")
    compose.keyboard.type("pizza")
    assert compose.locator(".emoji-picker-search").input_value() == "pizza"
    assert compose.locator(".emoji-picker-option:visible").all_inner_texts() == ["🍕"]
    compose.keyboard.type("zzz")
    assert compose.get_by_role("status").filter(has_text="No emoji found").is_visible()
    compose.keyboard.press("Enter")  # nothing to insert: nothing happens
    assert compose.locator("#body").input_value() == ""


def test_insert_at_the_caret_and_click_outside_closes(compose):
    box = compose.locator("#body")
    box.fill("ab")
    box.evaluate("(t) => t.setSelectionRange(1, 1)")
    compose.locator("#emoji-button").click()
    compose.locator(".emoji-picker-search").fill("pizza")
    compose.locator(".emoji-picker-option:visible").first.click()
    assert box.input_value() == "a🍕b"
    assert box.evaluate("(t) => [t.selectionStart, t.selectionEnd]") == [3, 3]
    compose.locator("#emoji-button").click()
    dialog(compose).wait_for(state="visible")
    compose.locator("h1").click()
    dialog(compose).wait_for(state="hidden")


def test_phone_screen_shows_a_bottom_sheet(browser, static_server, artifacts_dir):
    context = browser.new_context(
        viewport={"width": 390, "height": 740}, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        page.goto(f"{static_server}/pages/compose.html")
        page.wait_for_function("document.body.dataset.ready === 'true'")
        page.locator("#emoji-button").tap()
        sheet = dialog(page)
        sheet.wait_for(state="visible")
        box = sheet.bounding_box()
        assert box["x"] == 0 and box["width"] == 390
        assert abs(box["y"] + box["height"] - 740) < 1
        option = page.locator(".emoji-picker-option").first.bounding_box()
        assert option["width"] >= 40 and option["height"] >= 40  # big enough for a finger
        page.screenshot(path=artifacts_dir / "emoji-picker-phone.png")
    finally:
        context.close()


def test_first_open_renders_the_whole_catalog_quickly(compose):
    count = len(emoji_catalog.catalog())
    took = compose.evaluate(
        """() => {
            const start = performance.now();
            document.getElementById('emoji-button').click();
            const n = document.querySelectorAll('.emoji-picker-option').length;
            document.querySelector('.emoji-picker-option').getBoundingClientRect();  // layout
            return [n, performance.now() - start];
        }"""
    )
    assert took[0] == count
    assert took[1] < 500, f"first open took {took[1]:.0f} ms"
    print(f"first open: {count} emoji in {took[1]:.0f} ms")


def random_shortcode_texts(rng: random.Random, names: list[str]) -> list[str]:
    noise = [":", "::", " ", "a", "_", "-", "x:", ":xyz:", "é", "👍", "\n", ":Thumbs_Up:", "ﬁ"]
    texts = []
    for _ in range(200):
        parts = []
        for _ in range(rng.randint(1, 8)):
            roll = rng.random()
            if roll < 0.4:
                parts.append(rng.choice(names))
            elif roll < 0.55:
                parts.append(rng.choice(names)[:-1])  # no closing colon
            elif roll < 0.65:
                parts.append(rng.choice(names)[1:])  # no opening colon
            else:
                parts.append(rng.choice(noise))
        texts.append("".join(parts))
    return texts


def test_shortcodes_expand_as_the_server_expands_them(compose):
    mapping = emoji_catalog.shortcode_map()
    names = sorted(mapping)
    rng = random.Random(5)
    texts = [
        ":thumbsup: :thumbs_up: :+1: :Thumbs_Up: :xyz: time 10:30:45",
        ":flag_for_Germany::Germany:",
        "::thumbsup::",
        ":a:thumbsup:",
        ":thumbs_up_medium_skin_tone: :melting_face: :piñata: :Curaçao:",
        *random_shortcode_texts(rng, names),
    ]
    # The same data the picker loaded, so that the browser knows every name the server does.
    js = json.loads(
        compose.evaluate(
            """async (texts) => {
                const data = await (await fetch('/emoji/picker.json')).json();
                return JSON.stringify(JSON.parse(texts).map((t) =>
                    SmsCount.expandShortcodes(t, data)));
            }""",
            json.dumps(texts),
        )
    )
    assert js == [emoji.emojize(t, language="alias") for t in texts]
    assert js[0].startswith("👍 👍 👍 :Thumbs_Up: :xyz:")


def test_shift_enter_keeps_it_open_and_tab_out_or_esc_in_the_grid_closes(compose):
    open_with_keyboard(compose)
    compose.keyboard.type("pizza")
    compose.keyboard.press("Shift+Enter")
    compose.keyboard.press("Shift+Enter")
    assert compose.locator("#body").input_value() == "🍕🍕"
    assert dialog(compose).is_visible()
    compose.keyboard.press("Tab")  # into the grid
    compose.keyboard.press("Tab")  # out of the picker, to the next control on the page
    dialog(compose).wait_for(state="hidden")
    assert focused_id(compose) == "after"

    open_with_keyboard(compose)
    compose.keyboard.press("ArrowDown")
    compose.keyboard.press("Escape")
    dialog(compose).wait_for(state="hidden")
    assert focused_id(compose) == "emoji-button"
