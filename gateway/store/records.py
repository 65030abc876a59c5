"""The smaller tables: modems seen, campaigns, opt-in/opt-out history, the audit log and the
concatenation references (a ReferenceAllocator shared by every modem, kept across restarts)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..modem.refs import step
from .db import Database
from .times import iso, now

MASTER_CAMPAIGN = "Master campaign"


class ModemRecords:
    """What the gateway knows of each modem it has seen, kept across restarts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def seen(self, modem_id: str, **identity: Any) -> None:
        """Record a modem coming up with its identity (imei, iccid, imsi, number, model...)."""
        cols = ("imei", "iccid", "imsi", "number", "label", "manufacturer", "model", "firmware")
        values = {k: identity.get(k) for k in cols}
        stamp = iso(now())
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO modems (modem_id, first_seen, last_seen, last_up) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (modem_id) DO UPDATE SET last_seen = excluded.last_seen,"
                " last_up = excluded.last_up",
                (modem_id, stamp, stamp, stamp),
            )
            for col, value in values.items():
                if value is not None:
                    conn.execute(
                        f"UPDATE modems SET {col} = ? WHERE modem_id = ?", (value, modem_id)
                    )

    def down(self, modem_id: str) -> None:
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE modems SET last_down = ? WHERE modem_id = ?", (iso(now()), modem_id)
            )

    def count(self, modem_id: str, *, sent: int = 0, failed: int = 0) -> None:
        with self.db.tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO modems (modem_id, first_seen) VALUES (?, ?)",
                (modem_id, iso(now())),
            )
            conn.execute(
                "UPDATE modems SET sent_count = sent_count + ?, failed_count = failed_count + ?"
                " WHERE modem_id = ?",
                (sent, failed, modem_id),
            )

    def get(self, modem_id: str) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM modems WHERE modem_id = ?", (modem_id,))

    def all(self) -> list[sqlite3.Row]:
        return self.db.q("SELECT * FROM modems ORDER BY modem_id")


class Campaigns:
    """The master campaign (every one-off text and chat reply) and bulk campaigns."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def master_id(self) -> int:
        # Read first: a write would wait for the store's check at start (Store.open).
        row = self.db.q1("SELECT id FROM campaigns WHERE kind = 'master' ORDER BY id LIMIT 1")
        if row is not None:
            return int(row["id"])
        with self.db.tx() as conn:
            row = conn.execute(
                "SELECT id FROM campaigns WHERE kind = 'master' ORDER BY id LIMIT 1"
            ).fetchone()
            if row is not None:
                return int(row["id"])
            cur = conn.execute(
                "INSERT INTO campaigns (name, kind, created_at) VALUES (?, 'master', ?)",
                (MASTER_CAMPAIGN, iso(now())),
            )
            return int(cur.lastrowid)

    def add_bulk(self, name: str, created_by: str | None = None) -> int:
        with self.db.tx() as conn:
            cur = conn.execute(
                "INSERT INTO campaigns (name, kind, created_at, created_by)"
                " VALUES (?, 'bulk', ?, ?)",
                (name, iso(now()), created_by),
            )
            return int(cur.lastrowid)

    def get(self, campaign_id: int) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM campaigns WHERE id = ?", (campaign_id,))


class OptEvents:
    """Every change of a profile's subscription, with its time and cause."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        profile_id: int,
        action: str,
        *,
        source: str,
        short_code: str | None = None,
        message_id: int | None = None,
        actor: str | None = None,
        all_codes: bool = True,
        at: str | None = None,
    ) -> int:
        """Record a change; ``all_codes`` False when it was about ``short_code`` alone (a STOP
        to one short code), True when about every short code (``short_code`` is then the one
        texted, if any). ``at`` (ISO 8601) is when it happened if not now (the demo's seed:
        the time of the STOP it comes from)."""
        with self.db.tx() as conn:
            cur = conn.execute(
                "INSERT INTO opt_events (profile_id, short_code, action, source, message_id,"
                " actor, created_at, all_codes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    profile_id,
                    short_code,
                    action,
                    source,
                    message_id,
                    actor,
                    at or iso(now()),
                    int(all_codes),
                ),
            )
            return int(cur.lastrowid)

    def last(self, profile_id: int) -> sqlite3.Row | None:
        return self.db.q1(
            "SELECT * FROM opt_events WHERE profile_id = ? ORDER BY id DESC LIMIT 1",
            (profile_id,),
        )

    def history(self, profile_id: int) -> list[sqlite3.Row]:
        return self.db.q("SELECT * FROM opt_events WHERE profile_id = ? ORDER BY id", (profile_id,))


class AuditLog:
    """Who did what, for admins: logins, user and settings changes, opt-outs by hand."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, action: str, *, actor: str | None = None, **detail: Any) -> None:
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)",
                (iso(now()), actor, action, json.dumps(detail, ensure_ascii=False, default=str)),
            )

    def recent(self, limit: int = 200) -> list[sqlite3.Row]:
        return self.db.q("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))


class StoreReferenceAllocator:
    """Concatenation references per recipient, in the store: shared by all modems, kept across
    restarts (see gateway.modem.refs)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def next(self, recipient: str, *, bits: int = 8) -> int:
        with self.db.tx() as conn:
            row = conn.execute(
                "SELECT last_ref FROM concat_refs WHERE recipient = ? AND bits = ?",
                (recipient, bits),
            ).fetchone()
            ref = step(None if row is None else int(row["last_ref"]), bits)
            conn.execute(
                "INSERT INTO concat_refs (recipient, bits, last_ref) VALUES (?, ?, ?)"
                " ON CONFLICT (recipient, bits) DO UPDATE SET last_ref = excluded.last_ref",
                (recipient, bits, ref),
            )
            return ref
