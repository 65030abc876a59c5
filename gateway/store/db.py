"""The database connection: SQLite in WAL mode, one connection per thread, explicit transactions.

Everything above talks to :class:`Database` through ``tx()`` and the ``q*`` helpers with ``?``
placeholders and portable SQL, so that a PostgreSQL backend can replace this one later (see
docs/store.md) without touching the queries' callers.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The message store cannot be opened, migrated, backed up or restored."""


Row = sqlite3.Row


class Database:
    """A SQLite database file shared by the daemon's threads.

    ``synchronous=FULL``: a message the UI accepted survives a power cut, not just a killed
    process; on an SD card that costs a few milliseconds per commit, which is nothing next to a
    modem's seconds per SMS. An idle gateway makes no commits at all.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._all_lock = threading.Lock()
        self._write_lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {self.path.parent}: {exc}") from exc

    # -- connections ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the message store {self.path}: {exc}") from exc
        with self._all_lock:
            # Threads come and go (a control request, a modem's event thread after a replug):
            # close the connections of those that ended, or every one would leak two files.
            alive = []
            for thread, other in self._all:
                if thread.is_alive():
                    alive.append((thread, other))
                else:
                    try:
                        other.close()
                    except sqlite3.Error as exc:
                        log.warning("closing a finished thread's store connection: %s", exc)
            alive.append((threading.current_thread(), conn))
            self._all = alive
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            self._local.depth = 0
        return conn

    def close(self) -> None:
        """Close every thread's connection (at shutdown, after the threads have stopped)."""
        with self._all_lock:
            conns, self._all = [c for _, c in self._all], []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error as exc:
                log.warning("closing a store connection: %s", exc)
        self._local = threading.local()

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one.

        Writers are serialised in-process too, so two threads never fight for SQLite's lock
        and never see ``database is locked`` on a slow card.
        """
        conn = self.conn
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            self._local.depth = 1
            self._local.pending = []
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                self._local.pending = []
                raise
            else:
                conn.execute("COMMIT")
            finally:
                self._local.depth = 0
        pending, self._local.pending = self._local.pending, []
        for fn in pending:
            try:
                fn()
            except Exception:  # a failed listener must not undo or hide the commit
                log.exception("after-commit callback %r failed", fn)

    def after_commit(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` once the current transaction has committed (at once outside one; never
        after a rollback). Events and wake-ups go through here, so that whoever they wake
        finds the rows they announce."""
        if getattr(self._local, "depth", 0):
            self._local.pending.append(fn)
        else:
            fn()

    def q(self, sql: str, params: Sequence[Any] | dict = ()) -> list[sqlite3.Row]:
        """Run a query and return all rows."""
        return self.conn.execute(sql, params).fetchall()

    def q1(self, sql: str, params: Sequence[Any] | dict = ()) -> sqlite3.Row | None:
        """Run a query and return the first row or None."""
        return self.conn.execute(sql, params).fetchone()

    def value(self, sql: str, params: Sequence[Any] | dict = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.q1(sql, params)
        return None if row is None else row[0]

    def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> sqlite3.Cursor:
        """Run one statement (inside ``tx()`` when it writes)."""
        return self.conn.execute(sql, params)

    # -- backups --------------------------------------------------------------------------

    def backup_to(self, target: str | Path) -> Path:
        """A consistent copy of the whole database while it is in use (SQLite online backup)."""
        target = Path(target)
        tmp = target.with_name(target.name + ".partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            dest = sqlite3.connect(tmp)
            try:
                self.conn.backup(dest)
                dest.execute("PRAGMA journal_mode=DELETE")
            finally:
                dest.close()
            tmp.replace(target)
        except (sqlite3.Error, OSError) as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot back up {self.path} to {target}: {exc}") from exc
        return target
