"""The browser's SMS counter (smscount.js) agrees with the server's text.py.

Both are checked against tests/vectors/count.json in the same test, then against each other on
seeded random texts and, character property by character property, over every code point.
text.py is the reference: a disagreement is a bug in smscount.js.
"""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path

import pytest

from gateway.modem import text as sms
from gateway.modem.alphabets import DEFAULT_LOCKING, DEFAULT_SINGLE_SHIFT
from gateway.modem.errors import CodecError

pytestmark = pytest.mark.browser

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "count.json"
CHECKED = ("encoding", "parts", "units", "remaining", "segments")


@pytest.fixture
def counter(page, static_server):
    """The compose test page, with smscount.js loaded and its counter attached."""
    page.goto(f"{static_server}/pages/compose.html")
    page.wait_for_function("document.body.dataset.ready === 'true'")
    return page


@pytest.fixture(scope="module")
def engine(browser, static_server):
    """One page shared by the tests that only call SmsCount's functions (saves a page load each)."""
    context = browser.new_context()
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{static_server}/pages/compose.html")
    page.wait_for_function("window.SmsCount !== undefined")
    yield page
    context.close()
    assert not errors


def js_analyze_all(page, cases: list[tuple[str, dict]]) -> list[dict]:
    """SmsCount.analyze on every (text, options) in one round trip; errors come back as dicts.

    Both ways the data travels as one JSON string: Playwright takes seconds to pass thousands of
    small objects one by one.
    """
    answer = page.evaluate(
        """(cases) => JSON.stringify(JSON.parse(cases).map(([text, options]) => {
            try { return SmsCount.analyze(text, options); }
            catch (err) { return {error: err.name, where: err.where}; }
        }))""",
        json.dumps([[text, options] for text, options in cases]),
    )
    return json.loads(answer)


def py_analyze(text: str, options: dict) -> dict:
    """text.analyze with the JavaScript option names; errors as js_analyze_all returns them."""
    try:
        return sms.analyze(
            text,
            ref16=options.get("ref16", False),
            max_parts=options.get("maxParts", sms.DEFAULT_MAX_PARTS),
            encoding=options.get("encoding", "auto"),
        ).to_json()
    except CodecError as exc:
        # The message quotes the character as Python's repr() does, the browser's as JSON.
        return {"error": "CodecError", "where": exc.where}


def test_vectors_file_is_checked_on_both_sides(engine):
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert len(vectors) >= 50
    cases = [(v["text"], {"ref16": v.get("ref16", False)}) for v in vectors]
    js = js_analyze_all(engine, cases)
    for vector, (text, options), got in zip(vectors, cases, js, strict=True):
        expected = {key: vector[key] for key in CHECKED}
        if "suggestion" in vector:
            expected["suggestion"] = vector["suggestion"]
        py = py_analyze(text, options)
        note = vector.get("note", text[:40])
        assert {key: py[key] for key in expected} == expected, f"text.py: {note}"
        assert {key: got[key] for key in expected} == expected, f"smscount.js: {note}"
        assert got == py, f"full analysis differs: {note}"


# Random texts mixing what makes counting hard.
GSM_BASIC = [c for c in DEFAULT_LOCKING if c != "\x1b"]
GSM_EXTENSION = list(DEFAULT_SINGLE_SHIFT.values())
EMOJI = ["😀", "👍", "❤", "👨", "👩", "👧", "🐶", "🎉", "☕", "🫠"]
MODIFIERS = [chr(cp) for cp in range(0x1F3FB, 0x1F400)]
REGIONAL = [chr(cp) for cp in range(0x1F1E6, 0x1F200)]
TAGS = ["\U000e0067", "\U000e0062", "\U000e0073", "\U000e0063", "\U000e0074", "\U000e007f"]
COMBINING = ["\u0301", "\u0308", "\u0327", "\u20e3", "\u093e", "\u0488", "\u0e31", "\u302a"]
CJK = ["你", "好", "日", "本", "語", "한", "글", "𠀀", "𝄞"]
LOOKALIKE = ["\u2019", "\u201c", "\u201d", "\u2013", "\u2026", "\u00a0", "\t", "ç", "á", "Ő", "ǻ"]
JOINERS = ["\u200d", "\ufe0f", "\ufe0e", "\r", "\n", "\r\n"]


def random_text(rng: random.Random) -> str:
    """A text of 0 to ~400 code points; a third of them stay within GSM-7."""
    length = rng.choice([rng.randint(0, 20), rng.randint(60, 180), rng.randint(140, 420)])
    if rng.random() < 1 / 3:
        pools = [(GSM_BASIC, 8), (GSM_EXTENSION, 2), (["\r\n", "\r", "\n"], 1)]
    else:
        pools = [
            (GSM_BASIC, 10),
            (GSM_EXTENSION, 2),
            (EMOJI, 3),
            (MODIFIERS, 1),
            (REGIONAL, 2),
            (TAGS, 1),
            (COMBINING, 2),
            (CJK, 2),
            (LOOKALIKE, 2),
            (JOINERS, 2),
        ]
    chars = [p for p, _ in pools]
    weights = [w for _, w in pools]
    out: list[str] = []
    while len(out) < length:
        pick = rng.random()
        if pick < 0.05:  # a ZWJ family
            out.append("\u200d".join(rng.choices(EMOJI, k=rng.randint(2, 4))))
        elif pick < 0.08:  # a flag
            out.append(rng.choice(REGIONAL) + rng.choice(REGIONAL))
        elif pick < 0.10:  # emoji with a skin tone
            out.append(rng.choice(EMOJI) + rng.choice(MODIFIERS))
        else:
            out.append(rng.choice(rng.choices(chars, weights)[0]))
    return "".join(out)


def random_options(rng: random.Random, text: str) -> dict:
    options: dict = {}
    if rng.random() < 0.3:
        options["ref16"] = True
    if rng.random() < 0.2:
        options["maxParts"] = rng.randint(1, 4)
    roll = rng.random()
    if roll < 0.1:
        options["encoding"] = "ucs2"
    elif roll < 0.2:
        options["encoding"] = "gsm7"  # raises on most mixed texts: both must say where
    return options


def test_random_texts_agree_with_text_py(engine):
    rng = random.Random(20240531)
    cases = []
    for _ in range(300):
        text = random_text(rng)
        cases.append((text, random_options(rng, text)))
    js = js_analyze_all(engine, cases)
    py = [py_analyze(text, options) for text, options in cases]
    mismatches = [
        (text, options, got, want)
        for (text, options), got, want in zip(cases, js, py, strict=True)
        if got != want
    ]
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ; first: {mismatches[0]!r}"
    # The generator does reach the hard cases.
    assert {p.get("encoding") for p in py} == {"gsm7", "ucs2", None}  # None: CodecError
    assert sum(p.get("parts", 0) > 1 for p in py) > 100
    assert sum(p.get("too_long", False) for p in py) > 10
    assert sum(p.get("suggestion") is not None for p in py) > 10


def test_clusters_agree_with_text_py(engine):
    rng = random.Random(7)
    texts = [random_text(rng) for _ in range(100)]
    js = engine.evaluate("(texts) => texts.map((t) => SmsCount.clusters(t))", texts)
    assert js == [sms.clusters(t) for t in texts]


def _python_extend_and_lookalikes() -> tuple[set[int], dict[int, str]]:
    extend = set()
    lookalikes = {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if sms._is_extend(ch):
            extend.add(cp)
        rep = sms.lookalike(ch)
        if rep is not None:
            lookalikes[cp] = rep
    return extend, lookalikes


def test_character_properties_agree_over_every_code_point(engine):
    """isExtend and lookalike for all 1.1 million code points, where Python's Unicode knows them.

    The browser may know a newer Unicode version than the server's Python (Chromium's ICU against
    Python 3.11's Unicode 14.0): a mark assigned since then is an extender only in the browser.
    Such code points are unassigned (Cn) in Python and are listed, not failed.
    """
    js = engine.evaluate(
        """() => {
            const extend = [];
            const lookalikes = {};
            for (let cp = 0; cp < 0x110000; cp++) {
                if (cp >= 0xd800 && cp <= 0xdfff) continue;
                const ch = String.fromCodePoint(cp);
                if (SmsCount.isExtend(ch)) extend.push(cp);
                const rep = SmsCount.lookalike(ch);
                if (rep !== null) lookalikes[cp] = rep;
            }
            return JSON.stringify({extend, lookalikes});
        }"""
    )
    js = json.loads(js)
    py_extend, py_lookalikes = _python_extend_and_lookalikes()
    js_extend = set(js["extend"])
    newer = {cp for cp in js_extend ^ py_extend if unicodedata.category(chr(cp)) == "Cn"}
    assert js_extend - newer == py_extend - newer, sorted(
        f"U+{cp:04X}" for cp in (js_extend ^ py_extend) - newer
    )
    assert {int(cp): rep for cp, rep in js["lookalikes"].items()} == py_lookalikes
    print(f"marks newer than Python's Unicode {unicodedata.unidata_version}: {len(newer)}")


def test_errors_name_the_character_as_text_py_does(engine):
    cases = [
        ("ok 😀", {"encoding": "gsm7"}),
        ("abc", {"encoding": "latin1"}),
        ("abc", {"maxParts": 0}),
    ]
    js = js_analyze_all(engine, cases)
    for (text, options), got in zip(cases, js, strict=True):
        assert got == py_analyze(text, options)
        assert got["error"] == "CodecError"
    assert js[0]["where"] == "character 3"


def counter_text(page) -> str:
    return page.locator("#counter").inner_text()


def test_counter_shows_remaining_parts_and_what_forced_unicode(counter):
    box = counter.locator("#body")
    box.fill("Hello")
    assert counter_text(counter) == "155 characters remaining · 1 SMS"
    box.fill("a" * 161)
    assert counter_text(counter).startswith("145 characters remaining · 2 SMS")
    assert counter.locator("#counter").get_attribute("data-encoding") == "gsm7"

    box.fill("“Hi” 😀 {x}")
    status = counter.locator(".smscount-status")
    assert status.inner_text() == "59 characters remaining · 1 SMS"
    assert status.get_attribute("aria-live") == "polite"
    notice = counter.locator(".smscount-unicode")
    assert notice.locator(".smscount-char").all_inner_texts() == ["“", "”", "😀"]
    assert "forced Unicode" in notice.inner_text()
    counter.get_by_role("button", name="Replace with GSM look-alikes").click()
    assert box.input_value() == '"Hi" 😀 {x}'  # the emoji has no look-alike and stays
    assert counter.locator("#counter").get_attribute("data-encoding") == "ucs2"
    assert notice.locator(".smscount-char").all_inner_texts() == ["😀"]
    assert counter.get_by_role("button", name="Replace with GSM look-alikes").count() == 0

    box.fill("It’s 10\u00a0€")
    counter.get_by_role("button", name="Replace with GSM look-alikes").click()
    assert box.input_value() == "It's 10 €"
    assert counter_text(counter) == "150 characters remaining · 1 SMS"
    assert counter.locator(".smscount-unicode").is_hidden()


def test_counter_says_when_a_text_is_too_long(counter):
    counter.locator("#body").fill("a" * 1531)
    assert counter_text(counter) == (
        "152 characters remaining · 11 SMS — too long, the limit is 10 SMS"
    )


def test_counter_text_is_never_html(counter):
    counter.locator("#body").fill('<img src=x onerror="document.body.dataset.pwned=1">ж')
    assert counter.locator("#counter img").count() == 0
    assert counter.evaluate("document.body.dataset.pwned") is None
