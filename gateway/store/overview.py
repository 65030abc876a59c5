"""The figures of the Home page: what needs attention now, read in a few small queries."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from . import search
from .db import Database
from .search import MessageFilter
from .states import IN_FLIGHT, UNANSWERED, UNSENT, sql_list


@dataclass(frozen=True)
class Attention:
    """Counts of what a team looks at first."""

    unanswered: int  # inbound messages open or claimed in the agent queue
    queued: int  # outbound messages waiting or being written to a modem
    failed_today: int  # outbound messages that failed or expired since midnight (UTC)


class Overview:
    """Read-only summaries across tables, for the Home page."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def attention(self) -> Attention:
        """The counts of :class:`Attention`."""
        return Attention(
            unanswered=int(
                self.db.value(
                    "SELECT COUNT(*) FROM messages WHERE direction='in' AND agent_state IN"
                    f" {sql_list(UNANSWERED)}"
                )
            ),
            queued=int(
                self.db.value(
                    "SELECT COUNT(*) FROM messages WHERE direction='out'"
                    f" AND status IN {sql_list(IN_FLIGHT)}"
                )
            ),
            failed_today=int(
                self.db.value(
                    # The same list as the partial index messages_failed, which it uses.
                    "SELECT COUNT(*) FROM messages WHERE direction='out' AND status IN"
                    f" {sql_list(UNSENT)} AND updated_at >= date('now')"
                )
            ),
        )

    def recent_inbound(self, limit: int = 8) -> list[sqlite3.Row]:
        """The newest inbound messages with their profile's name (``profile_name``)."""
        return search.page(self.db, MessageFilter(direction="in"), limit=limit).rows
