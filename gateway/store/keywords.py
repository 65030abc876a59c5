"""Keywords per short code (``keywords``) and the opt-in paths they start (``keyword_paths``).

A keyword row holds what texting the word does: its reply, the campaign it subscribes to, a
double opt-in with its time limit, and the questions of its path (a JSON list). A path row is
one person's place on one keyword's path; its state moves only as ``PATH`` (store/states.py)
allows, guarded here and by the schema's triggers (migration 7).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from .db import Database
from .states import OPEN_PATHS, PATH, PathState, sql_list
from .times import iso, now


class KeywordExists(ValueError):
    """The short code already has a live keyword with this word."""


@dataclass(frozen=True)
class NewKeyword:
    """A keyword as checked by messaging/keywords.py, ready to store."""

    short_code: str
    word: str
    match_key: str
    reply: str
    campaign: str | None = None  # its name as given; campaign_id once looked up
    campaign_id: int | None = None
    double_opt_in: bool = False
    confirm_prompt: str = ""
    time_limit_minutes: int = 1440
    questions: tuple[dict[str, Any], ...] = ()
    done_reply: str = ""
    exit_word: str = "EXIT"
    exit_reply: str = ""
    created_by: str | None = None


def questions_of(row: sqlite3.Row) -> list[dict[str, Any]]:
    """The questions of a keyword row as a list of {field, ask, choices, invalid}."""
    try:
        value = json.loads(row["questions"] or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _settings(k: NewKeyword) -> tuple[Any, ...]:
    """What a keyword does, in the column order of :meth:`Keywords.add` and
    :meth:`Keywords.update` (reply through exit_reply)."""
    return (
        k.reply,
        k.campaign_id,
        int(k.double_opt_in),
        k.confirm_prompt,
        k.time_limit_minutes,
        json.dumps(list(k.questions), ensure_ascii=False),
        k.done_reply,
        k.exit_word,
        k.exit_reply,
    )


class Keywords:
    """Live and removed keywords; a removed one keeps its row for the paths that name it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, k: NewKeyword) -> int:
        try:
            with self.db.tx() as conn:
                cur = conn.execute(
                    "INSERT INTO keywords (short_code, word, match_key, reply, campaign_id,"
                    " double_opt_in, confirm_prompt, time_limit_minutes, questions, done_reply,"
                    " exit_word, exit_reply, created_at, created_by)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (k.short_code, k.word, k.match_key, *_settings(k), iso(now()), k.created_by),
                )
        except sqlite3.IntegrityError as exc:
            raise KeywordExists(
                f"word: short code {k.short_code} already has the keyword {k.word!r}"
            ) from exc
        return int(cur.lastrowid)

    def update(self, keyword_id: int, k: NewKeyword) -> None:
        """Change what a live keyword does (not its short code or word)."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE keywords SET reply = ?, campaign_id = ?, double_opt_in = ?,"
                " confirm_prompt = ?, time_limit_minutes = ?, questions = ?, done_reply = ?,"
                " exit_word = ?, exit_reply = ? WHERE id = ? AND removed_at IS NULL",
                (*_settings(k), keyword_id),
            )

    def get(self, keyword_id: int) -> sqlite3.Row | None:
        return self.db.q1(
            "SELECT k.*, c.name AS campaign FROM keywords k"
            " LEFT JOIN campaigns c ON c.id = k.campaign_id WHERE k.id = ?",
            (keyword_id,),
        )

    def find(self, short_code: str, match_key: str) -> sqlite3.Row | None:
        """The live keyword of ``short_code`` whose word squashes to ``match_key``."""
        return self.db.q1(
            "SELECT * FROM keywords WHERE short_code = ? AND match_key = ? AND removed_at IS NULL",
            (short_code, match_key),
        )

    def live(self, short_code: str | None = None) -> list[sqlite3.Row]:
        """Every live keyword (of one short code), by short code and word, with its campaign's
        name and how many paths it started, are open and were completed."""
        where = "k.removed_at IS NULL" + (" AND k.short_code = ?" if short_code else "")
        params = (short_code,) if short_code else ()
        return self.db.q(
            "SELECT k.*, c.name AS campaign,"
            " (SELECT COUNT(*) FROM keyword_paths p WHERE p.keyword_id = k.id) AS started,"
            " (SELECT COUNT(*) FROM keyword_paths p WHERE p.keyword_id = k.id"
            f"   AND p.state IN {sql_list(OPEN_PATHS)}) AS open,"
            " (SELECT COUNT(*) FROM keyword_paths p WHERE p.keyword_id = k.id"
            f"   AND p.state = '{PathState.DONE}') AS done"
            f" FROM keywords k LEFT JOIN campaigns c ON c.id = k.campaign_id WHERE {where}"
            " ORDER BY k.short_code, k.match_key",
            params,
        )

    def remove(self, keyword_id: int) -> bool:
        """Remove a live keyword; its open paths are cancelled. False when there was none."""
        stamp = iso(now())
        with self.db.tx() as conn:
            gone = conn.execute(
                "UPDATE keywords SET removed_at = ? WHERE id = ? AND removed_at IS NULL",
                (stamp, keyword_id),
            ).rowcount
            if gone:
                conn.execute(
                    f"UPDATE keyword_paths SET state = '{PathState.CANCELLED}', updated_at = ?"
                    f" WHERE keyword_id = ? AND {PATH.guard(PathState.CANCELLED, *OPEN_PATHS)}",
                    (stamp, keyword_id),
                )
        return bool(gone)

    def campaign_id_for(self, name: str, created_by: str | None = None) -> int:
        """The id of the campaign named ``name`` (case-insensitive), made as a bulk campaign
        when there is none: a keyword's subscriptions are recorded under it."""
        with self.db.tx() as conn:
            row = conn.execute(
                "SELECT id FROM campaigns WHERE name = ? COLLATE NOCASE ORDER BY id LIMIT 1",
                (name,),
            ).fetchone()
            if row is not None:
                return int(row["id"])
            cur = conn.execute(
                "INSERT INTO campaigns (name, kind, created_at, created_by)"
                " VALUES (?, 'bulk', ?, ?)",
                (name, iso(now()), created_by),
            )
            return int(cur.lastrowid)


class KeywordPaths:
    """Who is where on which keyword's path; kept in the store, so a restart in the middle of
    a path goes on where it was."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open_for(self, profile_id: int, short_code: str) -> sqlite3.Row | None:
        """The profile's open path on this short code (at most one), with its keyword."""
        return self.db.q1(
            "SELECT p.*, k.word, k.reply, k.campaign_id, k.double_opt_in, k.confirm_prompt,"
            " k.time_limit_minutes, k.questions, k.done_reply, k.exit_word, k.exit_reply"
            " FROM keyword_paths p JOIN keywords k ON k.id = p.keyword_id"
            f" WHERE p.profile_id = ? AND p.short_code = ? AND p.state IN {sql_list(OPEN_PATHS)}",
            (profile_id, short_code),
        )

    def start(
        self, profile_id: int, short_code: str, keyword_id: int, state: PathState, expires_at: str
    ) -> int:
        """A new path: open (an open one of the profile on this short code ends as cancelled
        first: texting a keyword again starts over), or ``done`` at once (a keyword with
        nothing to wait for, recorded for its counts; an open path is left as it is)."""
        if state not in (*OPEN_PATHS, PathState.DONE):
            raise ValueError(f"a path starts open or done, not {state}")
        stamp = iso(now())
        with self.db.tx() as conn:
            if state in OPEN_PATHS:
                conn.execute(
                    f"UPDATE keyword_paths SET state = '{PathState.CANCELLED}', updated_at = ?"
                    " WHERE profile_id = ? AND short_code = ?"
                    f" AND {PATH.guard(PathState.CANCELLED, *OPEN_PATHS)}",
                    (stamp, profile_id, short_code),
                )
            cur = conn.execute(
                "INSERT INTO keyword_paths (profile_id, short_code, keyword_id, state, step,"
                " started_at, updated_at, expires_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                (profile_id, short_code, keyword_id, state.value, stamp, stamp, expires_at),
            )
            return int(cur.lastrowid)

    def move(
        self,
        path_id: int,
        new: PathState,
        *old: PathState,
        step: int | None = None,
        expires_at: str | None = None,
    ) -> bool:
        """Move a path from one of ``old`` to ``new`` (and its step and expiry when given);
        False when it was no longer in ``old`` (another thread moved it first)."""
        sets = ["state = ?", "updated_at = ?"]
        params: list[Any] = [new.value, iso(now())]
        if step is not None:
            sets.append("step = ?")
            params.append(step)
        if expires_at is not None:
            sets.append("expires_at = ?")
            params.append(expires_at)
        with self.db.tx() as conn:
            return bool(
                conn.execute(
                    f"UPDATE keyword_paths SET {', '.join(sets)}"
                    f" WHERE id = ? AND {PATH.guard(new, *old)}",
                    (*params, path_id),
                ).rowcount
            )

    def expire_due(self, at: str) -> int:
        """Open paths whose time ran out before ``at`` end as expired; how many did."""
        with self.db.tx() as conn:
            return conn.execute(
                f"UPDATE keyword_paths SET state = '{PathState.EXPIRED}', updated_at = ?"
                f" WHERE expires_at <= ? AND {PATH.guard(PathState.EXPIRED, *OPEN_PATHS)}",
                (at, at),
            ).rowcount

    def next_expiry(self) -> str | None:
        """When the first open path runs out (None: no open path)."""
        return self.db.value(
            f"SELECT MIN(expires_at) FROM keyword_paths WHERE state IN {sql_list(OPEN_PATHS)}"
        )

    def of_profile(self, profile_id: int, limit: int = 20) -> list[sqlite3.Row]:
        """The profile's latest paths, newest first, with their keyword's word."""
        return self.db.q(
            "SELECT p.*, k.word FROM keyword_paths p JOIN keywords k ON k.id = p.keyword_id"
            " WHERE p.profile_id = ? ORDER BY p.id DESC LIMIT ?",
            (profile_id, limit),
        )
