"""After a burst of use, ``gateway run`` with 8 modems keeps a bounded number of SQLite
connections: the modems' senders and event threads give theirs back to the store's small pool
when they have nothing in hand, instead of each holding one (its copy of the schema, its
prepared statements and page cache) for good. Measured through the daemon's ``memory`` control
op (gateway/diagnostics.py), on the real process, with the simulator in a process of its own.

Also: the daemon runs with glibc's per-thread caches off (it restarts itself once with
``GLIBC_TUNABLES``), and its trimmer gives memory back after the burst."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from gateway.control import request
from gateway.memory import NO_TCACHE, optimized_code_ready
from gateway.store import Store
from gateway.store.states import MessageStatus

from .harness import SimProcess, free_port, poll, spawn_gateway, write_sim_config

MODEMS = 8
SENDS = 48
TEXTS = 16
CLIENTS = 3  # at once on the control socket
# Threads that keep a connection while the gateway runs: the dispatcher's router, and one spare
# (a thread between its work and giving it back). Before, each modem's sender and event thread,
# the broadcasts', webhooks' and housekeeping threads, the main thread and every control
# request's thread (until a new connection swept it) kept one: 13 held once the modems were up.
HELD_AT_MOST = 2
POOLED_AT_MOST = 4  # gateway/store/db.py IDLE_CONNECTIONS


def count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def test_after_a_burst_the_modems_threads_hold_no_store_connection(tmp_path: Path) -> None:
    # The burst texts made-up numbers: the network gives each a handset (else they fail).
    sim = SimProcess(tmp_path / "sim", "--modems", str(MODEMS), "--auto-handsets")
    proc = None
    try:
        data = tmp_path / "data"
        config = write_sim_config(tmp_path / "gateway.yaml", data, free_port(), sim.modems)
        Store.open(data).close()
        log = tmp_path / "gateway.log"
        proc = spawn_gateway(config, log)

        def dead() -> str:
            return "" if proc.poll() is None else log.read_text()[-3000:]

        poll(lambda: log.read_text().count(" up on ") >= MODEMS, 30, "8 modems up", dead)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert any(NO_TCACHE.encode() in item for item in environ), "tcache not turned off"
        # Docstrings left out when -OO's compiled files are installed (run.sh compiles them).
        assert (b"PYTHONOPTIMIZE=2" in environ) == optimized_code_ready(), "PYTHONOPTIMIZE"

        # Sends from several clients at once (every modem gets some), texts to every modem.
        def sends(first: int) -> None:
            for i in range(first, SENDS, CLIENTS):
                reply = request(data, "send", to=f"+1555200{i:04d}", text=f"Reminder {i}")
                assert reply.get("ok"), reply

        senders = [threading.Thread(target=sends, args=(n,)) for n in range(CLIENTS)]
        for t in senders:
            t.start()
        for i in range(TEXTS):
            sim.text_from(
                sim.handsets[i % len(sim.handsets)],
                sim.modems[i % MODEMS]["number"],
                f"see you at {i}",
            )
        for t in senders:
            t.join(60)
        db = data / "gateway.sqlite3"
        done = (MessageStatus.SENT.value, MessageStatus.DELIVERED.value)
        sent = f"SELECT count(*) FROM messages WHERE status IN {done}"
        poll(lambda: count(db, sent) == SENDS, 60, f"{SENDS} messages sent", dead)
        received = "SELECT count(*) FROM messages WHERE direction = 'in'"
        poll(lambda: count(db, received) == TEXTS, 60, f"{TEXTS} texts stored", dead)
        used = count(db, "SELECT count(DISTINCT modem_id) FROM messages WHERE direction = 'out'")

        # The last sender gives its connection back just after its message is recorded.
        def settled() -> bool:
            c = request(data, "memory", top=0)["store_connections"]
            return c["held"] <= HELD_AT_MOST

        try:
            poll(settled, 10, "the senders' connections given back", dead)
        except AssertionError as exc:
            held = request(data, "memory", top=0)["store_connections"]["held_by"]
            raise AssertionError(f"{exc}; held by the threads {held}") from None
        report = request(data, "memory", top=0)
        conns = report["store_connections"]
        print(
            f"\n{used} modems sent; store connections {conns}; RSS "
            f"{report['rss'] / 2**20:.1f} MiB; threads {report['threads']}"
        )
        assert used >= 2, "the burst should have used several modems' senders"
        assert conns["held"] <= HELD_AT_MOST, conns
        assert conns["pooled"] <= POOLED_AT_MOST, conns

        # The admin's view of the same: `gateway memory` prints the op's answer as JSON.
        out = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "memory", "--data-dir", str(data), "--trim"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        shown = json.loads(out.stdout)
        assert shown["store_connections"]["held"] <= HELD_AT_MOST, shown
        assert shown["rss"] > 0 and shown["resident"]["main heap"] > 0, shown
        assert shown["thread_names"]["send-m"] == MODEMS, shown["thread_names"]
        # Start-up's objects were frozen: the trimmer's collections walk only newer ones.
        assert shown["python_gc"]["frozen"] > 10_000, shown["python_gc"]
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(20)
        sim.stop()
