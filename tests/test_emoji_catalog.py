"""The picker's emoji catalog and the shortcode map agree with the emoji library the server uses."""

from __future__ import annotations

import emoji
import pytest

from gateway.web import emoji_catalog

SKIN_TONES = {chr(cp) for cp in range(0x1F3FB, 0x1F400)}


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    return emoji_catalog.catalog()


def by_emoji(entries: list[dict]) -> dict[str, dict]:
    return {e["emoji"]: e for e in entries}


def test_thumbs_up_is_listed_with_its_english_name_and_alias(entries):
    thumbs = by_emoji(entries)["👍"]
    assert thumbs["name"] == "thumbs up"
    assert ":thumbs_up:" in thumbs["shortcodes"]
    assert ":thumbsup:" in thumbs["shortcodes"]
    assert thumbs["group"] == "People & body"


def test_a_few_hundred_common_emoji_and_no_duplicates(entries):
    assert 1500 < len(entries) < 2000
    assert len(by_emoji(entries)) == len(entries)
    for e in entries:
        assert set(e) == {"emoji", "name", "shortcodes", "group"}
        assert e["name"] and ":" not in e["name"] and "_" not in e["name"]
        assert e["group"] in emoji_catalog.GROUP_ORDER


def test_no_skin_tone_variants(entries):
    assert not [e["emoji"] for e in entries if SKIN_TONES & set(e["emoji"])]


def test_only_fully_qualified_emoji_phones_show(entries):
    for e in entries:
        data = emoji.EMOJI_DATA[e["emoji"]]
        assert data["E"] <= 13.1, e
        assert data["status"] == emoji.STATUS["fully_qualified"], e
    listed = by_emoji(entries)
    assert "🥲" in listed  # Emoji 13.0
    assert "❤️‍🔥" in listed  # Emoji 13.1
    assert "🫠" not in listed  # Emoji 14.0 (melting face)
    assert "☺" not in listed  # unqualified: only the fully-qualified ☺️ is offered
    assert "☺️" in listed


def test_groups_come_in_display_order(entries):
    ranks = [emoji_catalog.GROUP_ORDER.index(e["group"]) for e in entries]
    assert ranks == sorted(ranks)
    assert entries[0]["group"] == "Smileys & emotion"
    assert by_emoji(entries)["🇩🇪"]["group"] == "Flags"


def test_every_listed_shortcode_round_trips_through_emojize(entries):
    names = [(name, e["emoji"]) for e in entries for name in e["shortcodes"]]
    assert len(names) > len(entries)
    # Nearly every listed emoji can be typed as :name:; with emoji 2.16 only the beetle 🪲
    # cannot, because emojize prefers ':beetle:' as the alias of the lady beetle 🐞.
    unnamed = [e["emoji"] for e in entries if not e["shortcodes"]]
    assert len(unnamed) <= 5, unnamed
    text = " ".join(name for name, _ in names)
    assert emoji.emojize(text, language="alias") == " ".join(emj for _, emj in names)


def test_a_name_is_listed_only_where_emojize_gives_that_emoji(entries):
    # ':kiss:' is the English name of the kissing couple but emojize prefers the kiss mark alias.
    listed = by_emoji(entries)
    assert ":kiss:" in listed["💋"]["shortcodes"]
    assert ":kiss:" not in listed["💏"]["shortcodes"]


def test_shortcode_map_is_what_emojize_does():
    mapping = emoji_catalog.shortcode_map()
    assert mapping[":thumbsup:"] == mapping[":thumbs_up:"] == mapping[":+1:"] == "👍"
    assert mapping[":thumbs_up_medium_skin_tone:"] == "👍🏽"  # the server expands skin tones too
    assert mapping[":melting_face:"] == "🫠"  # and newer emoji
    assert ":Thumbs_Up:" not in mapping  # names are case-sensitive, as in emojize
    # Every 7th name, checked against the library itself (all of them would take seconds).
    sample = sorted(mapping)[::7]
    for name in sample:
        assert emoji.emojize(name, language="alias") == mapping[name], name


def test_unknown_names_are_not_in_the_map():
    mapping = emoji_catalog.shortcode_map()
    assert ":xyz:" not in mapping
    assert emoji.emojize(":xyz:", language="alias") == ":xyz:"


def test_picker_data_lists_each_name_once():
    data = emoji_catalog.picker_data()
    listed = {name for e in data["emoji"] for name in e["shortcodes"]}
    assert not listed & set(data["shortcodes"])
    merged = {name: e["emoji"] for e in data["emoji"] for name in e["shortcodes"]}
    merged.update(data["shortcodes"])
    assert merged == emoji_catalog.shortcode_map()


def test_callers_get_copies():
    first = emoji_catalog.catalog()
    first[0]["shortcodes"].append(":changed:")
    first.pop()
    assert ":changed:" not in emoji_catalog.catalog()[0]["shortcodes"]
    assert len(emoji_catalog.catalog()) == len(first) + 1
    emoji_catalog.shortcode_map()[":thumbsup:"] = "x"
    assert emoji_catalog.shortcode_map()[":thumbsup:"] == "👍"
