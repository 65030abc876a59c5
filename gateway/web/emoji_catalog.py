"""The emoji the web app's picker offers, and the ``:name:`` shortcodes the server expands.

Built from the installed ``emoji`` library's ``EMOJI_DATA`` so that the picker, the browser's
shortcode expansion (``SmsCount.expandShortcodes``) and the server's
``emoji.emojize(text, language="alias")`` agree on every name.

- :func:`catalog` lists what the picker shows: fully-qualified emoji of Emoji version 13.1 or
  older (what Android 11+ and iOS 14+ display), without skin-tone variants, grouped roughly as
  phones group them (smileys, people, animals, food, travel, activities, objects, symbols, flags).
  The library orders its data alphabetically by name, which scatters related emoji, hence the
  grouping here.
- :func:`shortcode_map` maps every name that ``emojize(language="alias")`` accepts to the emoji it
  gives, including names of emoji the picker does not list (skin tones, newer emoji), because the
  server expands those too and the browser's counter must count what the server will send.
"""

from __future__ import annotations

from functools import lru_cache

MAX_EMOJI_VERSION = 13.1


def _emoji():
    """The emoji library, imported on first use: its tables cost about 8 MB, which a gateway
    whose picker nobody opens need not hold."""
    import emoji

    return emoji


def _fully_qualified() -> int:
    return _emoji().STATUS["fully_qualified"]


_SKIN_TONES = range(0x1F3FB, 0x1F3FF + 1)

# (group, first code point ranges); the first group whose ranges hold an emoji's first code point
# wins, and anything unmatched is an object. Approximates the groups of Unicode's emoji-test.txt,
# which the library does not ship. Within a group emoji follow the order of the ranges listed,
# then code point order (so faces come before the skull).
_GROUPS: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    (
        "Flags",
        ((0x1F1E6, 0x1F1FF), (0x1F3F3, 0x1F3F4), (0x1F6A9, 0x1F6A9), (0x1F38C, 0x1F38C)),
    ),
    (
        "Smileys & emotion",
        (
            (0x1F600, 0x1F644),
            (0x1F648, 0x1F64A),
            (0x1F910, 0x1F917),
            (0x1F920, 0x1F925),
            (0x1F927, 0x1F92F),
            (0x1F970, 0x1F976),
            (0x1F978, 0x1F978),
            (0x1F97A, 0x1F97A),
            (0x1F9D0, 0x1F9D0),
            (0x1F9E1, 0x1F9E1),
            (0x263A, 0x263A),
            (0x2639, 0x2639),
            (0x2620, 0x2620),
            (0x1F479, 0x1F480),
            (0x1F4A9, 0x1F4A9),
            (0x1F48B, 0x1F48C),
            (0x1F493, 0x1F49F),
            (0x2763, 0x2764),
            (0x1F5A4, 0x1F5A4),
            (0x1F90D, 0x1F90E),
            (0x1F4A2, 0x1F4AF),
            (0x1F5E8, 0x1F5E8),
            (0x1F5EF, 0x1F5EF),
        ),
    ),
    (
        "People & body",
        (
            (0x1F442, 0x1F450),
            (0x1F463, 0x1F483),
            (0x1F485, 0x1F487),
            (0x1F48F, 0x1F48F),
            (0x1F491, 0x1F491),
            (0x1F645, 0x1F647),
            (0x1F64B, 0x1F64F),
            (0x1F574, 0x1F575),
            (0x1F57A, 0x1F57A),
            (0x1F590, 0x1F590),
            (0x1F595, 0x1F596),
            (0x1F6A3, 0x1F6A3),
            (0x1F6B4, 0x1F6B6),
            (0x1F6C0, 0x1F6C0),
            (0x1F6CC, 0x1F6CC),
            (0x1F90C, 0x1F90C),
            (0x1F90F, 0x1F90F),
            (0x1F918, 0x1F91F),
            (0x1F926, 0x1F926),
            (0x1F930, 0x1F93E),
            (0x1F977, 0x1F977),
            (0x1F9B4, 0x1F9BF),
            (0x1F9CD, 0x1F9CF),
            (0x1F9D1, 0x1F9DF),
            (0x1F9E0, 0x1F9E0),
            (0x1FAC0, 0x1FAC5),
            (0x261D, 0x261D),
            (0x26F7, 0x26F7),
            (0x26F9, 0x26F9),
            (0x270A, 0x270D),
            (0x1F3C2, 0x1F3C4),
            (0x1F3C7, 0x1F3C7),
            (0x1F3CA, 0x1F3CC),
            (0x1F440, 0x1F441),
        ),
    ),
    (
        "Animals & nature",
        (
            (0x1F400, 0x1F43F),
            (0x1F330, 0x1F344),
            (0x1F490, 0x1F490),
            (0x1F4AE, 0x1F4AE),
            (0x1F3F5, 0x1F3F5),
            (0x1F940, 0x1F940),
            (0x1F980, 0x1F9AE),
            (0x1F54A, 0x1F54A),
            (0x1F577, 0x1F578),
            (0x1FAB0, 0x1FABF),
            (0x2618, 0x2618),
            (0x1F4AE, 0x1F4AE),
        ),
    ),
    (
        "Food & drink",
        (
            (0x1F345, 0x1F37F),
            (0x1F32D, 0x1F32F),
            (0x1F950, 0x1F96F),
            (0x1F9C0, 0x1F9CB),
            (0x1FAD0, 0x1FADF),
            (0x2615, 0x2615),
            (0x1F942, 0x1F944),
        ),
    ),
    (
        "Travel & places",
        (
            (0x1F680, 0x1F6FF),
            (0x1F3D4, 0x1F3F0),
            (0x1F5FA, 0x1F5FF),
            (0x1F300, 0x1F32C),
            (0x1F550, 0x1F567),
            (0x2600, 0x2604),
            (0x2614, 0x2614),
            (0x26A1, 0x26A1),
            (0x26C4, 0x26C8),
            (0x26E9, 0x26FA),
            (0x2708, 0x2708),
            (0x2744, 0x2744),
            (0x2B50, 0x2B50),
            (0x231A, 0x231B),
            (0x23F0, 0x23F3),
            (0x1F3A0, 0x1F3A2),
            (0x1F9ED, 0x1F9ED),
            (0x1F9F1, 0x1F9F1),
            (0x1FAA8, 0x1FAA8),
            (0x1F6D1, 0x1F6D2),
        ),
    ),
    (
        "Activities",
        (
            (0x1F380, 0x1F393),
            (0x1F396, 0x1F39F),
            (0x1F3A3, 0x1F3C1),
            (0x1F3C5, 0x1F3C6),
            (0x1F3C8, 0x1F3C9),
            (0x1F3CF, 0x1F3D3),
            (0x26BD, 0x26BE),
            (0x26F3, 0x26F3),
            (0x26F8, 0x26F8),
            (0x1F945, 0x1F94F),
            (0x1F9E7, 0x1F9E9),
            (0x1F9F5, 0x1F9F8),
            (0x1FA80, 0x1FA86),
            (0x265F, 0x265F),
            (0x2660, 0x2667),
            (0x1F004, 0x1F004),
            (0x1F0CF, 0x1F0CF),
            (0x1F52E, 0x1F52E),
            (0x1F579, 0x1F579),
        ),
    ),
    (
        "Symbols",
        (
            (0x0023, 0x0039),  # keycaps
            (0x00A9, 0x00AE),
            (0x1F170, 0x1F251),
            (0x1F500, 0x1F52D),
            (0x1F52F, 0x1F53D),
            (0x1F549, 0x1F549),
            (0x1F54E, 0x1F54E),
            (0x1F6D0, 0x1F6D0),
            (0x1F7E0, 0x1F7EB),
            (0x1F4A0, 0x1F4A0),
            (0x1F4F3, 0x1F4F6),
            (0x1F4DB, 0x1F4DB),
            (0x2000, 0x2B55),
            (0x3030, 0x303D),
            (0x3297, 0x3299),
        ),
    ),
)
_OBJECTS = "Objects"
GROUP_ORDER: tuple[str, ...] = (
    "Smileys & emotion",
    "People & body",
    "Animals & nature",
    "Food & drink",
    "Travel & places",
    "Activities",
    _OBJECTS,
    "Symbols",
    "Flags",
)


def _place(emj: str) -> tuple[str, int]:
    """The group of an emoji and the index of the range that put it there (its sort order)."""
    first = ord(emj[0])
    for name, ranges in _GROUPS:
        for index, (lo, hi) in enumerate(ranges):
            if lo <= first <= hi:
                return name, index
    return _OBJECTS, 0


def _readable(name: str) -> str:
    """':thumbs_up:' -> 'thumbs up'."""
    return name.strip(":").replace("_", " ")


def _offered(emj: str, data: dict) -> bool:
    return (
        data["status"] == _fully_qualified()
        and data["E"] <= MAX_EMOJI_VERSION
        and not any(ord(c) in _SKIN_TONES for c in emj)
    )


@lru_cache(maxsize=1)
def _catalog() -> tuple[dict, ...]:
    resolves = _shortcode_map()
    rank = {name: i for i, name in enumerate(GROUP_ORDER)}
    entries: list[tuple[tuple, dict]] = []
    for emj, data in _emoji().EMOJI_DATA.items():
        if not _offered(emj, data):
            continue
        names = [data["en"], *[a for a in data.get("alias", ()) if a != data["en"]]]
        # A name is listed only where emojize gives this emoji: ':kiss:' is the English name of
        # the kissing couple but the alias of the kiss mark, and emojize prefers aliases.
        names = [n for n in names if resolves.get(n) == emj]
        group, index = _place(emj)
        entry = {"emoji": emj, "name": _readable(data["en"]), "shortcodes": names, "group": group}
        entries.append(((rank[group], index, [ord(c) for c in emj]), entry))
    entries.sort(key=lambda pair: pair[0])
    return tuple(entry for _, entry in entries)


def catalog() -> list[dict]:
    """The emoji the picker offers, in display order.

    Each entry is ``{"emoji", "name", "shortcodes", "group"}``: ``name`` is readable English
    ("thumbs up"), ``shortcodes`` every ``:name:`` the server expands to it (English name first,
    then the library's aliases), ``group`` one of :data:`GROUP_ORDER`. A fresh list of fresh
    dicts, so a caller may change it.
    """
    return [dict(e, shortcodes=list(e["shortcodes"])) for e in _catalog()]


@lru_cache(maxsize=1)
def _shortcode_map() -> dict[str, str]:
    # emoji.emojize(language="alias") looks a name up first among the aliases, then among the
    # English names, in EMOJI_DATA order, of emoji that are fully-qualified or components.
    by_alias: dict[str, str] = {}
    by_en: dict[str, str] = {}
    for emj, data in _emoji().EMOJI_DATA.items():
        if data["status"] > _fully_qualified():
            continue
        for alias in data.get("alias", ()):
            by_alias.setdefault(alias, emj)
        by_en.setdefault(data["en"], emj)
    return {**by_en, **by_alias}


def shortcode_map() -> dict[str, str]:
    """Every ``:name:`` that ``emoji.emojize(text, language="alias")`` replaces, with its emoji.

    Covers names of emoji the picker does not list, so that the browser expands exactly what the
    server will. A fresh dict, so a caller may change it.
    """
    return dict(_shortcode_map())


def picker_data() -> dict:
    """What the picker loads from its ``catalogUrl`` (JSON-ready).

    ``{"emoji": catalog(), "shortcodes": {...}}`` where ``shortcodes`` holds the names of
    :func:`shortcode_map` that no catalog entry lists (skin tones, newer emoji), so that the
    browser knows every name the server expands without sending the listed ones twice.
    """
    entries = catalog()
    listed = {name for entry in entries for name in entry["shortcodes"]}
    extra = {name: emj for name, emj in _shortcode_map().items() if name not in listed}
    return {"emoji": entries, "shortcodes": extra}
