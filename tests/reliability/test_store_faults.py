"""Store faults: a damaged page, a truncated file, a read-only file and directory, a full disk
and space returned. Each gives a clear error that names the file and says what to do; nothing
already stored is lost; and where the gateway can go on by itself (space returned) it does,
without a restart.

The daemon is the real one: ``gateway run`` as its own process where the fault stops it at
start, the in-process daemon over the simulator (tests/integration/harness.py) where it must
go on. The full disk is a real one, a small tmpfs mounted for the test (root only, as CI runs):
SQLite's ``max_page_count`` only caps the database's own size, so updates in place still go
through the WAL and the write that stranded a message (recording a part's outcome) never fails
that way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.harness import ALICE, Gateway, make_config, wait_until

from gateway.cli import main
from gateway.config import load_config
from gateway.services import build_services
from gateway.store import DB_NAME, Store, StoreError
from gateway.store.db import Database

FINAL = {"sent", "delivered", "failed", "expired"}


# -- helpers -------------------------------------------------------------------------------


def gateway(
    *argv: str, timeout: float = 30, user: int | None = None
) -> subprocess.CompletedProcess:
    """``gateway ARGV`` as its own process (as ``user`` when given); its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        user=user,
        cwd="/",
    )


def seed(data_dir: Path, count: int) -> list[int]:
    """A store with ``count`` queued messages to one number; their ids."""
    config = load_config(data_dir.parent / "gateway.yaml")
    assert config.data_dir == data_dir
    services = build_services(config, modems=False)
    try:
        profile, _ = services.store.profiles.get_or_create(ALICE)
        return [
            services.outbox.submit(f"stored {i}", profile_id=profile["id"]).message_id
            for i in range(count)
        ]
    finally:
        services.close()


def damage_page(db_file: Path, table: str = "messages") -> None:
    """Overwrite the root page of ``table`` with garbage (after moving the WAL into the file,
    so the damaged page is the one SQLite reads)."""
    conn = sqlite3.connect(db_file, timeout=10)
    try:
        # A running daemon's reader can hold the WAL for a moment: until the copy is complete.
        deadline = time.monotonic() + 10
        while conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            assert time.monotonic() < deadline, "the WAL could not be checkpointed"
            time.sleep(0.01)  # polling the condition above, bounded by the deadline
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    with open(db_file, "r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xde\xad\xbe\xef" * (size // 4))


def messages_in(db_file: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT body FROM messages ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
def configured(tmp_path: Path) -> tuple[Path, Path]:
    """(config file, data dir) of a gateway with the simulator; nothing started."""
    config = make_config(tmp_path)
    return config, tmp_path / "data"


# -- a damaged store -----------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["page", "truncated", "not a database"])
def test_a_damaged_store_is_refused_at_start_naming_the_backup_to_restore(configured, damage):
    config, data = configured
    seed(data, 30)
    backup = data / "backups" / "nightly-20260101.sqlite3"
    done = gateway("backup", "-c", str(config), str(backup))
    assert done.returncode == 0, done.stderr
    seed(data, 1)  # a message newer than the backup
    db_file = data / DB_NAME
    if damage == "page":
        damage_page(db_file)
    elif damage == "truncated":  # (seed closed the store: its WAL is in the file)
        os.truncate(db_file, db_file.stat().st_size // 2)
    else:
        db_file.write_bytes(b"not sqlite at all " * 500)

    done = gateway("run", "-c", str(config))
    assert done.returncode == 1
    err = done.stderr
    assert "Traceback" not in err, err
    assert f"the message store {db_file} is damaged" in err, err
    # Says what to do, with the exact command line: the newest backup that passes its check.
    assert f"gateway restore -c {config} {backup}" in err, err

    if damage != "page":
        return  # the rest is the same whatever the damage
    # `gateway backup` refuses it too (a copy of a damaged store is no backup) and writes
    # nothing; the good backup stays.
    copy = data.parent / "copy.sqlite3"
    done = gateway("backup", "-c", str(config), str(copy))
    assert done.returncode == 1 and "damaged" in done.stderr, done.stderr
    assert not copy.exists() and not list(data.parent.glob("copy.sqlite3*"))

    # Following the advice brings the store back with everything the backup held.
    done = gateway("restore", "-c", str(config), str(backup))
    assert done.returncode == 0, done.stderr
    assert messages_in(db_file) == [f"stored {i}" for i in range(30)]
    Store.open(data).close()  # passes its check now


def test_a_store_damaged_while_running_is_reported_clearly(configured, capsys, caplog):
    config, data = configured
    caplog.set_level(logging.CRITICAL, logger="gateway.store.db")
    gw = Gateway(load_config(config))
    try:
        gw.wait_up("a", "b", "c")
        first = gw.services.outbox.submit("before the damage", to=ALICE).message_id
        gw.wait_status(first, "delivered")
        damage_page(data / DB_NAME)
        code = main(["send", "-c", str(config), "--to", ALICE, "after the damage"])
        reply = json.loads(capsys.readouterr().out)
        assert code == 1 and not reply["ok"]
        assert "internal error" not in reply["error"]
        assert f"the message store {data / DB_NAME} is damaged" in reply["error"]
        assert "gateway restore" in reply["error"]
        # Said once in the log, loudly, with the same advice.
        assert any("is damaged" in r.getMessage() for r in caplog.records)
    finally:
        gw.stop()


def test_nightly_backup_of_a_damaged_store_keeps_every_older_backup(configured):
    _config, data = configured
    seed(data, 20)
    folder = data / "backups"
    store = Store.open(data)
    older = []
    for day in ("20260101", "20260102", "20260103"):
        older.append(store.backup(folder / f"nightly-{day}.sqlite3"))
    store.close()
    damage_page(data / DB_NAME)

    # Opened without the start check, as a running daemon has it when the damage happens.
    damaged = Store(Database(data / DB_NAME), data)
    try:
        with pytest.raises(StoreError, match="is damaged") as caught:
            damaged.nightly_backup(keep=2)
    finally:
        damaged.close()
    # The newest good one is offered for restore.
    assert f"gateway restore {older[-1]}" in str(caught.value)
    assert sorted(folder.glob("nightly-*.sqlite3")) == older  # nothing pruned, nothing added
    assert not [p for p in folder.iterdir() if p not in older]


# -- read-only file and directory ----------------------------------------------------------


@contextlib.contextmanager
def unwritable(path: Path, probe_dir: Path) -> Iterator[int | None]:
    """Make ``path`` unwritable for the gateway; yields the uid to run it as (None: as we
    are). Not root: plain permissions. Root ignores those, so the gateway runs as ``nobody``
    when that user can run this Python; else the immutable flag (chattr +i)."""
    if os.geteuid() != 0:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode & ~0o222)
        try:
            yield None
        finally:
            path.chmod(mode)
        return
    nobody = 65534
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import gateway.cli"], user=nobody, cwd="/", capture_output=True
        )
        as_nobody = probe.returncode == 0
    except OSError:  # this Python lives where nobody may not go
        as_nobody = False
    if as_nobody:
        shutil.chown(probe_dir, nobody, nobody)
        for p in probe_dir.rglob("*"):
            shutil.chown(p, nobody, nobody)
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode & ~0o222)
        try:
            yield nobody
        finally:
            path.chmod(mode)
        return
    flagged = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if flagged.returncode != 0:
        pytest.skip(f"cannot make {path} unwritable for root here: {flagged.stderr.strip()}")
    try:
        yield None
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder any user may enter (pytest's tmp_path is private to its user)."""
    base = Path(tempfile.mkdtemp(prefix="gateway-ro-"))
    base.chmod(0o755)
    yield base
    subprocess.run(["chattr", "-R", "-i", str(base)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_read_only_store_names_the_path_and_what_to_do(open_dir, what):
    config = make_config(open_dir)
    data = open_dir / "data"
    seed(data, 5)
    db_file = data / DB_NAME
    target = db_file if what == "file" else data
    with unwritable(target, open_dir) as user:
        done = gateway("run", "-c", str(config), user=user)
    err = done.stderr
    assert done.returncode == 1, err
    assert "Traceback" not in err, err
    assert str(target) in err, err
    assert "cannot be written" in err and "write access" in err, err
    # Nothing stored was lost, and with write access back the store opens as before.
    assert messages_in(db_file) == [f"stored {i}" for i in range(5)]
    Store.open(data).close()


# -- a full disk, then space again -----------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs at tmp_path/disk (a real ENOSPC; needs root, as CI has)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Fill the file system of ``disk`` to the last byte; the filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):  # ENOSPC: on to smaller pieces
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def test_full_disk_then_space_again_resumes_without_a_restart(small_disk, capsys):
    config = make_config(small_disk, latency=0.3)
    gw = Gateway(load_config(config))
    try:
        gw.wait_up("a", "b", "c")
        outbox = gw.services.outbox
        before = [outbox.submit(f"before {i}", to=ALICE).message_id for i in range(2)]
        for mid in before:
            gw.wait_status(mid, "delivered")
        queued = [outbox.submit(f"queued {i} " + "x" * 200, to=ALICE).message_id for i in range(6)]
        # The disk fills while a part is on its way to the modem: recording how it went fails.
        gw.wait_event("message.status", status="sending", id=queued[0])
        filler = fill(small_disk)
        # The first write that fails is the sender's, recording the part it just sent.
        wait_until(
            gw.sub,
            lambda: gw.store.db.fault is not None and gw.store.db.fault.kind == "full",
            10,
            "the store to notice the full disk",
        )

        # Accepting is refused in words that say why and where; nothing half-accepted.
        code = main(["send", "-c", str(config), "--to", ALICE, "while full"])
        reply = json.loads(capsys.readouterr().out)
        assert code == 1 and not reply["ok"], reply
        assert "disk is full" in reply["error"] and str(small_disk / "data") in reply["error"]

        filler.unlink()  # space again: everything goes on by itself
        for mid in queued:
            gw.wait_status(mid, "delivered", timeout=30)
        rows = gw.store.db.q("SELECT body, status FROM messages WHERE direction = 'out'")
        assert not [r for r in rows if r["status"] not in FINAL]
        bodies = sorted(r["body"] for r in rows)
        assert bodies == sorted(
            [f"before {i}" for i in range(2)] + [f"queued {i} " + "x" * 200 for i in range(6)]
        )
        assert gw.store.db.value("SELECT COUNT(*) FROM message_parts WHERE status='writing'") == 0
        # And new messages are accepted again.
        code = main(["send", "-c", str(config), "--to", ALICE, "after"])
        assert code == 0 and json.loads(capsys.readouterr().out)["ok"]
    finally:
        gw.stop()


# -- file modes ----------------------------------------------------------------------------


def test_store_files_are_private(tmp_path, caplog):
    data = tmp_path / "data"
    store = Store.open(data)
    store.profiles.get_or_create(ALICE)
    backup = store.backup(data / "backups" / "nightly-20260101.sqlite3")
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(data) == 0o700
    for suffix in ("", "-wal", "-shm"):
        assert mode(data / (DB_NAME + suffix)) == 0o600, suffix
    assert mode(backup) == 0o600 and mode(backup.parent) == 0o700
    store.close()

    # A store made by an older version, readable by everyone: fixed at start, and said.
    data.chmod(0o755)
    (data / DB_NAME).chmod(0o644)
    backup.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="gateway.store.db"):
        Store.open(data).close()
    assert mode(data) == 0o750 and mode(data / DB_NAME) == 0o600 and mode(backup) == 0o600
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"{data / DB_NAME} 0644 -> 0600" in logged and f"{data} 0755 -> 0750" in logged
