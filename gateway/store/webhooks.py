"""Webhooks and their outbox: who wants to hear about a short code's events, and the
deliveries waiting to be POSTed (or given up, in the dead-letter list).

An event is written by the schema itself, in the transaction of the change that causes it:
triggers on ``messages`` and ``opt_events`` (migration 10, :data:`SCHEMA`) insert one
``webhook_deliveries`` row per webhook that wants that short code and kind of event, and
nothing when none does (one indexed ``EXISTS``). So the send path's code does not know about
webhooks, and a crash between the change and the delivery loses nothing. Policy (when to try,
backoff, signing, HTTP) is :mod:`gateway.messaging.webhooks`'.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from .db import Database
from .states import (
    DELIVERY,
    REPORTABLE,
    WEBHOOK_STATUSES,
    DeliveryState,
    MessageStatus,
    PartStatus,
    sql_list,
)
from .times import iso, now


class WebhookError(ValueError):
    """A webhook that cannot be added or removed as asked; the message says why."""


# The families of events a webhook may ask for (the ``--events`` words, the file's
# ``events:``), each a column of ``webhooks``. "broadcast" is for broadcast completion, which
# the broadcasts' code records with :meth:`Webhooks.record` (no trigger: a broadcast ends in
# code, not in a row's state).
FAMILIES: tuple[str, ...] = ("inbound", "status", "opt", "broadcast")
_COLUMN = {family: f"on_{family}" for family in FAMILIES}

# Event types, the body's "type" (the family in brackets): message.received (inbound),
# message.sent / message.delivered / message.failed / message.expired (status),
# profile.opted_out / profile.opted_in (opt), broadcast.completed (broadcast).
OPTED_OUT, OPTED_IN = "profile.opted_out", "profile.opted_in"
BROADCAST_COMPLETED = "broadcast.completed"

_P, _D = DeliveryState.PENDING, DeliveryState.DEAD
_TO_DEAD = DELIVERY.guard(_D, _P)
_TO_PENDING = DELIVERY.guard(_P, _D)
# The trigger's clock, in the store's own format (times.iso: microseconds, +00:00).
_NOW_SQL = "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')"
_EVENT_ID_SQL = "'evt_' || lower(hex(randomblob(12)))"


def _deliveries_insert(family: str, event_type: str, payload: str, where: str) -> str:
    """``INSERT ... SELECT``: one delivery per webhook of ``where`` that wants ``family``."""
    return (
        "INSERT INTO webhook_deliveries (event_id, webhook_id, type, payload, created_at)"
        f" SELECT {_EVENT_ID_SQL}, w.id, {event_type}, {payload}, {_NOW_SQL}"
        f" FROM webhooks w WHERE w.{_COLUMN[family]} = 1 AND {where};"
    )


def _wanted(family: str, where: str) -> str:
    return f"EXISTS (SELECT 1 FROM webhooks w WHERE w.{_COLUMN[family]} = 1 AND {where})"


def _schema() -> list[str]:
    """Migration 11's statements (a list: trigger bodies hold semicolons)."""
    received = MessageStatus.RECEIVED.value
    incomplete = MessageStatus.INCOMPLETE.value
    same_code = "w.short_code = NEW.short_code"
    inbound_payload = (
        "json_object('message_id', NEW.id, 'from', NEW.phone, 'short_code', NEW.short_code,"
        " 'profile_id', NEW.profile_id, 'text', NEW.body, 'parts', NEW.parts_total,"
        " 'status', NEW.status, 'kind', NEW.kind, 'modem_id', NEW.modem_id,"
        " 'received_at', NEW.created_at)"
    )

    def parts_in(states: Iterable[PartStatus]) -> str:
        return (
            "(SELECT COUNT(*) FROM message_parts p WHERE p.message_id = NEW.id"
            f" AND p.status IN {sql_list(states)})"
        )

    status_payload = (
        "json_object('message_id', NEW.id, 'to', NEW.phone, 'short_code', NEW.short_code,"
        " 'profile_id', NEW.profile_id, 'status', NEW.status, 'previous_status', OLD.status,"
        " 'error', NEW.error, 'modem_id', NEW.modem_id, 'idempotency_key', NEW.idempotency_key,"
        " 'created_at', NEW.created_at, 'changed_at', NEW.updated_at,"
        " 'parts', json_object('total', NEW.parts_total,"
        # Keys named like the part states they count (sent: every part the network took).
        f" '{PartStatus.SENT.value}', {parts_in(REPORTABLE)},"
        f" '{PartStatus.DELIVERED.value}', {parts_in([PartStatus.DELIVERED])},"
        f" '{PartStatus.FAILED.value}', {parts_in([PartStatus.FAILED])}))"
    )
    opt_where = "(NEW.short_code IS NULL OR w.short_code = NEW.short_code)"
    opt_type = f"CASE NEW.action WHEN 'opt_out' THEN '{OPTED_OUT}' ELSE '{OPTED_IN}' END"
    opt_payload = (
        "json_object('profile_id', NEW.profile_id,"
        " 'phone', (SELECT phone FROM profiles WHERE id = NEW.profile_id),"
        " 'action', NEW.action, 'source', NEW.source, 'short_code', NEW.short_code,"
        " 'message_id', NEW.message_id, 'actor', NEW.actor, 'at', NEW.created_at)"
    )
    status_words = sql_list(WEBHOOK_STATUSES)
    states = sql_list(DeliveryState)
    return [
        "CREATE TABLE webhooks ("
        " id INTEGER PRIMARY KEY,"
        " short_code TEXT NOT NULL,"
        " url TEXT NOT NULL,"
        " secret TEXT NOT NULL,"
        " on_inbound INTEGER NOT NULL DEFAULT 0,"
        " on_status INTEGER NOT NULL DEFAULT 0,"
        " on_opt INTEGER NOT NULL DEFAULT 0,"
        " on_broadcast INTEGER NOT NULL DEFAULT 0,"
        # config: from gateway.yaml (kept in step at start); admin: Settings or the CLI.
        " source TEXT NOT NULL CHECK (source IN ('config', 'admin')),"
        " created_at TEXT NOT NULL,"
        " created_by TEXT,"
        # The receiver failed: nothing is POSTed to it before retry_at (backoff).
        " retry_at TEXT,"
        " failing INTEGER NOT NULL DEFAULT 0,"  # failed attempts in a row
        " delivered_count INTEGER NOT NULL DEFAULT 0,"
        " failed_attempts INTEGER NOT NULL DEFAULT 0,"  # all time
        " dead_count INTEGER NOT NULL DEFAULT 0,"  # deliveries given up, all time
        " discarded_count INTEGER NOT NULL DEFAULT 0,"  # dead letters removed over the cap
        " last_success_at TEXT,"
        " last_error TEXT,"
        " last_error_at TEXT,"
        " UNIQUE (short_code, url))",
        "CREATE TABLE webhook_deliveries ("
        " id INTEGER PRIMARY KEY,"
        " event_id TEXT NOT NULL UNIQUE,"  # X-Gateway-Event: the same on every attempt
        " webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,"
        " type TEXT NOT NULL,"
        " payload TEXT NOT NULL,"  # the body's "data", as it was when the event happened
        f" state TEXT NOT NULL DEFAULT '{_P.value}' CHECK (state IN {states}),"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " created_at TEXT NOT NULL,"
        " last_attempt_at TEXT,"
        " last_error TEXT,"
        " dead_at TEXT)",
        # The outbox of one webhook in order, pending and dead apart.
        "CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (webhook_id, state, id)",
        # The dead-letter list of every webhook, newest first (Settings, keyset pages).
        "CREATE INDEX webhook_deliveries_state ON webhook_deliveries (state, id)",
        # An inbound message; again when its missing parts came (incomplete -> received).
        "CREATE TRIGGER webhook_inbound AFTER INSERT ON messages"
        f" WHEN NEW.direction = 'in' AND {_wanted('inbound', same_code)} BEGIN "
        + _deliveries_insert("inbound", "'message.received'", inbound_payload, same_code)
        + " END",
        "CREATE TRIGGER webhook_inbound_completed AFTER UPDATE OF status ON messages"
        f" WHEN NEW.direction = 'in' AND OLD.status = '{incomplete}'"
        f" AND NEW.status = '{received}' AND {_wanted('inbound', same_code)} BEGIN "
        + _deliveries_insert("inbound", "'message.received'", inbound_payload, same_code)
        + " END",
        # An outbound message's status changed to one a receiver hears about.
        "CREATE TRIGGER webhook_status AFTER UPDATE OF status ON messages"
        f" WHEN NEW.direction = 'out' AND NEW.status IN {status_words}"
        f" AND OLD.status IS NOT NEW.status AND {_wanted('status', same_code)} BEGIN "
        + _deliveries_insert("status", "'message.' || NEW.status", status_payload, same_code)
        + " END",
        # An opt-out or opt-in; one without a short code (by hand, an import) goes to every
        # webhook that wants opt events: a subscription is the profile's, not a short code's.
        f"CREATE TRIGGER webhook_opt AFTER INSERT ON opt_events WHEN {_wanted('opt', opt_where)}"
        " BEGIN " + _deliveries_insert("opt", opt_type, opt_payload, opt_where) + " END",
    ]


SCHEMA: list[str] = _schema()


# A webhook's pending and dead counts as columns of a query on ``webhooks w`` (parameters:
# the two states): on webhook_deliveries_queue, and the backlog is capped (max_pending), so
# each count is bounded.
_COUNTS = (
    "(SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = ?)"
    " AS pending,"
    " (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = ?)"
    " AS dead"
)
_WITH_COUNTS = f"SELECT w.*, {_COUNTS} FROM webhooks w"


@dataclass(frozen=True)
class Webhook:
    """One webhook: where its short code's events of ``events`` go, and how it is doing."""

    id: int
    short_code: str
    url: str
    secret: str
    events: tuple[str, ...]
    source: str  # "config" (gateway.yaml) or "admin" (Settings, the CLI)
    created_at: str
    retry_at: str | None
    failing: int
    delivered_count: int
    failed_attempts: int
    dead_count: int
    discarded_count: int
    last_success_at: str | None
    last_error: str | None
    last_error_at: str | None
    pending: int = 0
    dead: int = 0

    @classmethod
    def of(cls, row: sqlite3.Row) -> Webhook:
        """From a row of :data:`_WITH_COUNTS`."""
        return cls(
            id=int(row["id"]),
            short_code=row["short_code"],
            url=row["url"],
            secret=row["secret"],
            events=tuple(f for f in FAMILIES if row[_COLUMN[f]]),
            source=row["source"],
            created_at=row["created_at"],
            retry_at=row["retry_at"],
            failing=int(row["failing"]),
            delivered_count=int(row["delivered_count"]),
            failed_attempts=int(row["failed_attempts"]),
            dead_count=int(row["dead_count"]),
            discarded_count=int(row["discarded_count"]),
            last_success_at=row["last_success_at"],
            last_error=row["last_error"],
            last_error_at=row["last_error_at"],
            pending=int(row["pending"]),
            dead=int(row["dead"]),
        )

    def to_json(self, *, secret: bool = False) -> dict:
        """What ``gateway webhook list`` prints (the secret only when asked)."""
        out = {
            "id": self.id,
            "short_code": self.short_code,
            "url": self.url,
            "events": list(self.events),
            "source": self.source,
            "created": self.created_at,
            "pending": self.pending,
            "dead": self.dead,
            "delivered": self.delivered_count,
            "failed_attempts": self.failed_attempts,
            "discarded": self.discarded_count,
            "last_success": self.last_success_at,
            "last_error": self.last_error,
            "retry_at": self.retry_at,
        }
        if secret:
            out["secret"] = self.secret
        return out


@dataclass(frozen=True)
class Delivery:
    """One event for one webhook: its id (stable across attempts), type and data."""

    id: int
    event_id: str
    webhook_id: int
    type: str
    payload: str  # JSON
    state: DeliveryState
    attempts: int
    created_at: str
    last_attempt_at: str | None
    last_error: str | None
    dead_at: str | None

    @classmethod
    def of(cls, row: sqlite3.Row) -> Delivery:
        return cls(
            id=int(row["id"]),
            event_id=row["event_id"],
            webhook_id=int(row["webhook_id"]),
            type=row["type"],
            payload=row["payload"],
            state=DeliveryState(row["state"]),
            attempts=int(row["attempts"]),
            created_at=row["created_at"],
            last_attempt_at=row["last_attempt_at"],
            last_error=row["last_error"],
            dead_at=row["dead_at"],
        )


class Webhooks:
    """Reads and writes of webhooks and their deliveries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the webhooks ------------------------------------------------------------------------

    def add(
        self,
        short_code: str,
        url: str,
        secret: str,
        events: Iterable[str],
        *,
        source: str = "admin",
        created_by: str | None = None,
    ) -> Webhook:
        """A new webhook; :class:`WebhookError` when the short code already has one for
        ``url``."""
        wanted = set(events)
        with self.db.tx() as conn:
            same = conn.execute(
                "SELECT id FROM webhooks WHERE short_code = ? AND url = ?", (short_code, url)
            ).fetchone()
            if same is not None:
                raise WebhookError(
                    f"short code {short_code} already has webhook {same['id']} for {url};"
                    " remove it first to change its events"
                )
            cur = conn.execute(
                "INSERT INTO webhooks (short_code, url, secret, on_inbound, on_status, on_opt,"
                " on_broadcast, source, created_at, created_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    short_code,
                    url,
                    secret,
                    *(int(f in wanted) for f in FAMILIES),
                    source,
                    iso(now()),
                    created_by,
                ),
            )
            webhook_id = int(cur.lastrowid)
        found = self.get(webhook_id)
        assert found is not None
        return found

    def remove(self, webhook_id: int) -> Webhook | None:
        """Remove a webhook and its deliveries (pending and dead); the removed one, or None."""
        found = self.get(webhook_id)
        if found is None:
            return None
        with self.db.tx() as conn:
            conn.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,))
            conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
        return found

    def sync_config(self, wanted: Iterable[tuple[str, str, str, tuple[str, ...]]]) -> int:
        """Make the webhooks of gateway.yaml (short code, url, secret, events) the store's
        ``config`` ones: new ones added, changed ones updated, those no longer in the file
        removed. Writes only what differs; returns how many rows changed."""
        want = {(code, url): (secret, set(events)) for code, url, secret, events in wanted}
        changed = 0
        with self.db.tx() as conn:
            have = {
                (r["short_code"], r["url"]): r
                for r in conn.execute("SELECT * FROM webhooks WHERE source = 'config'")
            }
            for key, row in have.items():
                if key not in want:
                    conn.execute(
                        "DELETE FROM webhook_deliveries WHERE webhook_id = ?", (row["id"],)
                    )
                    conn.execute("DELETE FROM webhooks WHERE id = ?", (row["id"],))
                    changed += 1
            for (code, url), (secret, events) in want.items():
                flags = tuple(int(f in events) for f in FAMILIES)
                row = have.get((code, url))
                if row is None:
                    # The file takes over a webhook the admin had made for the same URL.
                    conn.execute(
                        "DELETE FROM webhook_deliveries WHERE webhook_id IN"
                        " (SELECT id FROM webhooks WHERE short_code = ? AND url = ?)",
                        (code, url),
                    )
                    conn.execute(
                        "DELETE FROM webhooks WHERE short_code = ? AND url = ?", (code, url)
                    )
                    conn.execute(
                        "INSERT INTO webhooks (short_code, url, secret, on_inbound, on_status,"
                        " on_opt, on_broadcast, source, created_at, created_by)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, 'config', ?, 'gateway.yaml')",
                        (code, url, secret, *flags, iso(now())),
                    )
                    changed += 1
                elif row["secret"] != secret or tuple(row[_COLUMN[f]] for f in FAMILIES) != flags:
                    conn.execute(
                        "UPDATE webhooks SET secret = ?, on_inbound = ?, on_status = ?,"
                        " on_opt = ?, on_broadcast = ? WHERE id = ?",
                        (secret, *flags, row["id"]),
                    )
                    changed += 1
        return changed

    def get(self, webhook_id: int) -> Webhook | None:
        row = self.db.q1(f"{_WITH_COUNTS} WHERE w.id = ?", (_P, _D, webhook_id))
        return None if row is None else Webhook.of(row)

    def all(self) -> list[Webhook]:
        """Every webhook, by short code and id, with its pending and dead counts."""
        return [
            Webhook.of(r)
            for r in self.db.q(f"{_WITH_COUNTS} ORDER BY w.short_code, w.id", (_P, _D))
        ]

    # -- recording an event in code (broadcast completion) ----------------------------------

    def record(self, short_code: str, family: str, event_type: str, data: dict) -> int:
        """Record an event that no trigger sees (a broadcast's completion): one delivery per
        webhook of ``short_code`` that wants ``family``, in the caller's transaction when it
        holds one. Returns how many were recorded (0: nobody listens)."""
        if family not in FAMILIES:
            raise WebhookError(f"unknown webhook event family {family!r}; one of {FAMILIES}")
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
        with self.db.tx() as conn:
            return conn.execute(
                "INSERT INTO webhook_deliveries (event_id, webhook_id, type, payload,"
                f" created_at) SELECT {_EVENT_ID_SQL}, id, ?, ?, ? FROM webhooks"
                f" WHERE short_code = ? AND {_COLUMN[family]} = 1",
                (event_type, payload, iso(now()), short_code),
            ).rowcount

    # -- the outbox, for the delivery worker ------------------------------------------------

    def has_pending(self) -> bool:
        """Whether any delivery is waiting (one indexed probe per webhook)."""
        return bool(
            self.db.value(
                "SELECT EXISTS (SELECT 1 FROM webhooks w WHERE EXISTS (SELECT 1 FROM"
                " webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = ?))",
                (_P,),
            )
        )

    def with_pending(self) -> list[sqlite3.Row]:
        """The webhooks that have deliveries waiting: id, url, secret, retry_at, failing."""
        return self.db.q(
            "SELECT w.id, w.url, w.secret, w.retry_at, w.failing FROM webhooks w"
            " WHERE EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.webhook_id = w.id"
            " AND d.state = ?) ORDER BY w.id",
            (_P,),
        )

    def next_pending(self, webhook_id: int, *, after: int = 0, limit: int = 50) -> list[Delivery]:
        """A webhook's waiting deliveries, oldest first, after delivery id ``after``."""
        return [
            Delivery.of(r)
            for r in self.db.q(
                "SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND state = ? AND id > ?"
                " ORDER BY id LIMIT ?",
                (webhook_id, _P, after, limit),
            )
        ]

    def delivered(self, delivery: Delivery, at: str) -> None:
        """The receiver took it: gone from the outbox, counted, the webhook's backoff over."""
        with self.db.tx() as conn:
            conn.execute("DELETE FROM webhook_deliveries WHERE id = ?", (delivery.id,))
            conn.execute(
                "UPDATE webhooks SET delivered_count = delivered_count + 1, last_success_at = ?,"
                " failing = 0, retry_at = NULL WHERE id = ?",
                (at, delivery.webhook_id),
            )

    def attempt_failed(
        self, delivery: Delivery, error: str, at: str, retry_at: str, *, give_up: bool
    ) -> None:
        """An attempt failed: counted on the delivery and the webhook, which waits until
        ``retry_at``; with ``give_up`` the delivery goes to the dead-letter list."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?,"
                " last_error = ? WHERE id = ?",
                (at, error, delivery.id),
            )
            conn.execute(
                "UPDATE webhooks SET failing = failing + 1, failed_attempts = failed_attempts + 1,"
                " last_error = ?, last_error_at = ?, retry_at = ? WHERE id = ?",
                (error, at, retry_at, delivery.webhook_id),
            )
            if give_up:
                self._bury_counted(conn, delivery.webhook_id, [delivery.id], at, None)

    def _bury(self, conn: sqlite3.Connection, ids: list[int], at: str, reason: str | None) -> int:
        """Move deliveries to the dead-letter list (``reason`` replaces their last error)."""
        moved = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            cur = conn.execute(
                f"UPDATE webhook_deliveries SET state = ?, dead_at = ?,"
                f" last_error = COALESCE(?, last_error) WHERE id IN ({marks}) AND {_TO_DEAD}",
                (_D, at, reason, *chunk),
            )
            moved += cur.rowcount
        return moved

    def retire(
        self, *, older_than: str, max_pending: int, max_dead: int, at: str
    ) -> dict[str, int]:
        """Housekeeping of the outbox: pending deliveries created before ``older_than`` go to
        the dead-letter list; a webhook's backlog over ``max_pending`` sends its oldest there
        too; its dead-letter list over ``max_dead`` loses its oldest (counted in
        ``discarded_count``). Returns {"aged", "over_cap", "discarded"}."""
        done = {"aged": 0, "over_cap": 0, "discarded": 0}
        with self.db.tx() as conn:
            for w in conn.execute("SELECT id FROM webhooks").fetchall():
                wid = int(w["id"])
                # Pending rows are in id order, the order they were made: the aged ones
                # are the front of the index.
                aged = [
                    int(r["id"])
                    for r in conn.execute(
                        "SELECT id FROM webhook_deliveries WHERE webhook_id = ? AND state = ?"
                        " AND created_at < ? ORDER BY id",
                        (wid, _P, older_than),
                    )
                ]
                pending = int(
                    conn.execute(
                        "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ?"
                        " AND state = ?",
                        (wid, _P),
                    ).fetchone()[0]
                ) - len(aged)
                if aged:
                    done["aged"] += self._bury_counted(
                        conn, wid, aged, at, "given up: older than the webhook's max_age_hours"
                    )
                if pending > max_pending:
                    over = pending - max_pending
                    oldest = [
                        int(r["id"])
                        for r in conn.execute(
                            "SELECT id FROM webhook_deliveries WHERE webhook_id = ?"
                            " AND state = ? ORDER BY id LIMIT ?",
                            (wid, _P, over),
                        )
                    ]
                    done["over_cap"] += self._bury_counted(
                        conn,
                        wid,
                        oldest,
                        at,
                        f"dropped: the backlog of this webhook passed max_pending ({max_pending})",
                    )
                dead = int(
                    conn.execute(
                        "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ?"
                        " AND state = ?",
                        (wid, _D),
                    ).fetchone()[0]
                )
                if dead > max_dead:
                    gone = conn.execute(
                        "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM"
                        " webhook_deliveries WHERE webhook_id = ? AND state = ? ORDER BY id"
                        " LIMIT ?)",
                        (wid, _D, dead - max_dead),
                    ).rowcount
                    conn.execute(
                        "UPDATE webhooks SET discarded_count = discarded_count + ? WHERE id = ?",
                        (gone, wid),
                    )
                    done["discarded"] += gone
        return done

    def _bury_counted(
        self,
        conn: sqlite3.Connection,
        webhook_id: int,
        ids: list[int],
        at: str,
        reason: str | None,
    ) -> int:
        moved = self._bury(conn, ids, at, reason)
        conn.execute(
            "UPDATE webhooks SET dead_count = dead_count + ? WHERE id = ?", (moved, webhook_id)
        )
        return moved

    # -- the dead-letter list -----------------------------------------------------------------

    def dead_letters(
        self, webhook_id: int | None = None, *, before: int | None = None, limit: int = 50
    ) -> list[Delivery]:
        """Given-up deliveries, newest first (keyset: ids below ``before``)."""
        sql = "SELECT * FROM webhook_deliveries WHERE state = ?"
        params: list = [_D]
        if webhook_id is not None:
            sql += " AND webhook_id = ?"
            params.append(webhook_id)
        if before is not None:
            sql += " AND id < ?"
            params.append(before)
        return [
            Delivery.of(r) for r in self.db.q(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        ]

    def resend(self, delivery_ids: Iterable[int] = (), *, webhook_id: int | None = None) -> int:
        """Dead letters back to the outbox (their attempts start again; the event id stays,
        so a receiver that got one after all drops the copy). By ids, or every one of a
        webhook. Returns how many."""
        with self.db.tx() as conn:
            if webhook_id is not None:
                n = conn.execute(
                    "UPDATE webhook_deliveries SET state = ?, attempts = 0, dead_at = NULL"
                    f" WHERE webhook_id = ? AND {_TO_PENDING}",
                    (_P, webhook_id),
                ).rowcount
                conn.execute(
                    "UPDATE webhooks SET retry_at = NULL, failing = 0 WHERE id = ?", (webhook_id,)
                )
                return n
            n = 0
            hooks: set[int] = set()
            for did in delivery_ids:
                row = conn.execute(
                    "UPDATE webhook_deliveries SET state = ?, attempts = 0, dead_at = NULL"
                    f" WHERE id = ? AND {_TO_PENDING} RETURNING webhook_id",
                    (_P, did),
                ).fetchone()
                if row is not None:
                    n += 1
                    hooks.add(int(row["webhook_id"]))
            # An admin's "resend" means now: those webhooks' backoff ends (only theirs).
            for wid in hooks:
                conn.execute(
                    "UPDATE webhooks SET retry_at = NULL, failing = 0 WHERE id = ?", (wid,)
                )
            return n

    def retry_now(self) -> int:
        """Every webhook in backoff may be tried at once (the gateway started); the count of
        failures in a row stays, so a receiver still down backs off as long as before."""
        with self.db.tx() as conn:
            return conn.execute(
                "UPDATE webhooks SET retry_at = NULL WHERE retry_at IS NOT NULL"
            ).rowcount

    def backlog(self) -> list[sqlite3.Row]:
        """Per webhook: id, short_code, url, pending, dead, delivered_count, failed_attempts,
        dead_count, discarded_count and the oldest pending delivery's time (for /metrics)."""
        return self.db.q(
            "SELECT w.id, w.short_code, w.url, w.delivered_count, w.failed_attempts,"
            f" w.dead_count, w.discarded_count, {_COUNTS},"
            " (SELECT created_at FROM webhook_deliveries d WHERE d.webhook_id = w.id"
            "  AND d.state = ? ORDER BY d.id LIMIT 1) AS oldest"
            " FROM webhooks w ORDER BY w.id",
            (_P, _D, _P),
        )


__all__ = [
    "BROADCAST_COMPLETED",
    "FAMILIES",
    "SCHEMA",
    "Delivery",
    "Webhook",
    "WebhookError",
    "Webhooks",
]
