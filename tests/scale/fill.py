"""A store of realistic shape and any size, filled fast: the data of the scale test and of
bench/store_pages.py.

Test data only, so it writes SQL straight into the store's file (one transaction, ``executemany``)
instead of going through the store's methods one message at a time. The shape is what a school
district's gateway holds after a few years: many short codes and modems, both directions, most
messages delivered and a few failed, a few profiles with long conversations and most with a
handful, names of every case, and texts made of words people search for ("bus", "late", ...).
"""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SHORT_CODES = tuple(f"5{n:04d}" for n in range(1000, 1000 + 16 * 37, 37))  # 16 codes
MODEMS = tuple(f"m{n}" for n in range(1, 17))  # one per short code
FIRST = (
    "Ann", "ben", "Chloé", "david", "Émile", "Fatima", "george", "Hana", "Ivan", "jules", "Kofi",
    "Lena", "Mateo", "nina", "Olu", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Victor",
    "Wen", "Xavier", "Yara", "zoë", "Aiden", "bea", "Carlos", "Dana",
)  # fmt: skip
LAST = (
    "Abbott", "baker", "Castillo", "Dubois", "evans", "Fischer", "García", "hughes", "Ito",
    "Jensen", "Kowalski", "lópez", "Murphy", "Nguyen", "O'Brien", "Patel", "Quispe", "Rossi",
    "smith", "Tanaka", "Ueda", "Varga", "Wright", "Xu", "Young", "Zhang",
)  # fmt: skip
OUT_TEXTS = (
    "Reminder: school is closed on {day} for the holiday.",
    "The {route} bus will be {n} minutes late this morning.",
    "Parent-teacher meetings are on {day} from 4 to 7 pm.",
    "Your child's lunch account is low: please top it up.",
    "Weather alert: early dismissal at {n}:30 today.",
    "Field trip forms are due on {day}. Reply HELP for help, STOP to opt out.",
    "Report cards go home on {day}.",
    "Flu clinic in the gym on {day}; bring the signed consent form.",
)
IN_TEXTS = (
    "Thanks",
    "ok",
    "Is the bus late today?",
    "My son is sick and will stay home on {day}",
    "What time is pick up on {day}?",
    "Who do I call about the {route} bus?",
    "We will be there",
    "Can you call me back please",
    "café closed? cantine fermée {day}?",
    "STOP",
    "HELP",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
ROUTES = ("north", "south", "east", "west", "number 12", "number 7")


@dataclass(frozen=True)
class Shape:
    """How big a store to fill."""

    profiles: int
    messages: int
    seed: int = 10

    @classmethod
    def small(cls) -> Shape:
        return cls(profiles=2_000, messages=20_000)

    @classmethod
    def full(cls) -> Shape:
        return cls(profiles=100_000, messages=1_000_000)


def fill(db_path: str | Path, shape: Shape) -> None:
    """Add ``shape.profiles`` profiles and ``shape.messages`` messages to the (migrated, empty)
    store at ``db_path``, in one transaction, deterministically for a given seed."""
    rnd = random.Random(shape.seed)
    start = datetime(2023, 9, 1, tzinfo=UTC)
    span = timedelta(days=820)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN IMMEDIATE")
        campaign = conn.execute("SELECT id FROM campaigns ORDER BY id LIMIT 1").fetchone()
        if campaign is None:
            stamp = start.isoformat(timespec="microseconds")
            campaign_id = conn.execute(
                "INSERT INTO campaigns (name, kind, created_at) VALUES ('Direct', 'master', ?)",
                (stamp,),
            ).lastrowid
        else:
            campaign_id = campaign[0]
        conn.executemany(
            "INSERT OR IGNORE INTO modems (modem_id, label) VALUES (?, ?)",
            [(m, f"Modem {m}") for m in MODEMS],
        )
        base_id = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM profiles").fetchone()[0])
        profile_rows = []
        for i in range(shape.profiles):
            name = "" if rnd.random() < 0.04 else f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"
            custom = {}
            if rnd.random() < 0.3:
                custom = {"school": f"School {rnd.randrange(40)}", "grade": str(rnd.randrange(13))}
            created = start + span * (i / max(1, shape.profiles)) * 0.5
            stamp = created.isoformat(timespec="microseconds")
            profile_rows.append(
                (
                    base_id + i + 1,
                    name,
                    f"+1202{5_000_000 + base_id + i:07d}",
                    "inactive" if rnd.random() < 0.05 else "active",
                    0 if rnd.random() < 0.06 else 1,
                    json.dumps(custom),
                    stamp,
                    stamp,
                )
            )
        conn.executemany(
            "INSERT INTO profiles (id, name, phone, status, subscribed, custom, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            profile_rows,
        )
        ids = [row[0] for row in profile_rows]
        phones = {row[0]: row[2] for row in profile_rows}
        # A few profiles talk a lot (a third of all messages go to 1% of them).
        chatty = ids[: max(1, len(ids) // 100)]
        last_at: dict[int, str] = {}
        sticky: dict[int, str] = {}
        code_weights = [1.0 / (k + 1) for k in range(len(SHORT_CODES))]

        def rows():
            for n in range(shape.messages):
                pid = rnd.choice(chatty) if rnd.random() < 0.33 else rnd.choice(ids)
                at = start + span * (n / shape.messages)
                stamp = at.isoformat(timespec="microseconds")
                code = rnd.choices(SHORT_CODES, code_weights)[0]
                modem = MODEMS[SHORT_CODES.index(code) % len(MODEMS)]
                words = {
                    "day": rnd.choice(DAYS),
                    "route": rnd.choice(ROUTES),
                    "n": rnd.randrange(5, 40),
                }
                kind = agent_state = campaign = None
                if rnd.random() < 0.6:
                    direction = "out"
                    body = rnd.choice(OUT_TEXTS).format(**words)
                    r = rnd.random()
                    status = (
                        "delivered"
                        if r < 0.72
                        else "sent"
                        if r < 0.93
                        else "failed"
                        if r < 0.985
                        else "expired"
                    )
                    campaign = campaign_id
                else:
                    direction = "in"
                    body = rnd.choice(IN_TEXTS).format(**words)
                    status = "incomplete" if rnd.random() < 0.005 else "received"
                    kind = {"STOP": "opt-out", "HELP": "help"}.get(body, "reply")
                    if kind == "reply" and rnd.random() < 0.08:
                        kind = "unknown"
                    if kind in ("reply", "unknown"):
                        # Nearly all were answered long ago; the last few are still open.
                        agent_state = "open" if n > shape.messages - 200 else "answered"
                error = "the network could not deliver it" if status == "failed" else None
                last_at[pid] = stamp
                sticky[pid] = modem
                yield (
                    direction,
                    pid,
                    phones[pid],
                    code,
                    campaign,
                    modem,
                    body,
                    "gsm7",
                    1 + (len(body) > 160),
                    status,
                    kind,
                    agent_state,
                    error,
                    stamp,
                    stamp,
                )

        conn.executemany(
            "INSERT INTO messages (direction, profile_id, phone, short_code, campaign_id,"
            " modem_id, body, encoding, parts_total, status, kind, agent_state, error,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
        conn.executemany(
            "UPDATE profiles SET last_message_at = ?, sticky_modem = ? WHERE id = ?",
            [(last_at[pid], sticky[pid], pid) for pid in last_at],
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
