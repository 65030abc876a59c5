"""Broadcasts: one text to many profiles. A broadcast's recipients are chosen once, when it is
created, into ``broadcast_recipients`` (one ``INSERT ... SELECT``: seconds for 100,000); a
feeder (messaging/broadcasts.py) makes them into queued messages a window at a time, so that
the queue, its full-text index and the router only ever see a few hundred of them, and a pause
or a cancel takes back what no modem has taken yet. The broadcast's counters are kept by the
triggers of migration 8 (messages) and here (recipients): its progress is one row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .audiences import custom_expr, may_text_sql
from .db import Database
from .states import (
    BROADCAST,
    BROADCAST_ACTIVE,
    RECIPIENT,
    BroadcastState,
    MessageStatus,
    PartStatus,
    RecipientState,
    sql_list,
)
from .times import iso, now
from .webhooks import BROADCAST_COMPLETED, Webhooks

_BS, _RS = BroadcastState, RecipientState
_PENDING = _RS.PENDING.value
_QUEUED_MSG = MessageStatus.QUEUED.value
_ACTIVE = sql_list(BROADCAST_ACTIVE)
_TAKE_BACK = RECIPIENT.guard(_RS.PENDING, _RS.QUEUED)

# Why a recipient was skipped (``broadcast_recipients.reason``), in words for the page.
SKIP_REASONS = {
    "opted_out": "opted out",
    "inactive": "inactive",
    "not_mobile": "the number cannot receive SMS",
    "too_long": "with their fields the text is over the part limit",
}


@dataclass(frozen=True)
class NewBroadcast:
    """A broadcast as the user asked for it, its audience already compiled to SQL over
    ``profiles p``. ``send_at`` is the UTC time each recipient's message may go: by the
    value of the profile's time-zone field (``tz_field``) where ``per_zone`` names it, else
    ``default_send_at``."""

    name: str
    body: str
    campaign_id: int
    short_code: str
    audience: Mapping[str, Any]
    where: str
    params: Sequence[Any]
    state: BroadcastState
    scheduled_for: str | None
    timezone: str
    default_send_at: str
    parts: int
    encoding: str
    tz_field: str | None = None
    per_zone: Mapping[str, str] | None = None
    created_by: str | None = None
    request_key: str | None = None  # the form's key: a second post of it makes nothing new


@dataclass(frozen=True)
class BroadcastMessage:
    """One recipient's message, expanded, as the feeder makes it."""

    profile_id: int
    phone: str
    body: str
    encoding: str
    parts_total: int


class Broadcasts:
    """Reads and writes of broadcasts and their recipients."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._webhooks = Webhooks(db)  # for broadcast.completed, recorded as a broadcast ends

    # -- creating ----------------------------------------------------------------------------

    def create(self, b: NewBroadcast) -> tuple[int, bool]:
        """Commit the broadcast and its recipients (those that may not be texted from its short
        code are recorded as skipped, with why) in one transaction; (its id, True). With a
        request key already used: (that broadcast's id, False), nothing new."""
        stamp = iso(now())
        may, may_params = may_text_sql(b.short_code)
        send_at, send_params = "?", [b.default_send_at]
        if b.per_zone and b.tz_field:
            expr = custom_expr(b.tz_field)
            cases = " ".join("WHEN ? THEN ?" for _ in b.per_zone)
            send_at = f"CASE {expr} {cases} ELSE ? END"
            send_params = [v for kv in b.per_zone.items() for v in kv] + [b.default_send_at]
        with self.db.tx() as conn:
            if b.request_key is not None:
                known = conn.execute(
                    "SELECT id FROM broadcasts WHERE request_key = ?", (b.request_key,)
                ).fetchone()
                if known is not None:
                    return int(known["id"]), False
            cur = conn.execute(
                "INSERT INTO broadcasts (name, body, campaign_id, short_code, audience, state,"
                " scheduled_for, timezone, per_recipient_tz, parts, encoding, created_by,"
                " created_at, updated_at, request_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    b.name,
                    b.body,
                    b.campaign_id,
                    b.short_code,
                    json.dumps(b.audience, ensure_ascii=False),
                    b.state,
                    b.scheduled_for,
                    b.timezone,
                    int(bool(b.per_zone)),
                    b.parts,
                    b.encoding,
                    b.created_by,
                    stamp,
                    stamp,
                    b.request_key,
                ),
            )
            bid = int(cur.lastrowid)
            conn.execute(
                "INSERT INTO broadcast_recipients (broadcast_id, profile_id, send_at, state,"
                f" reason) SELECT ?, p.id, {send_at},"
                f" CASE WHEN {may} THEN ? ELSE ? END,"
                f" CASE WHEN {may} THEN NULL WHEN p.status != 'active' THEN 'inactive'"
                " ELSE 'opted_out' END"
                f" FROM profiles p WHERE {b.where}",
                (
                    bid,
                    *send_params,
                    *may_params,
                    _RS.PENDING,
                    _RS.SKIPPED,
                    *may_params,
                    *b.params,
                ),
            )
            counts = {
                r["state"]: int(r["n"])
                for r in conn.execute(
                    "SELECT state, COUNT(*) AS n FROM broadcast_recipients"
                    " WHERE broadcast_id = ? GROUP BY state",
                    (bid,),
                )
            }
            pending = counts.get(_RS.PENDING, 0)
            conn.execute(
                "UPDATE broadcasts SET recipients = ?, n_pending = ?, n_skipped = ? WHERE id = ?",
                (pending, pending, counts.get(_RS.SKIPPED, 0), bid),
            )
        return bid, True

    # -- reading -----------------------------------------------------------------------------

    def get(self, broadcast_id: int) -> sqlite3.Row | None:
        return self.db.q1(
            "SELECT b.*, c.name AS campaign_name FROM broadcasts b"
            " LEFT JOIN campaigns c ON c.id = b.campaign_id WHERE b.id = ?",
            (broadcast_id,),
        )

    def page(self, *, before: int | None = None, limit: int = 50) -> list[sqlite3.Row]:
        """Broadcasts newest first, with their campaign's name; keyset pages by id."""
        sql = (
            "SELECT b.*, c.name AS campaign_name FROM broadcasts b"
            " LEFT JOIN campaigns c ON c.id = b.campaign_id"
        )
        params: list[Any] = []
        if before is not None:
            sql += " WHERE b.id < ?"
            params.append(before)
        return self.db.q(sql + " ORDER BY b.id DESC LIMIT ?", (*params, limit))

    def by_request_key(self, key: str) -> sqlite3.Row | None:
        """The broadcast a compose form with this key made, or None."""
        return self.db.q1("SELECT * FROM broadcasts WHERE request_key = ?", (key,))

    def bulk_campaign_named(self, name: str) -> sqlite3.Row | None:
        """The bulk campaign of this name (the newest), or None."""
        return self.db.q1(
            "SELECT * FROM campaigns WHERE kind = 'bulk' AND name = ? ORDER BY id DESC LIMIT 1",
            (name,),
        )

    def bulk_campaigns(self, limit: int = 200) -> list[sqlite3.Row]:
        """Bulk campaigns, newest first (the compose page's choice)."""
        return self.db.q(
            "SELECT * FROM campaigns WHERE kind = 'bulk' ORDER BY id DESC LIMIT ?", (limit,)
        )

    def active(self) -> list[sqlite3.Row]:
        """Broadcasts scheduled, sending or paused (few: the feeder reads them every pass)."""
        return self.db.q(f"SELECT * FROM broadcasts WHERE state IN {_ACTIVE} ORDER BY id")

    def count_by_state(self) -> dict[str, int]:
        """How many broadcasts are in each state (/metrics; the state index covers it)."""
        return {
            str(r["state"]): int(r["n"])
            for r in self.db.q("SELECT state, COUNT(*) AS n FROM broadcasts GROUP BY state")
        }

    def skipped_reasons(self, broadcast_id: int) -> dict[str, int]:
        return {
            str(r["reason"]): int(r["n"])
            for r in self.db.q(
                "SELECT reason, COUNT(*) AS n FROM broadcast_recipients WHERE broadcast_id = ?"
                " AND state = ? GROUP BY reason",
                (broadcast_id, _RS.SKIPPED),
            )
        }

    def recipients_page(
        self, broadcast_id: int, *, after: int = 0, limit: int = 50
    ) -> list[sqlite3.Row]:
        """Recipients by profile id with their profile and message status (keyset pages)."""
        return self.db.q(
            "SELECT r.*, p.name, p.phone, m.status AS message_status, m.error"
            " FROM broadcast_recipients r JOIN profiles p ON p.id = r.profile_id"
            " LEFT JOIN messages m ON m.id = r.message_id"
            " WHERE r.broadcast_id = ? AND r.profile_id > ? ORDER BY r.profile_id LIMIT ?",
            (broadcast_id, after, limit),
        )

    def next_pending_time(self, broadcast_id: int) -> str | None:
        """When the broadcast's earliest pending recipient may be sent to (None: none left)."""
        return self.db.value(
            "SELECT MIN(send_at) FROM broadcast_recipients WHERE broadcast_id = ?"
            f" AND state = '{_PENDING}'",
            (broadcast_id,),
        )

    def due(self, broadcast_id: int, at: str, limit: int) -> list[sqlite3.Row]:
        """The next pending recipients whose time has come, with their profile and whether the
        one rule (:func:`may_text_sql`) still lets them be texted (``may_text``)."""
        b = self.get(broadcast_id)
        if b is None:
            return []
        may, may_params = may_text_sql(b["short_code"])
        return self.db.q(
            f"SELECT r.profile_id, p.name, p.phone, p.custom, p.status, ({may}) AS may_text"
            " FROM broadcast_recipients r JOIN profiles p ON p.id = r.profile_id"
            f" WHERE r.broadcast_id = ? AND r.state = '{_PENDING}' AND r.send_at <= ?"
            " ORDER BY r.send_at, r.profile_id LIMIT ?",
            (*may_params, broadcast_id, at, limit),
        )

    def replied_to(self, inbound: Iterable[Mapping[str, Any]]) -> dict[int, sqlite3.Row]:
        """For inbound messages (rows with id, profile_id, short_code), the broadcast each
        answers: the one the latest outbound message to that profile on that short code before
        it belongs to. Computed when read, so nothing is stored twice."""
        found: dict[int, sqlite3.Row] = {}
        for m in inbound:
            row = self.db.q1(
                "SELECT b.id, b.name FROM broadcasts b WHERE b.id = (SELECT o.broadcast_id"
                # +short_code: walk the profile's own messages (messages_profile), never every
                # message of the short code before this one.
                " FROM messages o WHERE o.profile_id = ? AND o.direction = 'out'"
                " AND +o.short_code = ? AND o.id < ? ORDER BY o.id DESC LIMIT 1)",
                (m["profile_id"], m["short_code"], m["id"]),
            )
            if row is not None:
                found[int(m["id"])] = row
        return found

    # -- the feeder's writes -----------------------------------------------------------------

    def move(self, broadcast_id: int, new: BroadcastState, *old: BroadcastState) -> bool:
        """Move the broadcast to ``new`` if it is in one of ``old``; True if it moved."""
        stamp = iso(now())
        sets, params = "state = ?, updated_at = ?", [new, stamp]
        if new is _BS.SENDING:
            sets += ", started_at = COALESCE(started_at, ?)"
            params.append(stamp)
        elif new in (_BS.DONE, _BS.CANCELLED):
            sets += ", finished_at = ?"
            params.append(stamp)
        with self.db.tx() as conn:
            moved = (
                conn.execute(
                    f"UPDATE broadcasts SET {sets} WHERE id = ? AND {BROADCAST.guard(new, *old)}",
                    (*params, broadcast_id),
                ).rowcount
                == 1
            )
            if moved and new in (_BS.DONE, _BS.CANCELLED):
                self._record_completed(conn, broadcast_id)
            return moved

    def materialise(
        self,
        broadcast_id: int,
        messages: Sequence[BroadcastMessage],
        skipped: Sequence[tuple[int, str]],
        *,
        priority: int,
        expires_at: str,
    ) -> list[int]:
        """Make pending recipients into queued messages (and record the skipped ones), in one
        transaction, only while the broadcast is sending; returns the new message ids."""
        stamp = iso(now())
        ids: list[int] = []
        with self.db.tx() as conn:
            b = conn.execute(
                "SELECT short_code, campaign_id, created_by, state FROM broadcasts WHERE id = ?",
                (broadcast_id,),
            ).fetchone()
            if b is None or b["state"] != _BS.SENDING:
                return []
            for m in messages:
                taken = conn.execute(
                    "UPDATE broadcast_recipients SET state = ? WHERE broadcast_id = ?"
                    f" AND profile_id = ? AND state = '{_PENDING}'",
                    (_RS.QUEUED, broadcast_id, m.profile_id),
                ).rowcount
                if not taken:
                    continue
                cur = conn.execute(
                    "INSERT INTO messages (direction, profile_id, phone, short_code, campaign_id,"
                    " body, encoding, parts_total, status, priority, expires_at, created_by,"
                    " created_at, updated_at, broadcast_id)"
                    " VALUES ('out', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        m.profile_id,
                        m.phone,
                        b["short_code"],
                        b["campaign_id"],
                        m.body,
                        m.encoding,
                        m.parts_total,
                        MessageStatus.QUEUED,
                        priority,
                        expires_at,
                        b["created_by"],
                        stamp,
                        stamp,
                        broadcast_id,
                    ),
                )
                mid = int(cur.lastrowid)
                ids.append(mid)
                conn.execute(
                    "UPDATE broadcast_recipients SET message_id = ? WHERE broadcast_id = ?"
                    " AND profile_id = ?",
                    (mid, broadcast_id, m.profile_id),
                )
                conn.execute(
                    "UPDATE profiles SET last_message_at = ? WHERE id = ?", (stamp, m.profile_id)
                )
            skipped_n = 0
            for pid, reason in skipped:
                skipped_n += conn.execute(
                    "UPDATE broadcast_recipients SET state = ?, reason = ? WHERE"
                    f" broadcast_id = ? AND profile_id = ? AND state = '{_PENDING}'",
                    (_RS.SKIPPED, reason, broadcast_id, pid),
                ).rowcount
            conn.execute(
                "UPDATE broadcasts SET n_pending = n_pending - ?, n_skipped = n_skipped + ?,"
                " recipients = recipients - ?, updated_at = ? WHERE id = ?",
                (len(ids) + skipped_n, skipped_n, skipped_n, stamp, broadcast_id),
            )
        return ids

    def take_back(self, broadcast_id: int, *, cancel: bool) -> int:
        """Withdraw the broadcast's messages that no modem has taken yet (queued, no part
        handed to a modem): they are deleted and their recipients become pending again, or
        cancelled with ``cancel`` (then every pending recipient is cancelled too). Messages
        already with a modem, sent or failed stay as they are. Returns how many recipients
        were taken back or cancelled."""
        target = _RS.CANCELLED if cancel else _RS.PENDING
        stamp = iso(now())
        with self.db.tx() as conn:
            rows = conn.execute(
                "SELECT m.id, m.profile_id FROM messages m WHERE m.direction = 'out'"
                f" AND m.status = '{_QUEUED_MSG}' AND m.broadcast_id = ?"
                " AND NOT EXISTS (SELECT 1 FROM message_parts mp WHERE mp.message_id = m.id"
                "  AND mp.status != ?)",
                (broadcast_id, PartStatus.PENDING),
            ).fetchall()
            for r in rows:
                conn.execute("DELETE FROM message_parts WHERE message_id = ?", (r["id"],))
                conn.execute("DELETE FROM messages WHERE id = ?", (r["id"],))
                conn.execute(
                    "UPDATE broadcast_recipients SET state = ?, message_id = NULL"
                    f" WHERE broadcast_id = ? AND profile_id = ? AND {_TAKE_BACK}",
                    (target, broadcast_id, r["profile_id"]),
                )
            moved = len(rows)
            if cancel:
                cancelled = conn.execute(
                    "UPDATE broadcast_recipients SET state = ?"
                    f" WHERE broadcast_id = ? AND state = '{_PENDING}'",
                    (_RS.CANCELLED, broadcast_id),
                ).rowcount
                conn.execute(
                    "UPDATE broadcasts SET n_cancelled = n_cancelled + ?, n_pending = 0,"
                    " updated_at = ? WHERE id = ?",
                    (moved + cancelled, stamp, broadcast_id),
                )
                return moved + cancelled
            conn.execute(
                "UPDATE broadcasts SET n_pending = n_pending + ?, updated_at = ? WHERE id = ?",
                (moved, stamp, broadcast_id),
            )
        return moved

    def finish_if_done(self, broadcast_id: int) -> bool:
        """A sending broadcast with nothing pending and nothing in flight is done."""
        with self.db.tx() as conn:
            done = (
                conn.execute(
                    "UPDATE broadcasts SET state = ?, finished_at = ?, updated_at = ?"
                    " WHERE id = ? AND n_pending = 0 AND n_queued = 0"
                    f" AND {BROADCAST.guard(_BS.DONE, _BS.SENDING)}",
                    (_BS.DONE, iso(now()), iso(now()), broadcast_id),
                ).rowcount
                == 1
            )
            if done:
                self._record_completed(conn, broadcast_id)
            return done

    def _record_completed(self, conn: sqlite3.Connection, broadcast_id: int) -> None:
        """The ``broadcast.completed`` webhook event of a broadcast that just ended (done or
        cancelled), in the transaction that ended it: a crash loses neither or both."""
        b = conn.execute("SELECT * FROM broadcasts WHERE id = ?", (broadcast_id,)).fetchone()
        data = {
            "broadcast_id": int(b["id"]),
            "name": b["name"],
            "short_code": b["short_code"],
            "state": str(b["state"]),
            "recipients": int(b["recipients"]),
            # What the network took (delivered included); reports may still turn some of
            # these into delivered or failed after this event.
            "sent": int(b["n_sent"]) + int(b["n_delivered"]),
            "delivered": int(b["n_delivered"]),
            "failed": int(b["n_failed"]),
            "skipped": int(b["n_skipped"]),
            "cancelled": int(b["n_cancelled"]),
            "parts": int(b["parts"]),
            "started_at": b["started_at"],
            "finished_at": b["finished_at"],
        }
        self._webhooks.record(b["short_code"], "broadcast", BROADCAST_COMPLETED, data)
