"""How long the start check of the message store takes on a large store.

Builds a store of ``--messages`` messages (two thirds outbound with one part each, one third
inbound, 20,000 profiles) in ``--dir`` unless it is there already, then times SQLite's
``quick_check`` (what ``Store.open`` runs), ``integrity_check`` and ``Store.open`` itself, each
cold (the page cache dropped, when this runs as root) and warm. Prints a table.

    .venv/bin/python bench/store_check.py [--messages 1000000] [--dir /tmp/gateway-big]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import time
from pathlib import Path

from gateway.store import DB_NAME, Store

BODY = "Hello there, this is a reasonably typical text message about your appointment at 10."
STAMP = "2026-01-01T00:00:00Z"


def build(data_dir: Path, count: int) -> None:
    """A store with ``count`` messages, written in large transactions without fsync."""
    Store.open(data_dir).close()
    conn = sqlite3.connect(data_dir / DB_NAME)
    conn.execute("PRAGMA synchronous=OFF")
    campaign = conn.execute("SELECT id FROM campaigns LIMIT 1").fetchone()[0]
    with conn:
        conn.executemany(
            "INSERT INTO profiles (id, phone, name, created_at, updated_at) VALUES (?,?,?,?,?)",
            [(p, f"+1555{p:07d}", f"Person {p}", STAMP, STAMP) for p in range(1, 20_001)],
        )
    batch = 50_000
    for start in range(1, count + 1, batch):
        messages, parts = [], []
        for i in range(start, min(start + batch, count + 1)):
            profile = i % 20_000 + 1
            out = i % 3 != 0
            messages.append(
                (
                    i,
                    "out" if out else "in",
                    profile,
                    f"+1555{profile:07d}",
                    "55123",
                    campaign,
                    "a",
                    f"{BODY} {i}",
                    "gsm7",
                    "delivered" if out else "received",
                    None if out else "reply",
                    0 if out else 10,
                    f"key-{i}" if out else None,
                    STAMP,
                    STAMP,
                )
            )
            if out:
                parts.append(
                    (i, 1, "0011000B915155" + "AB" * 60, 90, "delivered", "a", i % 256, STAMP)
                )
        with conn:
            conn.executemany(
                "INSERT INTO messages (id, direction, profile_id, phone, short_code, campaign_id,"
                " modem_id, body, encoding, status, kind, priority, idempotency_key, created_at,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                messages,
            )
            conn.executemany(
                "INSERT INTO message_parts (message_id, seq, pdu, length, status, modem_id, tp_mr,"
                " sent_at) VALUES (?,?,?,?,?,?,?,?)",
                parts,
            )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def drop_caches() -> bool:
    """Empty the kernel's page cache (root only); whether it was done."""
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def pragma(path: Path, name: str) -> float:
    conn = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        result = conn.execute(f"PRAGMA {name}").fetchone()[0]
        took = time.perf_counter() - started
    finally:
        conn.close()
    assert result == "ok", result
    return took


def store_open(data_dir: Path) -> float:
    started = time.perf_counter()
    Store.open(data_dir).close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/gateway-big"))
    args = parser.parse_args()
    path = args.dir / DB_NAME
    if not path.exists():
        print(f"building {args.messages:,} messages in {args.dir} ...", flush=True)
        build(args.dir, args.messages)
    conn = sqlite3.connect(path)
    count = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    print(f"{count:,} messages, {path.stat().st_size / 1e6:.0f} MB, {pages:,} pages")
    print(f"{'check':<28} {'cold s':>8} {'warm s':>8}")
    for label, run in (
        ("PRAGMA quick_check", lambda: pragma(path, "quick_check")),
        ("PRAGMA integrity_check", lambda: pragma(path, "integrity_check")),
        ("Store.open (with the check)", lambda: store_open(args.dir)),
    ):
        cold = run() if drop_caches() else float("nan")
        warm = run()
        print(f"{label:<28} {cold:>8.2f} {warm:>8.2f}")
    if os.geteuid() != 0:
        print("(cold figures need root to drop the page cache)")


if __name__ == "__main__":
    main()
