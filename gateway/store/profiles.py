"""Contact profiles: name, E.164 number, status, subscription and custom fields."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .db import Database
from .times import iso, now

SORTABLE = {
    "name": "name COLLATE NOCASE",
    "phone": "phone",
    "status": "status",
    "subscribed": "subscribed",
    "last_message": "last_message_at",
    "created": "created_at",
}


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
    ) -> int:
        if status not in ("active", "inactive"):
            raise ProfileError(f"status: must be active or inactive, not {status!r}")
        stamp = iso(now())
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

    def search(
        self,
        query: str = "",
        *,
        sort: str = "name",
        descending: bool = False,
        limit: int = 50,
        offset: int = 0,
        status: str | None = None,
    ) -> tuple[list[sqlite3.Row], int]:
        """A page of profiles matching a name or number fragment, and the total that match."""
        where = []
        params: list[Any] = []
        if query.strip():
            q = query.strip()
            digits = "".join(c for c in q if c.isdigit())
            clause = "name LIKE ? ESCAPE '\\'"
            params.append(f"%{_like(q)}%")
            if digits:
                clause += " OR phone LIKE ?"
                params.append(f"%{digits}%")
            where.append(f"({clause})")
        if status:
            where.append("status = ?")
            params.append(status)
        sql_where = f"WHERE {' AND '.join(where)}" if where else ""
        order = SORTABLE.get(sort, SORTABLE["name"])
        direction = "DESC" if descending else "ASC"
        total = int(self.db.value(f"SELECT COUNT(*) FROM profiles {sql_where}", params))
        rows = self.db.q(
            f"SELECT * FROM profiles {sql_where} ORDER BY {order} {direction}, id {direction} "
            "LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return rows, total

    def all(self) -> list[sqlite3.Row]:
        return self.db.q("SELECT * FROM profiles ORDER BY id")

    def count(self) -> int:
        return int(self.db.value("SELECT COUNT(*) FROM profiles"))


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
