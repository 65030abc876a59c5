"""Lists of messages that stay fast at a million rows: filters served by an index each, keyset
pages by id (never OFFSET, never a COUNT nobody reads) and full-text search of the text.

Every list is newest first. A page is read after or before the id of a row already shown, so
the thousandth page costs what the first does. Which index leads a query is chosen here, by
how few rows a filter is likely to keep, and the other filters are written ``+column = ?`` so
that SQLite reads them from the rows rather than weighing their indexes without statistics.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .db import Database
from .states import MessageStatus

# Most outbound messages end delivered or sent and most inbound ones received: a filter on one
# of these keeps many rows, one on another status keeps few.
COMMON_STATES = (MessageStatus.DELIVERED, MessageStatus.SENT, MessageStatus.RECEIVED)
# The order in which filters lead a query, fewest rows kept first (see _where).
# Direction has no index of its own (two values: walking the ids finds a page as fast).
_LEAD_ORDER = ("rare_status", "profile_id", "modem_id", "short_code", "kind", "status")
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 8
MIN_PREFIX = 3


@dataclass(frozen=True)
class MessageFilter:
    """What a list of messages is narrowed to. ``text``: words the body must contain (each one
    also as the start of a longer word: "bus" finds "buses"); ``profile_id``: one profile's
    messages (a number searched for)."""

    text: str = ""
    profile_id: int | None = None
    direction: str | None = None
    status: str | None = None
    short_code: str | None = None
    modem_id: str | None = None
    kind: str | None = None
    # Only messages stored at or after this store timestamp (UTC ISO text, as times.iso()).
    since: str | None = None


@dataclass(frozen=True)
class MessagePage:
    """One page of a list, newest first, with the ids to read the pages beside it from:
    ``newer_than`` (pass as ``after``) when newer rows exist, ``older_than`` (pass as
    ``before``) when older ones do."""

    rows: list[sqlite3.Row]
    newer_than: int | None
    older_than: int | None


def match_expression(text: str) -> str | None:
    """The FTS5 query for the words of ``text`` (all of them, each as a word or a word's
    start), or None when it holds no word. Quoting each word keeps FTS5's own syntax (AND, OR,
    NEAR, quotes, columns) out of what a user types. A word of one or two letters is looked
    for whole: as a prefix it would gather most of the index ("a" starts a word of nearly every
    message)."""
    words = _WORD.findall(text)[:MAX_WORDS]
    if not words:
        return None
    return " ".join(f'"{w}"*' if len(w) >= MIN_PREFIX else f'"{w}"' for w in words)


def _where(f: MessageFilter) -> tuple[str, list[Any], bool]:
    """The WHERE terms (without the id bound) and their parameters, and whether the query must
    be driven from the full-text index. ``m`` is messages; ``f`` the full-text table."""
    terms: list[str] = []
    params: list[Any] = []
    fts = None
    if f.text:
        fts = match_expression(f.text)
        if fts is None:
            terms.append("0")  # punctuation only: nothing can match
    values = {
        "profile_id": f.profile_id,
        "modem_id": f.modem_id,
        "short_code": f.short_code,
        "kind": f.kind,
        "status": f.status,
        "direction": f.direction,
    }
    present = {k for k, v in values.items() if v is not None and v != ""}
    lead: str | None = None
    if fts is None:
        for name in _LEAD_ORDER:
            if name == "rare_status":
                if "status" in present and f.status not in COMMON_STATES:
                    lead = "status"
                    break
            elif name in present:
                lead = name
                break
    else:
        terms.append("messages_fts MATCH ?")
        params.append(fts)
    for name in ("profile_id", "modem_id", "short_code", "kind", "status", "direction"):
        if name in present:
            terms.append(f"{'' if name == lead else '+'}m.{name} = ?")
            params.append(values[name])
    return " AND ".join(terms), params, fts is not None


def first_id_since(db: Database, since: str) -> int | None:
    """The smallest id of a message stored at or after ``since``, or None when none was; by
    bisecting the ids (primary key look-ups, about 20 at a million rows), since ids grow with
    ``created_at`` and no index on ``created_at`` is kept for this alone."""
    # Two look-ups, not MIN and MAX in one query: SQLite reads either end of the primary key
    # only for a lone MIN or MAX, and would scan the table for both together.
    bottom = db.value("SELECT MIN(id) FROM messages")
    top = db.value("SELECT MAX(id) FROM messages")
    if bottom is None or top is None:
        return None
    lo, hi = int(bottom), int(top) + 1  # the answer is in [lo, hi); hi means none is
    while lo < hi:
        mid = (lo + hi) // 2
        row = db.q1("SELECT id, created_at FROM messages WHERE id >= ? ORDER BY id LIMIT 1", (mid,))
        if row is None or row["created_at"] >= since:
            hi = mid
        else:
            lo = row["id"] + 1
    return None if lo > top else lo


def _page_sql(f: MessageFilter, bound: str, order: str, db: Database) -> tuple[str, list[Any]]:
    where, params, fts = _where(f)
    select = "SELECT m.*, p.name AS profile_name"
    if fts:
        # FTS5 walks its own rowids in either order and takes the rowid bound itself.
        source = (
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            " JOIN profiles p ON p.id = m.profile_id"
        )
        key = "messages_fts.rowid"
    else:
        source = "FROM messages m JOIN profiles p ON p.id = m.profile_id"
        key = "m.id"
    terms = [where] if where else []
    if f.since is not None:
        # The id bound stops the walk at the first message of the time; the time itself is
        # checked on the rows too (a message stored out of order is still left out).
        floor = first_id_since(db, f.since)
        terms.append(f"{key} >= ?")
        terms.append("+m.created_at >= ?")
        params = [*params, floor if floor is not None else 2**62, f.since]
    terms.append(f"{key} {bound} ?")  # last: the caller passes its value after ``params``
    sql = f"{select} {source} WHERE {' AND '.join(terms)} ORDER BY {key} {order} LIMIT ?"
    return sql, params


def page(
    db: Database,
    f: MessageFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> MessagePage:
    """The page of messages matching ``f`` just older than id ``before``, or just newer than id
    ``after``, or the newest page when neither is given."""
    if after is not None:
        sql, params = _page_sql(f, ">", "ASC", db)
        rows = db.q(sql, (*params, after, limit + 1))
        newer = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        return MessagePage(
            rows=rows,
            newer_than=rows[0]["id"] if newer and rows else None,
            # Rows newer than ``after`` were asked for, so the row ``after`` names is older.
            older_than=rows[-1]["id"] if rows else after + 1,
        )
    # Without a bound, the bound is above every id: each page's query has the same shape.
    upper = before if before is not None else 2**62
    sql, params = _page_sql(f, "<", "DESC", db)
    rows = db.q(sql, (*params, upper, limit + 1))
    older = len(rows) > limit
    rows = rows[:limit]
    return MessagePage(
        rows=rows,
        newer_than=rows[0]["id"] if before is not None and rows else None,
        older_than=rows[-1]["id"] if older and rows else None,
    )


def matching(db: Database, f: MessageFilter, *, batch: int = 500) -> Iterator[sqlite3.Row]:
    """Every message matching ``f``, newest first, read ``batch`` rows at a time by id (for
    exports: constant memory, each batch as fast as the first). A message stored meanwhile
    is newer than the first batch and is not included."""
    before = 2**62
    sql, params = _page_sql(f, "<", "DESC", db)
    while True:
        rows = db.q(sql, (*params, before, batch))
        yield from rows
        if len(rows) < batch:
            return
        before = rows[-1]["id"]
