"""Raw inbound PDUs, committed before the modem deletes them, and the parts of concatenated
messages waiting for their siblings."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from .db import Database
from .states import InboundPduKind, MessageStatus


@dataclass(frozen=True)
class RawPdu:
    """One PDU as read from a modem, with what decoding it told (or why it failed)."""

    modem_id: str
    pdu: str
    kind: InboundPduKind
    received_at: str
    sender: str | None = None
    concat_key: str | None = None
    seq: int | None = None
    total: int | None = None
    text: str | None = None
    error: str | None = None


def dedup_key(modem_id: str, pdu: str) -> str:
    """The same PDU read twice from the same modem (a sweep after a +CMTI, a restart before the
    delete) is the same message: it carries its own service-centre timestamp."""
    return hashlib.sha256(f"{modem_id}\0{pdu.strip().upper()}".encode()).hexdigest()


class InboundPdus:
    """Insert-once storage of raw PDUs and lookup of concatenation groups."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, raw: RawPdu) -> tuple[int, bool]:
        """Commit a PDU; (id, True) the first time, (existing id, False) when already stored."""
        key = dedup_key(raw.modem_id, raw.pdu)
        with self.db.tx() as conn:
            row = conn.execute("SELECT id FROM inbound_pdus WHERE dedup_key = ?", (key,)).fetchone()
            if row is not None:
                return int(row["id"]), False
            cur = conn.execute(
                "INSERT INTO inbound_pdus (modem_id, dedup_key, pdu, kind, sender, concat_key,"
                " seq, total, text, error, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    raw.modem_id,
                    key,
                    raw.pdu.strip().upper(),
                    raw.kind,
                    raw.sender,
                    raw.concat_key,
                    raw.seq,
                    raw.total,
                    raw.text,
                    raw.error,
                    raw.received_at,
                ),
            )
            return int(cur.lastrowid), True

    def get(self, pdu_id: int) -> sqlite3.Row | None:
        return self.db.q1("SELECT * FROM inbound_pdus WHERE id = ?", (pdu_id,))

    def group(self, concat_key: str) -> list[sqlite3.Row]:
        """The parts of a concatenated message not yet assembled, in arrival order."""
        return self.db.q(
            "SELECT * FROM inbound_pdus WHERE concat_key = ? AND settled = 0 ORDER BY id",
            (concat_key,),
        )

    def waiting_groups(self, older_than: str) -> list[str]:
        """Concatenation groups still incomplete whose first part arrived before ``older_than``."""
        rows = self.db.q(
            "SELECT concat_key FROM inbound_pdus WHERE settled = 0 AND concat_key IS NOT"
            f" NULL AND kind = '{InboundPduKind.DELIVER}' GROUP BY concat_key"
            " HAVING MIN(received_at) < ?",
            (older_than,),
        )
        return [r["concat_key"] for r in rows]

    def unprocessed_singles(self) -> list[sqlite3.Row]:
        """Single-part PDUs committed but not yet turned into messages (a crash in between)."""
        return self.db.q(
            "SELECT * FROM inbound_pdus WHERE settled = 0 AND concat_key IS NULL"
            f" AND kind = '{InboundPduKind.DELIVER}' ORDER BY id"
        )

    def attach(self, pdu_ids: list[int], message_id: int) -> None:
        with self.db.tx() as conn:
            conn.executemany(
                "UPDATE inbound_pdus SET message_id = ?, settled = 1 WHERE id = ?",
                [(message_id, pid) for pid in pdu_ids],
            )

    def mark_done(self, pdu_id: int) -> None:
        """A PDU that makes no message of its own (a duplicate part, a status report)."""
        with self.db.tx() as conn:
            conn.execute("UPDATE inbound_pdus SET settled = 1 WHERE id = ?", (pdu_id,))

    def undecodable(self, limit: int = 100) -> list[sqlite3.Row]:
        return self.db.q(
            f"SELECT * FROM inbound_pdus WHERE kind = '{InboundPduKind.UNDECODABLE}'"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )

    def incomplete_message_of(self, concat_key: str, since: str) -> int | None:
        """The newest message of this concatenation group still 'incomplete', created at or
        after ``since``; None when there is none."""
        value = self.db.value(
            "SELECT m.id FROM inbound_pdus i JOIN messages m ON m.id = i.message_id"
            " WHERE i.concat_key = ? AND m.status = ? AND m.created_at >= ?"
            " ORDER BY m.id DESC LIMIT 1",
            (concat_key, MessageStatus.INCOMPLETE, since),
        )
        return None if value is None else int(value)

    def parts_of(self, message_id: int) -> list[sqlite3.Row]:
        """The PDUs a message was made of."""
        return self.db.q("SELECT * FROM inbound_pdus WHERE message_id = ?", (message_id,))

    def oldest_waiting_part(self) -> str | None:
        """When the oldest part still waiting for its siblings arrived (None: none waits)."""
        return self.db.value(
            "SELECT MIN(received_at) FROM inbound_pdus WHERE settled = 0"
            f" AND concat_key IS NOT NULL AND kind = '{InboundPduKind.DELIVER}'"
        )

    def unapplied_status_reports(self) -> list[sqlite3.Row]:
        """Status reports committed but not yet applied to their message (a crash between)."""
        return self.db.q(
            "SELECT * FROM inbound_pdus WHERE settled = 0"
            f" AND kind = '{InboundPduKind.STATUS_REPORT}' ORDER BY id"
        )

    def unassembled_groups(self) -> list[str]:
        """Concatenation groups with parts not yet assembled, whatever their age."""
        rows = self.db.q(
            "SELECT DISTINCT concat_key FROM inbound_pdus WHERE settled = 0"
            f" AND concat_key IS NOT NULL AND kind = '{InboundPduKind.DELIVER}'"
        )
        return [r["concat_key"] for r in rows]
