"""Audiences of broadcasts: conditions over profiles (what a segment saves), saved segments and
static lists, compiled to one SQL condition over ``profiles p``.

A condition is ``field op value``: a profile column (``name``, ``phone``, ``status``,
``subscribed``: the profile-wide switch), ``subscribed_to`` (subscribed to that short code, by
the store's one rule), a custom field of ``profiles.custom`` (any other name, or ``custom.NAME``),
``short_code`` (the short codes a profile has talked through, either way), ``list`` (member of
a static list), ``opted_in`` (the time of its latest opt-in, else when it was added),
``last_activity`` (its last message) or ``added``. Text compares ignore case. The text form
(``school = Lincoln Elementary``, ``grade in 3,4,5``, ``last_activity within 30``) is what the
CLI's ``--where`` and the segment page's rows both read (:func:`parse_condition`).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .db import Database
from .subscriptions import subscribed_sql
from .times import iso, now

SAMPLE_SIZE = 20
MAX_FIELD_CHARS = 64  # a custom field's name, as a merge field takes it
MAX_DAYS = 36_600  # "within N days": a century back is every date the store has


class AudienceError(ValueError):
    """A condition, segment or list that cannot be used as given; ``field`` names the part
    (``conditions``, ``name``, ``segment``, ``list``) and the message says what to change."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


# Each field's operators. Dates take ISO dates or times (in UTC); "within"/"not_within" a
# number of days back from now.
_TEXT_OPS = ("=", "!=", "in", "not in", "contains", "starts with", "is empty", "is not empty")
_DATE_OPS = ("before", "after", "within", "not within")
FIELDS: dict[str, tuple[str, ...]] = {
    "name": _TEXT_OPS,
    "phone": ("=", "!=", "in", "not in", "contains", "starts with"),
    "status": ("=", "!="),
    "subscribed": ("=",),
    "subscribed_to": ("=", "!="),
    "short_code": ("=", "!="),
    "list": ("=", "!="),
    "opted_in": _DATE_OPS,
    "last_activity": (*_DATE_OPS, "is empty", "is not empty"),
    "added": _DATE_OPS,
}
CUSTOM_OPS = _TEXT_OPS
ALL_OPS = sorted({*_TEXT_OPS, *_DATE_OPS}, key=len, reverse=True)
_NO_VALUE = ("is empty", "is not empty")
_YES = {"yes", "true", "1", "subscribed", "y"}
_NO = {"no", "false", "0", "unsubscribed", "opted out", "n"}


@dataclass(frozen=True)
class Condition:
    """One condition: ``field`` (a built-in name or a custom field), ``op`` and ``value``."""

    field: str
    op: str
    value: str = ""

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.value}".strip()


@dataclass(frozen=True)
class Definition:
    """A set of conditions: every one must hold (``match`` all) or at least one (any). No
    condition at all is every profile."""

    conditions: tuple[Condition, ...] = ()
    match: str = "all"

    def to_json(self) -> dict[str, Any]:
        return {"match": self.match, "conditions": [c.to_json() for c in self.conditions]}

    @classmethod
    def from_json(cls, data: Any) -> Definition:
        """A definition from its JSON (a segment's stored one, an API body); AudienceError."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise AudienceError("conditions", f"the conditions are not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise AudienceError("conditions", "the conditions must be an object")
        match = data.get("match", "all")
        if match not in ("all", "any"):
            raise AudienceError("conditions", f"match must be all or any, not {match!r}")
        raw = data.get("conditions", [])
        if not isinstance(raw, list):
            raise AudienceError("conditions", "conditions must be a list")
        conds = []
        for i, c in enumerate(raw, start=1):
            if not isinstance(c, dict):
                raise AudienceError("conditions", f"condition {i} must be an object")
            conds.append(
                checked(
                    Condition(
                        str(c.get("field", "")).strip(),
                        str(c.get("op", "")).strip().lower(),
                        str(c.get("value", "")).strip(),
                    )
                )
            )
        return cls(tuple(conds), match)


_COND = re.compile(
    r"^\s*(?P<field>.+?)\s*(?P<op>!=|=|"
    + "|".join(rf"\b{re.escape(op)}\b" for op in ALL_OPS if op not in ("=", "!="))
    + r")\s*(?P<value>.*?)\s*$",
    re.IGNORECASE,
)


def parse_condition(text: str) -> Condition:
    """``school = Lincoln Elementary``, ``grade in 3,4,5``, ``status != inactive``,
    ``last_activity within 30``: one condition from its text form; AudienceError."""
    m = _COND.match(text or "")
    if m is None:
        raise AudienceError(
            "conditions",
            f"cannot read the condition {text!r}: write FIELD = VALUE (or !=, in, not in,"
            " contains, starts with, is empty, before, after, within)",
        )
    return checked(Condition(m["field"].strip(), m["op"].lower(), m["value"].strip()))


def checked(c: Condition) -> Condition:
    """The condition if its field, operator and value fit together; else AudienceError."""
    name = c.field
    if not name:
        raise AudienceError("conditions", "a condition needs a field")
    if any(ch < " " or ch == "\x7f" for ch in name) or len(name) > MAX_FIELD_CHARS:
        raise AudienceError(
            "conditions",
            f"{name[:40]!r} is not a field name (no control characters, at most"
            f" {MAX_FIELD_CHARS} characters)",
        )
    if "\x00" in c.value:
        raise AudienceError("conditions", f"{name}: the value holds a NUL character")
    ops = FIELDS.get(name, CUSTOM_OPS)
    if c.op not in ops:
        raise AudienceError(
            "conditions", f"{name}: the operator {c.op!r} does not apply (use {', '.join(ops)})"
        )
    if c.op not in _NO_VALUE and not c.value:
        raise AudienceError("conditions", f"{name} {c.op}: a value is needed")
    if name == "status" and c.value.lower() not in ("active", "inactive"):
        raise AudienceError("conditions", f"status is active or inactive, not {c.value!r}")
    if name == "subscribed" and c.value.lower() not in _YES | _NO:
        raise AudienceError("conditions", f"subscribed is yes or no, not {c.value!r}")
    if c.op in ("within", "not within"):
        # ASCII digits only ("²".isdigit() is true) and a span a date can take.
        if not (c.value.isascii() and c.value.isdigit()) or int(c.value) > MAX_DAYS:
            raise AudienceError(
                "conditions",
                f"{name} {c.op}: a number of days from 0 to {MAX_DAYS}, not {c.value!r}",
            )
    elif c.op in ("before", "after"):
        _when(name, c.value)
    return c


def _when(name: str, value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise AudienceError(
            "conditions", f"{name}: {value!r} is not a date (write YYYY-MM-DD or an ISO time)"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso(moment) or ""


def _values(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _text_sql(expr: str, c: Condition) -> tuple[str, list[Any]]:
    """A text comparison of ``expr`` (case-insensitive); an absent value reads as empty."""
    e = f"COALESCE(CAST({expr} AS TEXT), '')"
    if c.op == "=":
        return f"{e} = ? COLLATE NOCASE", [c.value]
    if c.op == "!=":
        return f"{e} != ? COLLATE NOCASE", [c.value]
    if c.op in ("in", "not in"):
        vals = _values(c.value)
        neg = "NOT " if c.op == "not in" else ""
        return f"{e} COLLATE NOCASE {neg}IN ({_marks(len(vals))})", vals
    if c.op == "contains":
        return f"{e} LIKE ? ESCAPE '\\'", [f"%{_like(c.value)}%"]
    if c.op == "starts with":
        return f"{e} LIKE ? ESCAPE '\\'", [f"{_like(c.value)}%"]
    if c.op == "is empty":
        return f"TRIM({e}) = ''", []
    return f"TRIM({e}) != ''", []


def _date_sql(expr: str, c: Condition, at: datetime) -> tuple[str, list[Any]]:
    if c.op == "before":
        return f"{expr} < ?", [_when(c.field, c.value)]
    if c.op == "after":
        return f"{expr} >= ?", [_when(c.field, c.value)]
    since = iso(at - timedelta(days=int(c.value)))
    if c.op == "within":
        return f"{expr} >= ?", [since]
    return f"({expr} IS NULL OR {expr} < ?)", [since]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def custom_path(name: str) -> str:
    """The JSON path of a custom field in ``profiles.custom``."""
    return '$."' + name.replace('"', '\\"') + '"'


def condition_sql(c: Condition, at: datetime | None = None) -> tuple[str, list[Any]]:
    """One condition as an SQL term over ``profiles p`` and its parameters."""
    at = at or now()
    f = c.field
    if f == "name":
        return _text_sql("p.name", c)
    if f == "phone":
        if c.op in ("=", "!=", "in", "not in"):
            vals = _values(c.value)
            neg = "NOT " if c.op in ("!=", "not in") else ""
            return f"p.phone {neg}IN ({_marks(len(vals))})", vals
        return _text_sql("p.phone", c)
    if f == "status":
        op = "=" if c.op == "=" else "!="
        return f"p.status {op} ?", [c.value.lower()]
    if f == "subscribed":
        return "p.subscribed = ?", [1 if c.value.lower() in _YES else 0]
    if f == "subscribed_to":
        # "!= C": not subscribed to C (opted out of it, or of everything).
        return f"{subscribed_sql()} = ?", [c.value, 0 if c.op == "!=" else 1]
    if f == "short_code":
        # IN, not a correlated EXISTS: the short code's profiles are found through the key of
        # profile_short_codes, not by probing it once per profile.
        neg = "NOT " if c.op == "!=" else ""
        return (
            f"p.id {neg}IN (SELECT profile_id FROM profile_short_codes WHERE short_code = ?)",
            [c.value],
        )
    if f == "list":
        neg = "NOT " if c.op == "!=" else ""
        return (
            f"p.id {neg}IN (SELECT list_members.profile_id FROM list_members"
            " WHERE list_members.list_id IN (SELECT id FROM lists WHERE name = ? COLLATE NOCASE))",
            [c.value],
        )
    if f == "opted_in":
        expr = (
            "COALESCE((SELECT MAX(o.created_at) FROM opt_events o WHERE o.profile_id = p.id"
            " AND o.action = 'opt_in'), p.created_at)"
        )
        return _date_sql(expr, c, at)
    if f == "last_activity":
        if c.op == "is empty":
            return "p.last_message_at IS NULL", []
        if c.op == "is not empty":
            return "p.last_message_at IS NOT NULL", []
        # Written as profiles_last_message's expression, so that the index serves the range.
        last = "COALESCE(p.last_message_at, '')"
        if c.op == "before":
            return f"({last} < ? AND p.last_message_at IS NOT NULL)", [_when(c.field, c.value)]
        if c.op == "not within":  # never active counts as not within
            return f"{last} < ?", [iso(at - timedelta(days=int(c.value)))]
        return _date_sql(last, c, at)
    if f == "added":
        return _date_sql("p.created_at", c, at)
    name = f.removeprefix("custom.")
    return _text_sql(custom_expr(name), c)


def custom_expr(name: str) -> str:
    """The SQL expression of custom field ``name`` of profile ``p``."""
    return f"json_extract(p.custom, '{_quoted(custom_path(name))}')"


def _quoted(text: str) -> str:
    # The path is written into the SQL (a parameter would hide the expression from the
    # planner's view and from an index on it); single quotes are doubled.
    return text.replace("'", "''")


def definition_sql(d: Definition, at: datetime | None = None) -> tuple[str, list[Any]]:
    """The definition as one SQL condition over ``profiles p`` ("1" for no condition)."""
    if not d.conditions:
        return "1", []
    terms, params = [], []
    for c in d.conditions:
        sql, p = condition_sql(c, at)
        terms.append(f"({sql})")
        params += p
    return (" AND " if d.match == "all" else " OR ").join(terms), params


def may_text_sql(short_code: str) -> tuple[str, list[Any]]:
    """The one SQL answer to "may profile ``p`` be texted from ``short_code``" for broadcasts
    (their skipped count, and again when each recipient's message is made): active and
    subscribed to that short code, by the store's one subscription rule (store/subscriptions.py).
    A number that cannot get SMS is found by messaging (numbering plan data), not here.
    """
    return f"p.status = 'active' AND {subscribed_sql()} = 1", [short_code]


# -- saved segments and static lists -----------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """How many profiles a definition matches and the first of them (by id)."""

    count: int
    sample: list[sqlite3.Row] = field(default_factory=list)


class Audiences:
    """Segments (saved definitions), static lists and the count and sample of a definition."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- counting --------------------------------------------------------------------------

    def preview(self, d: Definition, *, sample: int = SAMPLE_SIZE) -> Preview:
        """The count of the profiles ``d`` matches and the first ``sample`` of them."""
        where, params = definition_sql(d)
        count = self.count(where, params)
        rows = (
            self.db.q(
                f"SELECT p.* FROM profiles p WHERE {where} ORDER BY p.id LIMIT ?",
                (*params, sample),
            )
            if sample
            else []
        )
        return Preview(count, rows)

    def explain(self, d: Definition) -> list[str]:
        """SQLite's query plan of the count of ``d`` (tests/scale asserts it uses an index)."""
        where, params = definition_sql(d)
        return [
            r["detail"]
            for r in self.db.q(
                f"EXPLAIN QUERY PLAN SELECT COUNT(*) FROM profiles p WHERE {where}", params
            )
        ]

    def longest_values(
        self, where: str, params: Sequence[Any], paths: Iterable[str]
    ) -> dict[str, list[str]]:
        """For each custom field (a name) the longest values it has over the profiles of
        ``where``: the longest of all and the longest few that are not plain ASCII (which may
        force Unicode), for the counter's longest expansion."""
        out: dict[str, list[str]] = {}
        for name in paths:
            expr = f"CAST({custom_expr(name)} AS TEXT)"
            if name in ("name", "first_name", "phone"):
                expr = {
                    "name": "p.name",
                    "phone": "p.phone",
                    # The first word of the name, as messaging's expansion takes it.
                    "first_name": "CASE WHEN instr(trim(p.name), ' ') > 0 THEN"
                    " substr(trim(p.name), 1, instr(trim(p.name), ' ') - 1) ELSE trim(p.name) END",
                }[name]
            longest = self.db.q(
                f"SELECT {expr} AS v FROM profiles p WHERE {where} AND {expr} IS NOT NULL"
                " ORDER BY length(v) DESC LIMIT 1",
                params,
            )
            wide = self.db.q(
                f"SELECT {expr} AS v FROM profiles p WHERE {where} AND {expr} IS NOT NULL"
                " AND v GLOB ? ORDER BY length(v) DESC LIMIT 5",
                (*params, "*[^ -~]*"),
            )
            out[name] = list(dict.fromkeys([r["v"] for r in longest] + [r["v"] for r in wide]))
        return out

    def timezones(self, where: str, params: Sequence[Any], field_name: str) -> list[str]:
        """The distinct values of the custom field ``field_name`` (a time zone) over ``where``."""
        expr = custom_expr(field_name)
        return [
            str(r["tz"])
            for r in self.db.q(
                f"SELECT DISTINCT {expr} AS tz FROM profiles p"
                f" WHERE {where} AND {expr} IS NOT NULL",
                params,
            )
        ]

    def count(self, where: str, params: Sequence[Any]) -> int:
        """How many profiles ``where`` (a compiled audience) matches."""
        return int(self.db.value(f"SELECT COUNT(*) FROM profiles p WHERE {where}", params))

    def first(self, where: str, params: Sequence[Any]) -> sqlite3.Row | None:
        """The first profile (by id) of ``where``: the sample of a preview or a test send."""
        return self.db.q1(f"SELECT p.* FROM profiles p WHERE {where} ORDER BY p.id LIMIT 1", params)

    def field_exists(self, name: str) -> bool:
        """Whether any profile has the custom field ``name`` (stops at the first one)."""
        return (
            self.db.value(f"SELECT 1 FROM profiles p WHERE {custom_expr(name)} IS NOT NULL LIMIT 1")
            is not None
        )

    # -- segments --------------------------------------------------------------------------

    def segments(self) -> list[sqlite3.Row]:
        return self.db.q("SELECT * FROM segments ORDER BY name COLLATE NOCASE")

    def segment(self, segment_id: int) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM segments WHERE id = ?", (segment_id,))

    def segment_named(self, name: str) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM segments WHERE name = ? COLLATE NOCASE", (name,))

    def save_segment(
        self, name: str, d: Definition, *, segment_id: int | None = None, user: str | None = None
    ) -> int:
        """Create (or, with ``segment_id``, change) a segment; AudienceError for a name in use."""
        name = name.strip()
        if not name:
            raise AudienceError("name", "a segment needs a name")
        stamp = iso(now())
        body = json.dumps(d.to_json(), ensure_ascii=False)
        try:
            with self.db.tx() as conn:
                if segment_id is None:
                    cur = conn.execute(
                        "INSERT INTO segments (name, definition, created_by, created_at,"
                        " updated_at) VALUES (?, ?, ?, ?, ?)",
                        (name, body, user, stamp, stamp),
                    )
                    return int(cur.lastrowid)
                conn.execute(
                    "UPDATE segments SET name = ?, definition = ?, updated_at = ? WHERE id = ?",
                    (name, body, stamp, segment_id),
                )
                return segment_id
        except sqlite3.IntegrityError as exc:
            raise AudienceError("name", f"a segment named {name!r} already exists") from exc

    def delete_segment(self, segment_id: int) -> None:
        with self.db.tx() as conn:
            conn.execute("DELETE FROM segments WHERE id = ?", (segment_id,))

    # -- static lists ----------------------------------------------------------------------

    def lists(self) -> list[sqlite3.Row]:
        return self.db.q(
            "SELECT l.*, (SELECT COUNT(*) FROM list_members m WHERE m.list_id = l.id) AS members"
            " FROM lists l ORDER BY l.name COLLATE NOCASE"
        )

    def list_names(self) -> list[str]:
        """The lists' names (for a choice; no member counts)."""
        return [r["name"] for r in self.db.q("SELECT name FROM lists ORDER BY name COLLATE NOCASE")]

    def list_(self, list_id: int) -> sqlite3.Row | None:
        return self.db.q1(
            "SELECT l.*, (SELECT COUNT(*) FROM list_members m WHERE m.list_id = l.id) AS members"
            " FROM lists l WHERE l.id = ?",
            (list_id,),
        )

    def list_named(self, name: str) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM lists WHERE name = ? COLLATE NOCASE", (name,))

    def create_list(self, name: str, *, source: str = "", user: str | None = None) -> int:
        name = name.strip()
        if not name:
            raise AudienceError("name", "a list needs a name")
        stamp = iso(now())
        try:
            with self.db.tx() as conn:
                cur = conn.execute(
                    "INSERT INTO lists (name, source, created_by, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (name, source, user, stamp, stamp),
                )
                return int(cur.lastrowid)
        except sqlite3.IntegrityError as exc:
            raise AudienceError("name", f"a list named {name!r} already exists") from exc

    def add_members(self, list_id: int, profile_ids: Iterable[int]) -> int:
        """Add profiles to a list (those already in it stay once); returns how many were new."""
        added = 0
        with self.db.tx() as conn:
            for pid in profile_ids:
                added += conn.execute(
                    "INSERT OR IGNORE INTO list_members (list_id, profile_id)"
                    " SELECT ?, id FROM profiles WHERE id = ?",
                    (list_id, int(pid)),
                ).rowcount
            conn.execute("UPDATE lists SET updated_at = ? WHERE id = ?", (iso(now()), list_id))
        return added

    def members(self, list_id: int, *, limit: int = SAMPLE_SIZE) -> list[sqlite3.Row]:
        return self.db.q(
            "SELECT p.* FROM list_members m JOIN profiles p ON p.id = m.profile_id"
            " WHERE m.list_id = ? ORDER BY p.id LIMIT ?",
            (list_id, limit),
        )

    def delete_list(self, list_id: int) -> None:
        with self.db.tx() as conn:
            conn.execute("DELETE FROM list_members WHERE list_id = ?", (list_id,))
            conn.execute("DELETE FROM lists WHERE id = ?", (list_id,))
