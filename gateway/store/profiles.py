"""Contact profiles: name, E.164 number, status, subscription and custom fields."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .db import Database
from .times import iso, now

# Each sort is an expression that an index of migration 3 holds with the id after it, so that
# a page is a walk of that index from the row before it. A profile that never had a message
# sorts first (ascending) by last message, as NULL did.
SORTABLE = {
    "name": "name COLLATE NOCASE",
    "phone": "phone",
    "status": "status",
    "subscribed": "subscribed",
    "last_message": "COALESCE(last_message_at, '')",
    "created": "created_at",
}


@dataclass(frozen=True)
class ProfilePage:
    """A page of the profile list: its rows in list order, how many profiles match in all,
    and how many of them come before the first row."""

    rows: list[sqlite3.Row]
    total: int
    position: int

    @property
    def has_previous(self) -> bool:
        return self.position > 0 and bool(self.rows)

    @property
    def has_next(self) -> bool:
        return self.position + len(self.rows) < self.total


class ProfileError(ValueError):
    """A profile cannot be stored as given (duplicate number, bad field)."""


def custom_fields(row: sqlite3.Row) -> dict[str, Any]:
    """The custom fields of a profile row as a dict."""
    try:
        value = json.loads(row["custom"] or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class Profiles:
    """Queries and changes on profiles. Numbers are E.164, already normalised by the caller."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        phone: str,
        name: str = "",
        *,
        status: str = "active",
        subscribed: bool = True,
        custom: dict[str, Any] | None = None,
        at: str | None = None,
    ) -> int:
        """Add a profile; ``at`` (ISO 8601) is when it was added if not now (the demo's seed,
        whose profiles were added before their conversations)."""
        if status not in ("active", "inactive"):
            raise ProfileError(f"status: must be active or inactive, not {status!r}")
        stamp = at or iso(now())
        try:
            with self.db.tx() as conn:
                cur = conn.execute(
                    "INSERT INTO profiles (name, phone, status, subscribed, custom, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        name.strip(),
                        phone,
                        status,
                        int(subscribed),
                        json.dumps(custom or {}, ensure_ascii=False),
                        stamp,
                        stamp,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise ProfileError(f"phone: a profile with {phone} already exists") from exc
        return int(cur.lastrowid)

    def get(self, profile_id: int) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM profiles WHERE id = ?", (profile_id,))

    def by_phone(self, phone: str) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM profiles WHERE phone = ?", (phone,))

    def by_ids(self, ids: Iterable[int]) -> dict[int, sqlite3.Row]:
        """The profiles with these ids, by id (ids with no profile are left out)."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        found: dict[int, sqlite3.Row] = {}
        # In chunks: SQLite limits the number of parameters of one statement.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.q(f"SELECT * FROM profiles WHERE id IN ({marks})", chunk):
                found[int(row["id"])] = row
        return found

    def get_or_create(self, phone: str, name: str = "") -> tuple[sqlite3.Row, bool]:
        """The profile with this number, creating it (active, subscribed) when there is none."""
        with self.db.tx():
            row = self.by_phone(phone)
            if row is not None:
                return row, False
            pid = self.add(phone, name)
            row = self.get(pid)
            assert row is not None
            return row, True

    def update(self, profile_id: int, **fields: Any) -> None:
        """Change name, phone, status, subscribed or custom."""
        allowed = {"name", "phone", "status", "subscribed", "custom"}
        unknown = set(fields) - allowed
        if unknown:
            raise ProfileError(f"unknown profile fields: {', '.join(sorted(unknown))}")
        if "status" in fields and fields["status"] not in ("active", "inactive"):
            raise ProfileError(f"status: must be active or inactive, not {fields['status']!r}")
        if "custom" in fields:
            fields["custom"] = json.dumps(fields["custom"] or {}, ensure_ascii=False)
        if "subscribed" in fields:
            fields["subscribed"] = int(bool(fields["subscribed"]))
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        try:
            with self.db.tx() as conn:
                conn.execute(
                    f"UPDATE profiles SET {sets}, updated_at = ? WHERE id = ?",
                    (*fields.values(), iso(now()), profile_id),
                )
        except sqlite3.IntegrityError as exc:
            raise ProfileError(
                f"phone: a profile with {fields.get('phone')} already exists"
            ) from exc

    def set_sticky_modem(self, profile_id: int, modem_id: str) -> None:
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE profiles SET sticky_modem = ? WHERE id = ? AND "
                "(sticky_modem IS NULL OR sticky_modem != ?)",
                (modem_id, profile_id, modem_id),
            )

    def touch(self, profile_id: int, at: str) -> None:
        """Record that a message went to or came from this profile at ``at``."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE profiles SET last_message_at = ? WHERE id = ? AND "
                "(last_message_at IS NULL OR last_message_at < ?)",
                (at, profile_id, at),
            )

    def page(
        self,
        query: str = "",
        *,
        sort: str = "name",
        descending: bool = False,
        status: str | None = None,
        after: int | None = None,
        before: int | None = None,
        last: bool = False,
        limit: int = 50,
    ) -> ProfilePage:
        """A page of profiles matching a name or number fragment (and ``status``), in ``sort``
        order: the first page; the one after profile ``after`` or before profile ``before``
        (the ids of the last and first rows shown); or with ``last``, the last page. Keyset
        pages: the five-hundredth costs what the first does."""
        key = SORTABLE.get(sort, SORTABLE["name"])
        where, params = _filters(query, status, leading=sort == "status")
        cursor = after if after is not None else before
        cursor_key = None
        if cursor is not None:
            found = self.db.q1(f"SELECT {key} AS k FROM profiles WHERE id = ?", (cursor,))
            cursor_key = None if found is None else found["k"]
        # Reading backwards (the page before a row, or the last page) walks the order the other
        # way and turns the rows round.
        backwards = (before is not None and cursor_key is not None) or (last and after is None)
        walk_desc = descending != backwards
        terms = list(where)
        walk_params = list(params)
        if cursor_key is not None:
            terms.append(_beyond(key, walk_desc))
            walk_params += [cursor_key, cursor_key, cursor]
        order = "DESC" if walk_desc else "ASC"
        rows = self.db.q(
            f"SELECT * FROM profiles {_where_sql(terms)} ORDER BY {key} {order}, id {order}"
            " LIMIT ?",
            (*walk_params, limit),
        )
        if backwards:
            rows.reverse()
        total = int(self.db.value(f"SELECT COUNT(*) FROM profiles {_where_sql(where)}", params))
        position = 0
        if rows:
            first = rows[0]
            first_key = self.db.value(f"SELECT {key} FROM profiles WHERE id = ?", (first["id"],))
            position = int(
                self.db.value(
                    f"SELECT COUNT(*) FROM profiles"
                    f" {_where_sql([*where, _beyond(key, not descending)])}",
                    (*params, first_key, first_key, first["id"]),
                )
            )
        return ProfilePage(rows=rows, total=total, position=position)

    def after(
        self,
        query: str = "",
        *,
        status: str | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> list[sqlite3.Row]:
        """Up to ``limit`` profiles matching a name or number fragment (and ``status``) with
        ids above ``after``, in id order: the REST API's keyset pages (new profiles come last,
        so a client that syncs keeps its place; no counting)."""
        where, params = _filters(query, status, leading=False)
        return self.db.q(
            f"SELECT * FROM profiles {_where_sql([*where, 'id > ?'])} ORDER BY id LIMIT ?",
            (*params, after, limit),
        )

    def batches(self, size: int = 1000) -> Iterator[list[sqlite3.Row]]:
        """Every profile in id order, ``size`` at a time (for exports: constant memory)."""
        last = 0
        while True:
            rows = self.db.q(
                "SELECT * FROM profiles WHERE id > ? ORDER BY id LIMIT ?", (last, size)
            )
            if rows:
                yield rows
            if len(rows) < size:
                return
            last = rows[-1]["id"]

    def custom_field_names(self) -> list[str]:
        """Every name used as a custom field by any profile, sorted (read in SQLite: the
        profiles are not loaded into memory)."""
        return [
            r["key"]
            for r in self.db.q(
                "SELECT DISTINCT j.key AS key FROM profiles, json_each(profiles.custom) AS j"
                " WHERE json_valid(profiles.custom) AND json_type(profiles.custom) = 'object'"
                " ORDER BY j.key"
            )
        ]

    def all(self) -> list[sqlite3.Row]:
        return self.db.q("SELECT * FROM profiles ORDER BY id")

    def count(self) -> int:
        return int(self.db.value("SELECT COUNT(*) FROM profiles"))


def _filters(query: str, status: str | None, *, leading: bool) -> tuple[list[str], list[Any]]:
    """WHERE terms and parameters for a name or number fragment and a status. The status is
    read from the rows (``+status``) unless the list is sorted by it, so that the sort's index
    leads the query."""
    terms: list[str] = []
    params: list[Any] = []
    if query.strip():
        q = query.strip()
        digits = "".join(c for c in q if c.isdigit())
        clause = "name LIKE ? ESCAPE '\\'"
        params.append(f"%{_like(q)}%")
        if digits:
            clause += " OR phone LIKE ?"
            params.append(f"%{digits}%")
        terms.append(f"({clause})")
    if status:
        terms.append("status = ?" if leading else "+status = ?")
        params.append(status)
    return terms, params


def _beyond(key: str, descending: bool) -> str:
    """Rows after (key, id) = (?, ?) in the order ``key, id`` (descending: before it), written
    so that SQLite walks the sort's index from there; takes the key twice, then the id."""
    if descending:
        return f"({key} <= ? AND ({key} < ? OR id < ?))"
    return f"({key} >= ? AND ({key} > ? OR id > ?))"


def _where_sql(terms: list[str]) -> str:
    return f"WHERE {' AND '.join(terms)}" if terms else ""


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
