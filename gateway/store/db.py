"""The database connection: SQLite in WAL mode, one connection per thread, explicit transactions.

Everything above talks to :class:`Database` through ``tx()`` and the ``q*`` helpers with ``?``
placeholders and portable SQL, so that a PostgreSQL backend can replace this one later (see
docs/store.md) without touching the queries' callers.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The message store cannot be opened, migrated, backed up or restored."""


class StoreFault(StoreError):
    """The store's file or disk stopped the gateway from reading or writing it: ``kind`` is
    ``full``, ``readonly``, ``damaged``, ``io`` or ``cantopen``; the message names the file and
    says what to do."""

    def __init__(self, kind: str, path: Path, message: str) -> None:
        self.kind = kind
        self.path = path
        super().__init__(message)


class StoreDamaged(StoreFault):
    """The store fails its check (or SQLite found a damaged page): it must be restored from a
    backup. ``backup`` is the newest backup that passes its own check, if there is one."""

    def __init__(self, path: Path, problem: str, backup: Path | None = None) -> None:
        self.problem = problem
        self.backup = backup
        self.path = path
        super().__init__("damaged", path, self.advice())

    def advice(self, config: str | None = None) -> str:
        """The message, with ``gateway restore`` written for ``config`` when it is known."""
        conf = f"-c {config} " if config else ""
        if self.backup is not None:
            todo = (
                f"stop the gateway and restore the newest good backup: "
                f"gateway restore {conf}{self.backup}"
            )
        else:
            todo = (
                f"no good backup was found in {self.path.parent / 'backups'}; stop the gateway "
                f"and restore one you keep elsewhere: gateway restore {conf}FILE"
            )
        return f"the message store {self.path} is damaged ({self.problem}); {todo}"


# SQLite's primary result codes that say something about the file or the disk, not the query.
_SQLITE_PERM = 3
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

FAULT_REPEAT_SECONDS = 60.0  # a lasting fault is logged again this often
FAULT_CLEAR_SECONDS = 5.0  # writes working this long after the last failure end the fault
# SQLite's soft limit on its heap, for the whole process (every thread's connection, each with
# a page cache of up to 2 MB: the modems', the senders', the web server's). Above it, SQLite
# recycles cached pages instead of allocating more; the OS page cache still holds the file, so a
# page read again is a copy, not a disk read. Measured with 8 modems after a day of use
# (bench/footprint.py --soak): SQLite's heap grew from 3 MB to the limit when it was 10 MB.
SQLITE_HEAP_LIMIT = 4 * 1024 * 1024
# Connections a thread gave back (release()) kept open for the next thread that needs one. Each
# connection holds its own copy of the schema and its prepared statements (~0.3-0.5 MB): one
# per web server thread that ever served a request (up to 74) cost 25 MB after a day of use.
IDLE_CONNECTIONS = 4
# Prepared statements each connection keeps (Python's default is 128; a complex one is tens of
# KB of SQLite's heap, times ~25 connections). A sender's or a modem's loop runs fewer distinct
# statements than this; a pooled web connection re-prepares a page's few (~0.1 ms each).
# Measured with 8 modems after 0.3 of a day (bench/footprint.py --soak): SQLite's heap 10.3 ->
# 8.5 MB, the daemon 70.6 -> 68.5 MB.
CACHED_STATEMENTS = 16
DIR_MODE = 0o700  # the data directory: messages and users are nobody else's business
FILE_MODE = 0o600  # the store, its -wal and -shm, backups


def is_store_file(path: Path) -> bool:
    """Whether a file in the data directory holds messages (the store, its journals, backups)."""
    return path.name.endswith((".sqlite3", ".sqlite3-wal", ".sqlite3-shm", ".partial")) or (
        ".sqlite3." in path.name
    )


def tighten_modes(data_dir: Path) -> list[str]:
    """Make the data directory and the store's files private to the gateway's user (files
    0600; the directory without access for others). Returns what was changed, for the log;
    a directory systemd made 0750 for the service's group is left as it is."""
    changed: list[str] = []

    def tighten(path: Path, keep: int) -> None:
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)
            if path.is_symlink() or not mode & ~keep:
                return
            path.chmod(mode & keep)
            changed.append(f"{path} {mode:04o} -> {mode & keep:04o}")
        except OSError as exc:
            log.warning("cannot make %s private: %s", path, exc)

    tighten(data_dir, 0o750)
    for folder in (data_dir, data_dir / "backups"):
        if not folder.is_dir():
            continue
        if folder != data_dir:
            tighten(folder, DIR_MODE)
        for path in folder.iterdir():
            if path.is_file() and is_store_file(path):
                tighten(path, FILE_MODE)
    return changed


def create_private(path: Path) -> None:
    """Create an empty file with mode 0600 (SQLite gives its -wal and -shm the same mode); an
    empty file is an empty SQLite database."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


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
        self._idle: list[sqlite3.Connection] = []  # given back by release(), for any thread
        self._all_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._fault_lock = threading.Lock()
        self.fault: StoreFault | None = None  # the last file or disk fault, until writes work
        self._fault_at = 0.0  # when a write last failed for it (monotonic)
        self._fault_logged = 0.0  # when it was last logged
        self._good_backup: tuple[Path | None] | None = None  # found once the store is damaged
        # Set while the start check runs in the background (StoreCheck): every write waits
        # for its verdict, so nothing is written into a store that turns out to be damaged.
        self.gate: StoreCheck | None = None
        folder = self.path.parent
        try:
            if not folder.exists():
                folder.mkdir(mode=DIR_MODE, parents=True)
                folder.chmod(DIR_MODE)  # mkdir's mode is masked by the umask
        except OSError as exc:
            raise StoreFault(
                "cantopen",
                self.path,
                f"cannot create the data directory {folder}: {exc.strerror or exc}; create it "
                "and give it to the gateway's user (or set data_dir to a folder it may write)",
            ) from exc

    def prepare(self) -> None:
        """Before the first connection: the store's file and folder exist and can be written
        (else :class:`StoreFault` naming which and what to do), and they are private."""
        folder = self.path.parent
        probe = folder / f".write-test-{os.getpid()}"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
            probe.unlink()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StoreFault(
                    "full",
                    self.path,
                    f"the disk of the data directory {folder} is full; free space there and "
                    "start the gateway again",
                ) from exc
            raise StoreFault(
                "readonly",
                self.path,
                f"the data directory {folder} cannot be written ({exc.strerror or exc}); "
                f"the store needs to create {self.path.name}-wal and {self.path.name}-shm "
                f"there. Give the gateway's user write access to {folder} (for example "
                f"chown -R gateway: {folder}), or remount its file system read-write, or "
                "remove the immutable flag (chattr -i)",
            ) from exc
        if self.path.exists():
            try:
                with open(self.path, "r+b"):
                    pass
            except OSError as exc:
                raise StoreFault(
                    "readonly",
                    self.path,
                    f"the message store {self.path} cannot be written "
                    f"({exc.strerror or exc}); give the gateway's user write access to it "
                    f"(for example chown gateway: {self.path}; chmod 600 {self.path})",
                ) from exc
        else:
            create_private(self.path)
        for line in tighten_modes(folder):
            log.warning("made private (was readable by others): %s", line)

    # -- connections ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=CACHED_STATEMENTS,
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute(f"PRAGMA soft_heap_limit={SQLITE_HEAP_LIMIT}")  # process-wide
        except sqlite3.Error as exc:
            fault = self.fault_of(exc)
            if fault is not None:
                raise fault from exc
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
        """This thread's connection (one given back by another thread's :meth:`release`
        when there is one, else a new one)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._all_lock:
                if self._idle:
                    conn = self._idle.pop()
                    self._all.append((threading.current_thread(), conn))
            if conn is None:
                conn = self._connect()
            self._local.conn = conn
            self._local.depth = 0
        return conn

    def release(self) -> None:
        """This thread is done with the store for now (a web request has ended): its
        connection is kept for the next thread that needs one, or closed when
        ``IDLE_CONNECTIONS`` are kept already. Not inside a transaction."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.depth:
            return
        self._local.conn = None
        if conn.in_transaction:  # a read left open by an unfinished cursor: end it
            conn.rollback()
        me = threading.current_thread()
        with self._all_lock:
            self._all = [(t, c) for t, c in self._all if c is not conn or t is not me]
            if len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        try:
            conn.close()
        except sqlite3.Error as exc:
            log.warning("closing a store connection: %s", exc)

    def connection_counts(self) -> dict[str, Any]:
        """Connections open now: ``held`` by a thread, ``pooled`` (given back, kept for the
        next thread), and ``held_by``: the names of the threads holding one. Each is a copy
        of the schema, prepared statements and a page cache."""
        with self._all_lock:
            return {
                "held": len(self._all),
                "pooled": len(self._idle),
                "held_by": sorted(t.name for t, _ in self._all),
            }

    def close(self) -> None:
        """Close every thread's connection (at shutdown, after the threads have stopped); a
        check still running is interrupted first (writes stay refused)."""
        if self.gate is not None:
            self.gate.cancel()
        with self._all_lock:
            conns, self._all = [c for _, c in self._all] + self._idle, []
            self._idle = []
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
        gate = self.gate
        if gate is not None and not self._local.depth:
            gate.wait()  # StoreDamaged when the check failed: nothing is written
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._translated(exc) from exc
            self._local.depth = 1
            self._local.pending = []
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                # Also when COMMIT itself failed (a full disk shows there, in WAL mode): SQLite
                # may keep that transaction open, and this connection would then hold the write
                # lock for good. ROLLBACK after an automatic rollback fails harmlessly.
                self._local.pending = []
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error as rollback_exc:
                        log.warning("rolling back in %s: %s", self.path, rollback_exc)
                if isinstance(exc, sqlite3.Error):
                    raise self._translated(exc) from exc
                raise
            finally:
                self._local.depth = 0
        if self.fault is not None:
            self._recovered()
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
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._translated(exc) from exc

    def q1(self, sql: str, params: Sequence[Any] | dict = ()) -> sqlite3.Row | None:
        """Run a query and return the first row or None."""
        try:
            return self.conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise self._translated(exc) from exc

    def value(self, sql: str, params: Sequence[Any] | dict = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.q1(sql, params)
        return None if row is None else row[0]

    def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> sqlite3.Cursor:
        """Run one statement (inside ``tx()`` when it writes)."""
        try:
            return self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._translated(exc) from exc

    # -- faults of the file or the disk -----------------------------------------------------

    def fault_of(self, exc: sqlite3.Error) -> StoreFault | None:
        """The :class:`StoreFault` an SQLite error stands for (a full disk, a read-only or
        damaged file, an I/O error), or None for an error of the query itself."""
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            return None
        code &= 0xFF
        where = self.path.parent
        if code == _SQLITE_FULL:
            return StoreFault(
                "full",
                self.path,
                f"the message store {self.path} cannot be written: the disk is full ({exc}). "
                f"Free space on the file system of {where}; the gateway goes on by itself once "
                "there is room, and nothing it accepted before is lost",
            )
        if code in (_SQLITE_READONLY, _SQLITE_PERM):
            return StoreFault(
                "readonly",
                self.path,
                f"the message store {self.path} cannot be written ({exc}); give the gateway's "
                f"user write access to it and to {where}, or remount the file system "
                "read-write",
            )
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            # Looked for once: checking the backups reads each of them whole, and a damaged
            # page is hit again at every sweep and every routing pass.
            with self._fault_lock:
                if self._good_backup is None:
                    self._good_backup = (newest_good_backup(where / "backups"),)
                backup = self._good_backup[0]
            return StoreDamaged(self.path, str(exc), backup)
        if code == _SQLITE_IOERR:
            return StoreFault(
                "io",
                self.path,
                f"reading or writing the message store {self.path} failed ({exc}); check the "
                "disk (dmesg, free space) and restart the gateway",
            )
        if code == _SQLITE_CANTOPEN:
            return StoreFault(
                "cantopen",
                self.path,
                f"cannot open the message store {self.path} ({exc}); check that {where} exists "
                f"and the gateway's user may create {self.path.name}-wal and "
                f"{self.path.name}-shm in it",
            )
        return None

    def _translated(self, exc: sqlite3.Error) -> Exception:
        """``exc`` as a StoreFault when it is one (logged clearly, once per kind until the store
        works again), else ``exc`` itself."""
        fault = self.fault_of(exc)
        if fault is None:
            return exc
        at = time.monotonic()
        with self._fault_lock:
            # A nearly full disk lets some commits through and not others: say it once a
            # minute, not at every failed write.
            new = (
                self.fault is None
                or self.fault.kind != fault.kind
                or at - self._fault_logged >= FAULT_REPEAT_SECONDS
            )
            self.fault = fault
            self._fault_at = at
            if new:
                self._fault_logged = at
        if new:
            log.critical("%s", fault)
        return fault

    def _recovered(self) -> None:
        """A commit worked: the fault is over once no write has failed for a while."""
        with self._fault_lock:
            fault = self.fault
            if fault is None or time.monotonic() - self._fault_at < FAULT_CLEAR_SECONDS:
                return
            self.fault = None
        log.warning("the message store %s can be written again (it was %s)", self.path, fault.kind)

    def check(self, conn: sqlite3.Connection | None = None) -> str | None:
        """SQLite's ``quick_check`` of the whole file: None when it is sound, else the problem.
        ``conn`` is a connection of the caller's own (the background check's); by default this
        thread's.

        O(size): it reads every page once but skips the index-against-table cross-checks of
        ``integrity_check``; measured at 1M messages (370 MB): 0.47 s with a warm cache, 5.4 s
        cold, on the development machine (docs/benchmarks.md)."""
        started = time.monotonic()
        try:
            rows = [r[0] for r in (conn or self.conn).execute("PRAGMA quick_check(20)").fetchall()]
        except sqlite3.Error as exc:
            code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
            if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                return str(exc)
            raise self._translated(exc) from exc
        log.info("checked the message store %s in %.2f s", self.path, time.monotonic() - started)
        if rows == ["ok"]:
            return None
        return "; ".join(rows[:5]) + (f" (and {len(rows) - 5} more)" if len(rows) > 5 else "")

    def check_in_background(self) -> StoreCheck:
        """Start the store's check on a thread of its own and hold every write (``tx()``) until
        it has passed; :class:`StoreCheck` tells the verdict. Reads go on meanwhile (a damaged
        page read before the verdict raises :class:`StoreDamaged` where it is met)."""
        check = StoreCheck(self)
        self.gate = check
        check.start()
        return check

    # -- backups --------------------------------------------------------------------------

    def backup_to(self, target: str | Path) -> Path:
        """A consistent copy of the whole database while it is in use (SQLite online backup),
        private to the gateway's user (0600), checked before it is put in place:
        :class:`StoreDamaged` when the store (hence the copy) fails its check."""
        target = Path(target)
        tmp = target.with_name(target.name + ".partial")
        try:
            if not target.parent.exists():
                target.parent.mkdir(mode=DIR_MODE, parents=True)
            tmp.unlink(missing_ok=True)
            create_private(tmp)
            dest = sqlite3.connect(tmp)
            try:
                self.conn.backup(dest)
                dest.execute("PRAGMA journal_mode=DELETE")
            finally:
                dest.close()
            # The online backup copies pages as they are, damaged ones too: a copy that fails
            # its check never takes the place of a file (or counts as a backup to keep).
            problem = check_file(tmp)
            if problem is not None:
                raise StoreDamaged(
                    self.path,
                    f"its copy fails the check: {problem}",
                    newest_good_backup(self.path.parent / "backups"),
                )
            tmp.replace(target)
        except StoreDamaged:
            tmp.unlink(missing_ok=True)
            raise
        except (sqlite3.Error, OSError) as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, sqlite3.Error):
                fault = self.fault_of(exc)
                if isinstance(fault, StoreDamaged):
                    raise fault from exc
            raise StoreError(f"cannot back up {self.path} to {target}: {exc}") from exc
        return target


class StoreCheckCancelled(StoreError):
    """The store was closed before its check at start finished: nothing may be written."""


class StoreCheck:
    """The store's check at start (``quick_check``) running on its own thread and connection
    while the rest of the gateway starts (modems negotiate, the web app loads). Writers call
    :meth:`wait`: it returns once the store passed, and raises :class:`StoreDamaged` (naming the
    newest good backup) when it failed, for every writer, for good."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._done = threading.Event()
        self._failure: StoreError | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="store-check", daemon=True)
        self.seconds: float | None = None  # how long the check took, once done

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        failure: StoreError | None = None
        try:
            with self._lock:
                self._conn = sqlite3.connect(self.db.path, check_same_thread=False)
            try:
                problem = self.db.check(self._conn)
            finally:
                with self._lock:
                    conn, self._conn = self._conn, None
                if conn is not None:
                    conn.close()
            if problem is not None:
                failure = StoreDamaged(
                    self.db.path, problem, newest_good_backup(self.db.path.parent / "backups")
                )
        except StoreError as exc:
            failure = exc
        except sqlite3.Error as exc:  # interrupted by close(), or a fault of the file
            failure = self.db.fault_of(exc) or StoreCheckCancelled(
                f"the check of the message store {self.db.path} did not finish: {exc}"
            )
        self.seconds = time.monotonic() - started
        self._failure = failure
        if failure is not None:
            log.critical("%s", failure)
        self._done.set()

    def wait(self) -> None:
        """Block until the check is done; raise its failure if it failed."""
        self._done.wait()
        if self._failure is not None:
            raise self._failure

    def cancel(self) -> None:
        """Interrupt a running check (the store is being closed) and wait for its thread."""
        with self._lock:
            if self._conn is not None:
                self._conn.interrupt()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(10)


def check_file(path: str | Path) -> str | None:
    """``quick_check`` of a database file opened read-only (a backup): None when sound, else
    the problem in words."""
    path = Path(path)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check(20)").fetchall()]
            conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"{exc}"
    if rows == ["ok"]:
        return None
    return "; ".join(rows[:5])


def newest_good_backup(folder: Path) -> Path | None:
    """The newest backup in ``folder`` that passes its check (nightly and before-migration
    copies alike), or None."""
    try:
        candidates = sorted(
            (p for p in folder.glob("*.sqlite3") if p.is_file()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
    except OSError:
        return None
    for path in candidates:
        if check_file(path) is None:
            return path
        log.warning("backup %s fails its check; not offered for restore", path)
    return None
