"""Kept counts of messages by direction, status and short code, for ``/metrics``: a
``GROUP BY`` over a million messages reads every row (about a second on a Pi), so triggers of
migration 10 (:data:`SCHEMA`) keep ``message_counts`` in step with ``messages`` in the same
transaction, and reading it costs a few rows whatever the store's size.
"""

from __future__ import annotations

import sqlite3

from .db import Database
from .states import IN_FLIGHT, MessageStatus, sql_list

_UP = (
    "INSERT INTO message_counts (direction, status, short_code, n)"
    " VALUES (NEW.direction, NEW.status, NEW.short_code, 1)"
    " ON CONFLICT (direction, status, short_code) DO UPDATE SET n = n + 1;"
)
_DOWN = (
    "UPDATE message_counts SET n = n - 1 WHERE direction = OLD.direction"
    " AND status = OLD.status AND short_code = OLD.short_code;"
)

SCHEMA: list[str] = [
    "CREATE TABLE message_counts ("
    " direction TEXT NOT NULL, status TEXT NOT NULL, short_code TEXT NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY (direction, status, short_code)) WITHOUT ROWID",
    "INSERT INTO message_counts (direction, status, short_code, n)"
    " SELECT direction, status, short_code, COUNT(*) FROM messages"
    " GROUP BY direction, status, short_code",
    f"CREATE TRIGGER message_counts_insert AFTER INSERT ON messages BEGIN {_UP} END",
    "CREATE TRIGGER message_counts_update AFTER UPDATE OF direction, status, short_code"
    " ON messages WHEN OLD.status IS NOT NEW.status OR OLD.direction IS NOT NEW.direction"
    f" OR OLD.short_code IS NOT NEW.short_code BEGIN {_DOWN} {_UP} END",
    f"CREATE TRIGGER message_counts_delete AFTER DELETE ON messages BEGIN {_DOWN} END",
]


class MessageCounts:
    """The kept counts, and the other figures of the queue that indexes make cheap."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def by_state(self) -> list[sqlite3.Row]:
        """(direction, status, short_code, n) for every combination ever seen."""
        return self.db.q(
            "SELECT direction, status, short_code, n FROM message_counts"
            " ORDER BY direction, status, short_code"
        )

    def oldest_queued_at(self) -> str | None:
        """When the oldest message still waiting for a modem (queued or sending) was
        accepted; None when none waits. On messages_status (status, id): the oldest is the
        lowest id of each state."""
        times = [
            self.db.value(
                "SELECT created_at FROM messages WHERE status = ? AND direction = 'out'"
                " ORDER BY id LIMIT 1",
                (state,),
            )
            for state in IN_FLIGHT
        ]
        present = [t for t in times if t is not None]
        return min(present) if present else None

    def reassembly_backlog(self) -> tuple[int, int]:
        """(parts waiting for the rest of their message, inbound messages still incomplete):
        on inbound_concat (partial on settled = 0) and the kept counts."""
        parts = int(
            self.db.value(
                "SELECT COUNT(*) FROM inbound_pdus WHERE settled = 0 AND concat_key IS NOT NULL"
            )
        )
        incomplete = int(
            self.db.value(
                "SELECT COALESCE(SUM(n), 0) FROM message_counts WHERE direction = 'in'"
                f" AND status IN {sql_list([MessageStatus.INCOMPLETE])}"
            )
        )
        return parts, incomplete
