"""The message store: one source of truth for profiles, messages, modems and users.

``Store.open(data_dir)`` opens (creating and migrating as needed) ``data_dir/gateway.sqlite3``
and exposes one object per table group. SQLite in WAL mode is the default; docs/store.md says
what a PostgreSQL backend would have to provide.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .audiences import Audiences
from .broadcasts import Broadcasts
from .counts import MessageCounts
from .db import (
    FILE_MODE,
    Database,
    StoreCheck,
    StoreDamaged,
    StoreError,
    StoreFault,
    newest_good_backup,
)
from .inbound import InboundPdus, RawPdu
from .keywords import KeywordExists, KeywordPaths, Keywords, NewKeyword
from .messages import Messages, NewOutbound, PastMessage
from .migrations import migrate, needs_migration
from .overview import Overview
from .profiles import ProfileError, Profiles
from .records import AuditLog, Campaigns, ModemRecords, OptEvents, StoreReferenceAllocator
from .states import IN_FLIGHT, sql_list
from .subscriptions import ShortCodeSubscriptions
from .tokens import ApiTokens, TokenError
from .users import UserError, Users
from .webhooks import Webhooks

__all__ = [
    "KeywordExists",
    "NewKeyword",
    "NewOutbound",
    "PastMessage",
    "ProfileError",
    "RawPdu",
    "Store",
    "StoreCheck",
    "StoreDamaged",
    "StoreError",
    "StoreFault",
    "TokenError",
    "UserError",
]

log = logging.getLogger(__name__)

DB_NAME = "gateway.sqlite3"


class Store:
    """The opened store: ``profiles``, ``messages``, ``inbound``, ``users``, ``modems``,
    ``campaigns``, ``opt_events``, ``audit``, ``refs``, ``overview`` (Home's figures),
    ``subscriptions`` (per short code), ``keywords``, ``keyword_paths``, ``audiences``
    (segments and lists), ``broadcasts``, ``api_tokens``, ``webhooks`` (and their outbox) and
    ``counts`` (kept message counts for /metrics)."""

    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.data_dir = data_dir
        self.profiles = Profiles(db)
        self.messages = Messages(db)
        self.inbound = InboundPdus(db)
        self.users = Users(db)
        self.modems = ModemRecords(db)
        self.campaigns = Campaigns(db)
        self.opt_events = OptEvents(db)
        self.audit = AuditLog(db)
        self.refs = StoreReferenceAllocator(db)
        self.overview = Overview(db)
        # Issue 11: subscription per short code, keywords and their opt-in paths.
        self.subscriptions = ShortCodeSubscriptions(db)
        self.keywords = Keywords(db)
        self.keyword_paths = KeywordPaths(db)
        self.audiences = Audiences(db)  # segments, lists, counts (issue 11)
        self.broadcasts = Broadcasts(db)
        self.api_tokens = ApiTokens(db)
        self.webhooks = Webhooks(db)
        self.counts = MessageCounts(db)

    @classmethod
    def open(cls, data_dir: str | Path, *, check_in_background: bool = False) -> Store:
        """Open the store in ``data_dir``, applying migrations (with a backup before each).

        The store is checked first (``quick_check``) and refused with :class:`StoreDamaged`
        when it fails. With ``check_in_background`` (the daemon, so that a large store's check
        overlaps the modems' start-up and the web app's loading), the check runs on a thread
        of its own when no migration is due, and every write waits for its verdict
        (:attr:`check`: its failure is raised to each writer); a store that needs a migration
        is checked here first either way, since a damaged store must never be migrated."""
        data_dir = Path(data_dir)
        db = Database(data_dir / DB_NAME)
        try:
            db.prepare()
            if check_in_background and not needs_migration(db):
                db.check_in_background()
            else:
                # A damaged store is refused before anything reads or migrates it: the gateway
                # would accept messages into it and lose them (it says which backup to restore).
                problem = db.check()
                if problem is not None:
                    raise StoreDamaged(db.path, problem, newest_good_backup(data_dir / "backups"))
                migrate(db, backup_dir=data_dir / "backups")
            store = cls(db, data_dir)
            store.campaigns.master_id()  # a read once it exists; its first creation is a write
        except BaseException:
            db.close()
            raise
        return store

    @property
    def check(self) -> StoreCheck | None:
        """The check at start still holding writes or done in the background (None when it
        was done before :meth:`open` returned)."""
        return self.db.gate

    def close(self) -> None:
        self.db.close()

    def release_connection(self) -> None:
        """The calling thread is done with the store for now (the web app, after each
        request): its connection goes back to a small pool instead of staying with a thread
        that may not need it again for hours."""
        self.db.release()

    def connection_counts(self) -> dict[str, Any]:
        """The store's SQLite connections: held by threads (and which), and pooled."""
        return self.db.connection_counts()

    def backup(self, target: str | Path) -> Path:
        """A consistent copy of the store, taken while the gateway runs."""
        return self.db.backup_to(target)

    def purge(self, *, messages_before: str | None, raw_pdus_before: str | None) -> dict[str, int]:
        """Retention: delete final messages (and their parts) and settled raw PDUs older than
        the given times. Queued and in-flight messages are never purged."""
        removed = {"messages": 0, "raw_pdus": 0}
        with self.db.tx() as conn:
            if raw_pdus_before:
                removed["raw_pdus"] = conn.execute(
                    "DELETE FROM inbound_pdus WHERE settled = 1 AND received_at < ?",
                    (raw_pdus_before,),
                ).rowcount
            if messages_before:
                old = (
                    "SELECT id FROM messages WHERE created_at < ?"
                    f" AND status NOT IN {sql_list(IN_FLIGHT)}"
                )
                conn.execute(
                    f"UPDATE inbound_pdus SET message_id = NULL WHERE message_id IN ({old})",
                    (messages_before,),
                )
                conn.execute(
                    f"DELETE FROM message_parts WHERE message_id IN ({old})", (messages_before,)
                )
                # The opt-in/opt-out history is kept for good; it only loses the link.
                conn.execute(
                    f"UPDATE opt_events SET message_id = NULL WHERE message_id IN ({old})",
                    (messages_before,),
                )
                removed["messages"] = conn.execute(
                    "DELETE FROM messages WHERE created_at < ? AND status NOT IN"
                    f" {sql_list(IN_FLIGHT)}",
                    (messages_before,),
                ).rowcount
        return removed

    def nightly_backup(self, keep: int) -> Path:
        """Copy into ``data_dir/backups/nightly-YYYYMMDD.sqlite3`` and keep the last ``keep``.

        The new copy is checked before any older one is pruned: when it fails its check,
        :class:`StoreDamaged` is raised and the older backups all stay (they are what a restore
        needs)."""
        folder = self.data_dir / "backups"
        target = folder / f"nightly-{datetime.now(UTC):%Y%m%d}.sqlite3"
        self.backup(target)  # checked before it is put in place (StoreDamaged if it fails)
        nightly = sorted(folder.glob("nightly-*.sqlite3"))
        for old in nightly[: max(0, len(nightly) - keep)]:
            old.unlink(missing_ok=True)
        return target


def restore(backup: str | Path, data_dir: str | Path) -> Path:
    """Put a backup in place of the store (the daemon must be stopped). The current store is
    kept beside it as ``gateway.sqlite3.before-restore``."""
    backup = Path(backup)
    data_dir = Path(data_dir)
    try:
        conn = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        try:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{backup} is not a gateway backup: {exc}") from exc
    if ok != "ok":
        raise StoreError(f"{backup} is damaged: integrity check says {ok}")
    target = data_dir / DB_NAME
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True)
    if target.exists():
        kept = target.with_name(DB_NAME + ".before-restore")
        shutil.copy2(target, kept)
        wal = target.with_name(DB_NAME + "-wal")
        if wal.exists():  # its last commits may still be only there: keep them with it
            shutil.copy2(wal, kept.with_name(kept.name + "-wal"))
    for suffix in ("-wal", "-shm"):
        target.with_name(DB_NAME + suffix).unlink(missing_ok=True)
    tmp = target.with_name(DB_NAME + ".restoring")
    shutil.copy2(backup, tmp)
    tmp.chmod(FILE_MODE)  # a backup may have come from anywhere with any mode
    tmp.replace(target)
    log.info("restored %s from %s", target, backup)
    return target
