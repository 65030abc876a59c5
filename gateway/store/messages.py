"""Messages and their parts: the outbound queue, delivery state, inbound messages, the agent
queue and conversation read state. Policy (routing, retries, keywords) lives in messaging/;
this module only reads and writes rows, each change in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from . import search
from .db import Database, Row
from .search import MessageFilter, MessagePage
from .states import (
    AGENT,
    IN_FLIGHT,
    MESSAGE,
    OUTBOUND,
    PART,
    REPORTABLE,
    UNANSWERED,
    AgentState,
    MessageStatus,
    PartStatus,
    sql_list,
)
from .subscriptions import subscribed_sql
from .times import iso, now

OUT_STATES: tuple[str, ...] = tuple(OUTBOUND)
EVERY_MESSAGE = MessageFilter()


@dataclass(frozen=True)
class NewOutbound:
    """An outbound message as accepted, before any modem has seen it."""

    profile_id: int
    phone: str
    short_code: str
    body: str
    encoding: str
    parts_total: int
    campaign_id: int | None
    priority: int
    expires_at: str
    idempotency_key: str | None = None
    created_by: str | None = None


@dataclass(frozen=True)
class PastMessage:
    """A message that already happened, as it ended (demo data, imported history)."""

    direction: str  # "in" or "out"
    profile_id: int
    phone: str
    short_code: str
    modem_id: str
    body: str
    encoding: str
    parts_total: int
    status: MessageStatus
    at: str
    campaign_id: int | None = None
    kind: str | None = None
    agent_state: AgentState | None = None
    created_by: str | None = None


_Q, _S = MessageStatus.QUEUED, MessageStatus.SENDING
# Each UPDATE that moves a state is guarded by the states it moves from, checked against the
# tables of states.py when this module loads (so a guard cannot name a forbidden move).
_CLAIM = MESSAGE.guard(_S, _Q)
_BACK_TO_QUEUE = MESSAGE.guard(_Q, _S)
_SENT = MESSAGE.guard(MessageStatus.SENT, _S)
_EXPIRE = MESSAGE.guard(MessageStatus.EXPIRED, _Q)
_PART_RESET = PART.guard(PartStatus.PENDING, *REPORTABLE, PartStatus.WRITING)
_PART_UNWRITTEN = PART.guard(PartStatus.PENDING, PartStatus.WRITING)
_ROLLED_UP = sql_list(REPORTABLE)
# A message's statuses that follow its parts' reports (the roll-up).
_REPORTED = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.FAILED)
_ANSWER = AGENT.guard(AgentState.ANSWERED, *UNANSWERED)
_UNANSWERED = sql_list(UNANSWERED)


class Messages:
    """Reads and writes of messages and parts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads for messaging/ and web/ (moved out of them: all SQL lives in store/) -------

    def by_idempotency_key(self, key: str) -> sqlite3.Row | None:
        """The message accepted under this idempotency key, or None."""
        return self.db.q1("SELECT * FROM messages WHERE idempotency_key = ?", (key,))

    def last_short_code(self, profile_id: int) -> str | None:
        """The short code of the profile's newest message, either way (None: no message yet)."""
        return self.db.value(
            "SELECT short_code FROM messages WHERE profile_id = ? ORDER BY id DESC LIMIT 1",
            (profile_id,),
        )

    def newest_id(self, profile_id: int) -> int | None:
        """The id of the profile's newest message (None: no message yet)."""
        return self.db.value("SELECT MAX(id) FROM messages WHERE profile_id = ?", (profile_id,))

    def waiting_for_agent(self, profile_id: int) -> list[sqlite3.Row]:
        """The profile's inbound messages still in the agent queue (open or claimed), oldest
        first."""
        return self.db.q(
            "SELECT * FROM messages WHERE profile_id = ? AND direction = 'in'"
            f" AND agent_state IN {sql_list(UNANSWERED)} ORDER BY id",
            (profile_id,),
        )

    def next_unclaimed_conversation(self, user: str) -> int | None:
        """The profile whose open inbound message has waited longest and whose conversation
        no other agent than ``user`` holds; None when there is none. Call it inside the
        transaction that claims it."""
        return self.db.value(
            "SELECT m.profile_id FROM messages m WHERE m.direction = 'in'"
            f" AND m.agent_state = '{AgentState.OPEN}' AND NOT EXISTS (SELECT 1 FROM messages c"
            " WHERE c.profile_id = m.profile_id AND c.direction = 'in'"
            f" AND c.agent_state = '{AgentState.CLAIMED}' AND c.claimed_by IS NOT ?)"
            " ORDER BY m.id LIMIT 1",
            (user,),
        )

    def parts_sent_per_modem(self, since: str) -> dict[str, int]:
        """How many parts each modem has sent since ``since`` (its daily count at start)."""
        return {
            str(row["modem_id"]): int(row["n"])
            for row in self.db.q(
                "SELECT modem_id, COUNT(*) AS n FROM message_parts WHERE sent_at >= ?"
                " GROUP BY modem_id",
                (since,),
            )
        }

    # -- outbound: accept ----------------------------------------------------------------

    def add_outbound(self, m: NewOutbound) -> tuple[int, bool]:
        """Commit a queued message; (id, True). With an idempotency key already used, the
        earlier message's (id, False) and nothing new is stored."""
        with self.db.tx() as conn:
            if m.idempotency_key:
                row = conn.execute(
                    "SELECT id FROM messages WHERE idempotency_key = ?", (m.idempotency_key,)
                ).fetchone()
                if row is not None:
                    return int(row["id"]), False
            stamp = iso(now())
            cur = conn.execute(
                "INSERT INTO messages (direction, profile_id, phone, short_code, campaign_id, body,"
                " encoding, parts_total, status, priority, idempotency_key, expires_at,"
                " created_by, created_at, updated_at)"
                " VALUES ('out', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    m.profile_id,
                    m.phone,
                    m.short_code,
                    m.campaign_id,
                    m.body,
                    m.encoding,
                    m.parts_total,
                    MessageStatus.QUEUED,
                    m.priority,
                    m.idempotency_key,
                    m.expires_at,
                    m.created_by,
                    stamp,
                    stamp,
                ),
            )
            mid = int(cur.lastrowid)
            conn.execute(
                "UPDATE profiles SET last_message_at = ? WHERE id = ?", (stamp, m.profile_id)
            )
            return mid, True

    # -- outbound: dispatch --------------------------------------------------------------

    def due(
        self, at: str, limit: int = 200, after: tuple[int, int] | None = None
    ) -> list[sqlite3.Row]:
        """Queued messages whose next attempt is due, most urgent first, with the profile's
        sticky modem, status and subscription; ``after`` = (priority, id) of the last row of
        the previous page, so a router can look past rows it cannot place now."""
        sql = (
            "SELECT m.*, p.sticky_modem, p.status AS profile_status,"
            " p.subscribed AS subscribed_all,"
            # Subscribed to the message's own short code (store/subscriptions.py's rule).
            f" {subscribed_sql('m.short_code')} AS subscribed"
            " FROM messages m JOIN profiles p ON p.id = m.profile_id"
            f" WHERE m.direction = 'out' AND m.status = '{MessageStatus.QUEUED}'"
            " AND (m.next_attempt_at IS NULL OR m.next_attempt_at <= ?)"
        )
        params: list = [at]
        if after is not None:
            sql += " AND (m.priority > ? OR (m.priority = ? AND m.id > ?))"
            params += [after[0], after[0], after[1]]
        return self.db.q(sql + " ORDER BY m.priority, m.id LIMIT ?", (*params, limit))

    def next_attempt_time(self) -> str | None:
        """When the earliest deferred queued message becomes due (for the dispatcher's timer)."""
        return self.db.value(
            "SELECT MIN(next_attempt_at) FROM messages WHERE direction = 'out'"
            f" AND status = '{MessageStatus.QUEUED}' AND next_attempt_at IS NOT NULL"
        )

    def next_expiry(self) -> str | None:
        """When the earliest queued message expires (for the dispatcher's timer)."""
        return self.db.value(
            # "IS NOT NULL" (MIN skips NULLs anyway) lets it use messages_expiry.
            "SELECT MIN(expires_at) FROM messages WHERE direction='out'"
            f" AND status='{MessageStatus.QUEUED}' AND expires_at IS NOT NULL"
        )

    def queued_count(self, modem_id: str | None = None) -> int:
        if modem_id is None:
            return int(
                self.db.value(
                    "SELECT COUNT(*) FROM messages WHERE direction='out'"
                    f" AND status='{MessageStatus.QUEUED}'"
                )
            )
        return int(
            self.db.value(
                # +modem_id: the few queued rows are found by status, not among every
                # message the modem ever sent (messages_modem, for the Messages page).
                "SELECT COUNT(*) FROM messages WHERE direction='out' AND status IN"
                f" {sql_list(IN_FLIGHT)} AND +modem_id = ?",
                (modem_id,),
            )
        )

    def claim(self, message_id: int, modem_id: str) -> bool:
        """Mark a queued message as being sent by ``modem_id``; False if someone else has it."""
        with self.db.tx() as conn:
            cur = conn.execute(
                "UPDATE messages SET status = ?, modem_id = ?, attempts = attempts + 1,"
                f" updated_at = ? WHERE id = ? AND {_CLAIM}",
                (_S, modem_id, iso(now()), message_id),
            )
            return cur.rowcount == 1

    def unclaim(self, message_id: int) -> None:
        """A claimed message that was never started goes back to the queue."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE messages SET status = ?, attempts = MAX(0, attempts - 1),"
                f" updated_at = ? WHERE id = ? AND {_BACK_TO_QUEUE}",
                (_Q, iso(now()), message_id),
            )

    def set_concat_ref(self, message_id: int, ref: int) -> None:
        with self.db.tx() as conn:
            conn.execute("UPDATE messages SET concat_ref = ? WHERE id = ?", (ref, message_id))

    def parts(self, message_id: int) -> list[sqlite3.Row]:
        return self.db.q(
            "SELECT * FROM message_parts WHERE message_id = ? ORDER BY seq", (message_id,)
        )

    def ensure_parts(self, message_id: int, pdus: Iterable[tuple[int, str, int]]) -> None:
        """Create the part rows (seq, pdu, length) that do not exist yet; existing parts keep
        their PDU, so a resend uses the same concatenation reference."""
        with self.db.tx() as conn:
            for seq, pdu, length in pdus:
                conn.execute(
                    "INSERT OR IGNORE INTO message_parts (message_id, seq, pdu, length)"
                    " VALUES (?, ?, ?, ?)",
                    (message_id, seq, pdu, length),
                )

    def has_sent_parts(self, message_id: int) -> bool:
        return bool(
            self.db.value(
                "SELECT COUNT(*) FROM message_parts WHERE message_id = ? AND status != ?",
                (message_id, PartStatus.PENDING),
            )
        )

    def reset_parts(self, message_id: int) -> None:
        """Every part of the message is to be sent again (through another modem). Parts whose
        report already came back go too: the handset joins parts from one number only."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE message_parts SET status = ?, tp_mr = NULL, sent_at = NULL,"
                " report_status = NULL, reported_at = NULL"
                f" WHERE message_id = ? AND {_PART_RESET}",
                (PartStatus.PENDING, message_id),
            )

    def part_writing(self, part_id: int, modem_id: str) -> None:
        """Record, before the PDU goes to the modem, that it is about to be written."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE message_parts SET status = ?, modem_id = ?, attempts = attempts + 1"
                " WHERE id = ?",
                (PartStatus.WRITING, modem_id, part_id),
            )

    def part_not_written(self, part_id: int) -> None:
        """A part recorded as about to be written (:meth:`part_writing`) that was not written
        after all (its modem stopped first): pending again, the attempt not counted, and not
        a possible duplicate (it never reached the modem)."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE message_parts SET status = ?, attempts = MAX(0, attempts - 1)"
                f" WHERE id = ? AND status = '{PartStatus.WRITING}'",
                (PartStatus.PENDING, part_id),
            )

    def part_sent(self, part_id: int, tp_mr: int, at: str | None = None) -> None:
        """Record the network's acceptance of a part with its TP-MR."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE message_parts SET status = ?, tp_mr = ?, sent_at = ?, error = NULL"
                " WHERE id = ?",
                (PartStatus.SENT, tp_mr, at or iso(now()), part_id),
            )

    def part_unsent(self, part_id: int, error: str, *, maybe_sent: bool) -> None:
        """A part whose write failed; ``maybe_sent`` when the modem may have sent it anyway
        (a timeout after the PDU went out), so a resend is marked as a possible duplicate."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE message_parts SET status = ?, error = ?,"
                " maybe_duplicate = maybe_duplicate OR ? WHERE id = ?",
                (PartStatus.PENDING, error, int(maybe_sent), part_id),
            )

    def finish_sending(self, message_id: int) -> MessageStatus | None:
        """After all parts went out: the message is 'sent' (or already further). Returns it."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE messages SET status = ?, error = NULL, next_attempt_at = NULL,"
                " maybe_duplicate = maybe_duplicate OR"
                " (SELECT COALESCE(MAX(maybe_duplicate), 0) FROM message_parts"
                f"  WHERE message_id = ?), updated_at = ? WHERE id = ? AND {_SENT}",
                (MessageStatus.SENT, message_id, iso(now()), message_id),
            )
        return self._rollup(message_id)

    def defer(self, message_id: int, error: str, next_attempt_at: str) -> None:
        """A temporary failure: back to the queue, to be tried again at ``next_attempt_at``."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE messages SET status = ?, error = ?, next_attempt_at = ?,"
                " updated_at = ? WHERE id = ?",
                (_Q, error, next_attempt_at, iso(now()), message_id),
            )

    def requeue(self, message_id: int, error: str) -> None:
        """A send the modem failed, not the message: back to the queue at once (for another
        modem), the attempt not counted, so the message's own backoff does not grow."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE messages SET status = ?, error = ?, next_attempt_at = NULL,"
                " attempts = MAX(0, attempts - 1), updated_at = ?"
                f" WHERE id = ? AND {_BACK_TO_QUEUE}",
                (_Q, error, iso(now()), message_id),
            )

    def fail(
        self, message_id: int, error: str, status: MessageStatus = MessageStatus.FAILED
    ) -> None:
        """A permanent failure (or expiry): the message is final with the reason in words."""
        if status not in (MessageStatus.FAILED, MessageStatus.EXPIRED):
            raise ValueError(f"a message fails as failed or expired, not {str(status)!r}")
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE messages SET status = ?, error = ?, next_attempt_at = NULL,"
                " updated_at = ? WHERE id = ?",
                (status, error, iso(now()), message_id),
            )

    def expire_due(self, at: str) -> list[tuple[int, int]]:
        """Queued messages past their expiry become 'expired'; returns (id, profile id) pairs."""
        with self.db.tx() as conn:
            rows = conn.execute(
                "SELECT id, profile_id FROM messages WHERE direction='out'"
                f" AND {_EXPIRE} AND expires_at IS NOT NULL AND expires_at <= ?",
                (at,),
            ).fetchall()
            expired = [(int(r["id"]), int(r["profile_id"])) for r in rows]
            for mid, _ in expired:
                conn.execute(
                    "UPDATE messages SET status=?, next_attempt_at=NULL, updated_at=?,"
                    " error = COALESCE(error, 'expired before it could be sent') WHERE id=?",
                    (MessageStatus.EXPIRED, iso(now()), mid),
                )
        return expired

    def expire_if_due(self, message_id: int, at: str) -> bool:
        """The one queued message becomes 'expired' if its expiry is past (as
        :meth:`expire_due` does for all of them); True if it did. The router asks this of a row
        it is about to claim, so that it can run the full sweep, which reads every queued row,
        less often while it sends."""
        with self.db.tx() as conn:
            return (
                conn.execute(
                    "UPDATE messages SET status=?, next_attempt_at=NULL, updated_at=?,"
                    " error = COALESCE(error, 'expired before it could be sent')"
                    f" WHERE id=? AND direction='out' AND {_EXPIRE}"
                    " AND expires_at IS NOT NULL AND expires_at <= ?",
                    (MessageStatus.EXPIRED, iso(now()), message_id, at),
                ).rowcount
                == 1
            )

    def recover_after_crash(self) -> list[int]:
        """At start: messages caught mid-send go back to the queue; parts that were being
        written may have reached the network, so they are resent (at least once) and marked as
        possible duplicates. Returns the ids of the messages put back."""
        with self.db.tx() as conn:
            rows = conn.execute(
                f"SELECT id FROM messages WHERE direction='out' AND {_BACK_TO_QUEUE}"
            ).fetchall()
            ids = [int(r["id"]) for r in rows]
            conn.execute(
                "UPDATE message_parts SET status=?, maybe_duplicate=1,"
                " error='the gateway stopped while this part was being sent; it may arrive twice'"
                f" WHERE {_PART_UNWRITTEN}",
                (PartStatus.PENDING,),
            )
            conn.execute(
                "UPDATE messages SET status=?, next_attempt_at=NULL, updated_at=?"
                f" WHERE direction='out' AND {_BACK_TO_QUEUE}",
                (_Q, iso(now())),
            )
            conn.execute(
                "UPDATE messages SET maybe_duplicate=1 WHERE id IN"
                " (SELECT message_id FROM message_parts WHERE maybe_duplicate=1)"
            )
        return ids

    def requeue_stranded(self, message_id: int) -> bool:
        """What :meth:`recover_after_crash` does, for one message that was left 'sending'
        while the gateway ran (the store could not record how its send ended). True when it
        went back to the queue."""
        with self.db.tx() as conn:
            resent = conn.execute(
                "UPDATE message_parts SET status=?, maybe_duplicate=1,"
                " error='the store could not record this part being sent; it may arrive twice'"
                f" WHERE message_id = ? AND {_PART_UNWRITTEN}",
                (PartStatus.PENDING, message_id),
            ).rowcount
            requeued = conn.execute(
                "UPDATE messages SET status=?, next_attempt_at=NULL, updated_at=?,"
                " maybe_duplicate = maybe_duplicate OR ?"
                f" WHERE id = ? AND direction='out' AND {_BACK_TO_QUEUE}",
                (_Q, iso(now()), 1 if resent else 0, message_id),
            ).rowcount
        return requeued > 0

    # -- delivery reports ----------------------------------------------------------------

    def match_report(self, modem_id: str, phone: str, tp_mr: int, since: str) -> sqlite3.Row | None:
        """The part a status report is about: same modem, recipient and TP-MR, sent after
        ``since`` (the TP-MR wraps at 256), the most recent first."""
        return self.db.q1(
            "SELECT mp.* FROM message_parts mp JOIN messages m ON m.id = mp.message_id"
            " WHERE mp.modem_id = ? AND mp.tp_mr = ? AND m.phone = ? AND mp.sent_at >= ?"
            f" AND mp.status IN {_ROLLED_UP}"
            " ORDER BY mp.sent_at DESC, mp.id DESC LIMIT 1",
            (modem_id, tp_mr, phone, since),
        )

    def part_report(
        self, part_id: int, status: int, category: str, reason: str | None = None
    ) -> tuple[int, MessageStatus | None]:
        """Apply a status report to a part (``category``: the report's, delivered, failed or
        pending); returns (message id, rolled-up message status). ``reason``: why it failed,
        for people, kept as the message's error when this report fails it."""
        new = {"delivered": PartStatus.DELIVERED, "failed": PartStatus.FAILED}.get(
            category, PartStatus.SENT
        )
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE message_parts SET report_status = ?, reported_at = ?, status = ?"
                " WHERE id = ?",
                (status, iso(now()), new, part_id),
            )
            mid = int(
                conn.execute(
                    "SELECT message_id FROM message_parts WHERE id = ?", (part_id,)
                ).fetchone()[0]
            )
            return mid, self._rollup(mid, reason)

    def _rollup(self, message_id: int, reason: str | None = None) -> MessageStatus | None:
        """The message's status from its parts' reports (None: no such message); ``reason``
        is the error recorded if it becomes failed."""
        with self.db.tx() as conn:
            msg = conn.execute(
                "SELECT status, parts_total FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if msg is None:
                return None
            old = MessageStatus(msg["status"])
            if old not in _REPORTED:
                return old
            states = [
                PartStatus(r["status"])
                for r in conn.execute(
                    "SELECT status FROM message_parts WHERE message_id = ?", (message_id,)
                )
            ]
            if PartStatus.FAILED in states:
                status = MessageStatus.FAILED
            elif states and all(s is PartStatus.DELIVERED for s in states):
                status = MessageStatus.DELIVERED
            else:
                status = MessageStatus.SENT
            if status != old:
                MESSAGE.check(old, status)
                error = (
                    (reason or "the network could not deliver it")
                    if status is MessageStatus.FAILED
                    else None
                )
                conn.execute(
                    "UPDATE messages SET status = ?, error = COALESCE(?, error), updated_at = ?"
                    " WHERE id = ?",
                    (status, error, iso(now()), message_id),
                )
            return status

    # -- inbound -------------------------------------------------------------------------

    def add_inbound(
        self,
        *,
        profile_id: int,
        phone: str,
        short_code: str,
        modem_id: str,
        body: str,
        encoding: str | None,
        parts_total: int,
        status: MessageStatus,
        kind: str,
        received_at: str,
        agent_state: AgentState | None,
    ) -> int:
        with self.db.tx() as conn:
            cur = conn.execute(
                "INSERT INTO messages (direction, profile_id, phone, short_code, modem_id, body,"
                " encoding, parts_total, status, kind, priority, agent_state, created_at,"
                " updated_at) VALUES ('in', ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (
                    profile_id,
                    phone,
                    short_code,
                    modem_id,
                    body,
                    encoding,
                    parts_total,
                    status,
                    kind,
                    agent_state,
                    received_at,
                    received_at,
                ),
            )
            conn.execute(
                "UPDATE profiles SET last_message_at = ? WHERE id = ? AND"
                " (last_message_at IS NULL OR last_message_at < ?)",
                (received_at, profile_id, received_at),
            )
            conn.execute(
                "UPDATE modems SET received_count = received_count + 1 WHERE modem_id = ?",
                (modem_id,),
            )
            return int(cur.lastrowid)

    # -- reading -------------------------------------------------------------------------

    def complete_inbound(self, message_id: int, body: str, status: MessageStatus) -> None:
        """A late part joined an inbound message: its new body and status."""
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE messages SET body = ?, status = ?, updated_at = ? WHERE id = ?",
                (body, status, iso(now()), message_id),
            )

    def set_kind(self, message_id: int, kind: str) -> None:
        """What an inbound message turned out to be (a reply, a keyword, unknown)."""
        with self.db.tx() as conn:
            conn.execute("UPDATE messages SET kind = ? WHERE id = ?", (kind, message_id))

    def previous_inbound(self, profile_id: int, before_id: int) -> int | None:
        """The id of the profile's inbound message just before ``before_id``."""
        value = self.db.value(
            "SELECT id FROM messages WHERE profile_id = ? AND direction = 'in' AND id < ?"
            " ORDER BY id DESC LIMIT 1",
            (profile_id, before_id),
        )
        return None if value is None else int(value)

    def record_past(self, m: PastMessage) -> int:
        """A message that already happened (demo data, imported history), as it ended; also
        the profile's last activity and sticky modem. Returns its id."""
        with self.db.tx() as conn:
            cur = conn.execute(
                "INSERT INTO messages (direction, profile_id, phone, short_code, campaign_id,"
                " modem_id, body, encoding, parts_total, status, kind, priority,"
                " agent_state, created_by, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                (
                    m.direction,
                    m.profile_id,
                    m.phone,
                    m.short_code,
                    m.campaign_id,
                    m.modem_id,
                    m.body,
                    m.encoding,
                    m.parts_total,
                    m.status,
                    m.kind,
                    m.agent_state,
                    m.created_by,
                    m.at,
                    m.at,
                ),
            )
            conn.execute(
                "UPDATE profiles SET last_message_at = ?, sticky_modem = ? WHERE id = ?",
                (m.at, m.modem_id, m.profile_id),
            )
            return int(cur.lastrowid)

    def conversation_page(
        self, profile_id: int, *, before: int | None = None, limit: int = 100
    ) -> list[sqlite3.Row]:
        """Up to ``limit`` of the profile's messages older than message ``before``, newest
        first."""
        if before is None:
            return self.db.q(
                "SELECT * FROM messages WHERE profile_id = ? ORDER BY id DESC LIMIT ?",
                (profile_id, limit),
            )
        return self.db.q(
            "SELECT * FROM messages WHERE profile_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (profile_id, before, limit),
        )

    def part_states(self, message_ids: Iterable[int]) -> dict[int, dict[str, int]]:
        """How many parts of each message are in each state: {message id: {status: count}}."""
        ids = list(message_ids)
        states: dict[int, dict[str, int]] = {}
        for start in range(0, len(ids), 500):  # SQLite caps the number of parameters
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for p in self.db.q(
                f"SELECT message_id, status, COUNT(*) AS n FROM message_parts"
                f" WHERE message_id IN ({marks}) GROUP BY message_id, status",
                chunk,
            ):
                states.setdefault(p["message_id"], {})[p["status"]] = p["n"]
        return states

    def parts_of(self, message_ids: Iterable[int]) -> dict[int, list[sqlite3.Row]]:
        """The parts of many messages (as :meth:`parts`, in seq order): {message id: parts};
        a message without parts is not in it."""
        ids = list(message_ids)
        parts: dict[int, list[sqlite3.Row]] = {}
        for start in range(0, len(ids), 500):  # SQLite caps the number of parameters
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for p in self.db.q(
                f"SELECT * FROM message_parts WHERE message_id IN ({marks})"
                " ORDER BY message_id, seq",
                chunk,
            ):
                parts.setdefault(p["message_id"], []).append(p)
        return parts

    def get(self, message_id: int) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM messages WHERE id = ?", (message_id,))

    def conversation(
        self, profile_id: int, *, after_id: int = 0, limit: int = 500
    ) -> list[sqlite3.Row]:
        """A profile's messages, oldest first (the last ``limit``), newer than ``after_id``."""
        rows = self.db.q(
            "SELECT * FROM messages WHERE profile_id = ? AND id > ? ORDER BY id DESC LIMIT ?",
            (profile_id, after_id, limit),
        )
        return list(reversed(rows))

    def page(
        self,
        f: MessageFilter = EVERY_MESSAGE,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """A page of messages matching ``f``, newest first, with the profile's name
        (``profile_name``): the newest, or those just older than id ``before``, or just newer
        than id ``after`` (keyset pages: the thousandth costs what the first does)."""
        return search.page(self.db, f, before=before, after=after, limit=limit)

    def matching(self, f: MessageFilter = EVERY_MESSAGE, *, batch: int = 500) -> Iterator[Row]:
        """Every message matching ``f``, newest first, read in batches (for exports)."""
        return search.matching(self.db, f, batch=batch)

    # -- agent queue ---------------------------------------------------------------------

    def agent_queue(self, *, limit: int = 200) -> list[sqlite3.Row]:
        """Unanswered inbound messages (open or claimed), oldest first, with profile names."""
        return self.db.q(
            "SELECT m.*, p.name AS profile_name FROM messages m JOIN profiles p"
            " ON p.id = m.profile_id WHERE m.direction = 'in'"
            f" AND m.agent_state IN {_UNANSWERED} ORDER BY m.id LIMIT ?",
            (limit,),
        )

    def set_agent_state(
        self,
        message_id: int,
        state: AgentState,
        *,
        user: str | None = None,
        expect: Iterable[AgentState | None] = (),
    ) -> bool:
        """Move an inbound message in the agent queue; with ``expect``, only from those states
        (None: from no state), each move checked against the table of states.py."""
        state = AgentState(state)
        expect = tuple(None if e is None else AgentState(e) for e in expect)
        sql = (
            "UPDATE messages SET agent_state = ?, claimed_by = ?, claimed_at = ?, updated_at = ?"
            " WHERE id = ? AND direction = 'in'"
        )
        params: list[Any] = [
            state,
            user if state is AgentState.CLAIMED else None,
            iso(now()) if state is AgentState.CLAIMED else None,
            iso(now()),
            message_id,
        ]
        if expect:
            sql += f" AND {AGENT.guard(state, *expect)}"
        with self.db.tx() as conn:
            return conn.execute(sql, params).rowcount == 1

    def answer_open(self, profile_id: int) -> int:
        """A reply went to this profile: its open and claimed messages count as answered."""
        with self.db.tx() as conn:
            return conn.execute(
                "UPDATE messages SET agent_state = ?, updated_at = ? WHERE"
                f" profile_id = ? AND direction = 'in' AND {_ANSWER}",
                (AgentState.ANSWERED, iso(now()), profile_id),
            ).rowcount

    # -- read state ----------------------------------------------------------------------

    def mark_read(self, profile_id: int, user_id: int, last_id: int) -> None:
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO conversation_reads (profile_id, user_id, last_read_id)"
                " VALUES (?, ?, ?) ON CONFLICT (profile_id, user_id) DO UPDATE SET"
                " last_read_id = MAX(last_read_id, excluded.last_read_id)",
                (profile_id, user_id, last_id),
            )

    def unread_count(self, profile_id: int, user_id: int) -> int:
        return int(
            self.db.value(
                "SELECT COUNT(*) FROM messages WHERE profile_id = ? AND direction = 'in' AND id >"
                " COALESCE((SELECT last_read_id FROM conversation_reads WHERE profile_id = ?"
                " AND user_id = ?), 0)",
                (profile_id, profile_id, user_id),
            )
        )
