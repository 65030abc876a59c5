"""Nightly backups (keeping a few) and retention of old messages and raw PDUs."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from gateway.config import parse_config
from gateway.housekeeping import Housekeeper, next_daily
from gateway.services import build_services
from gateway.store import RawPdu
from gateway.store.times import iso, now


def _world(tmp_path, extra: str = ""):
    config = parse_config(
        f"data_dir: {tmp_path}\nretention: {{nightly_backups: 2, raw_pdus_days: 30{extra}}}\n",
        base_dir=tmp_path,
    )
    s = build_services(config, modems=False)
    return s.store, Housekeeper(config, s.store, s.inbound, s.events)


def test_nightly_backup_is_a_working_copy_and_only_a_few_are_kept(tmp_path) -> None:
    store, keeper = _world(tmp_path)
    try:
        store.profiles.add("+15551230001", "Ann")
        backups = tmp_path / "backups"
        backups.mkdir()
        for day in ("20260101", "20260102", "20260103"):  # older nights
            (backups / f"nightly-{day}.sqlite3").write_bytes(b"old")
        keeper.nightly()
        kept = sorted(p.name for p in backups.glob("nightly-*.sqlite3"))
        assert len(kept) == 2 and "nightly-20260103.sqlite3" in kept
        newest = backups / kept[-1]
        with sqlite3.connect(newest) as conn:
            assert conn.execute("SELECT name FROM profiles").fetchall() == [("Ann",)]
    finally:
        store.close()


def test_retention_removes_old_final_messages_and_settled_pdus_only(tmp_path) -> None:
    store, keeper = _world(tmp_path, ", messages_days: 10")
    try:
        pid = store.profiles.add("+15551230001", "Ann")
        old = iso(now() - timedelta(days=40))
        with store.db.tx() as conn:
            for status in ("delivered", "queued"):
                conn.execute(
                    "INSERT INTO messages (direction, profile_id, phone, short_code, body,"
                    " status, created_at, updated_at) VALUES ('out', ?, ?, '1', 'x', ?, ?, ?)",
                    (pid, "+15551230001", status, old, old),
                )
        store.opt_events.record(pid, "opt_out", source="keyword", message_id=1)
        pdu_id, _ = store.inbound.add(RawPdu("a", "00", "undecodable", old, error="bad"))
        store.inbound.mark_done(pdu_id)
        keeper.nightly()
        statuses = [r["status"] for r in store.db.q("SELECT status FROM messages")]
        assert statuses == ["queued"]  # a queued message is never purged
        assert store.db.value("SELECT COUNT(*) FROM inbound_pdus") == 0
        (event,) = store.opt_events.history(pid)  # the opt history stays, without the link
        assert event["message_id"] is None
    finally:
        store.close()


def test_next_daily_is_strictly_later() -> None:
    at = now().replace(hour=3, minute=30, second=0, microsecond=0)
    assert next_daily(at, 3, 30, at.tzinfo) == at + timedelta(days=1)
    assert next_daily(at - timedelta(minutes=1), 3, 30, at.tzinfo) == at
