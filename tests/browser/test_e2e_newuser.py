"""What a new user tripped over (issue 11), checked in the real demo with headless Chromium: the
Settings page's "Configuration in force" read back from the DOM at two desktop widths, Send then
Back then Send on Text This Profile, Send disabled with one reason, times in one format, and 😀
drawn in colour. Screenshots go to artifacts/screenshots/newuser-*.png for people to look at."""

from __future__ import annotations

import pytest
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
