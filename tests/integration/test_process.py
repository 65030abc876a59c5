"""``gateway run`` as a real process with the simulator inside: killed with SIGKILL while a
message is being written to a modem and started again, nothing accepted is lost and the parts
caught mid-write are marked as possible duplicates; SIGTERM shuts down cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway.config import load_config
from gateway.control import ControlError, request

from .harness import (
    ALICE,
    BOB,
    SUPPORT,
    Gateway,
    make_config,
    read_rows,
    spawn_gateway,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
LONG = "".join(f"Part of a long message number {i}. " for i in range(12))[:380]


def _poll(check, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    """Poll ``check`` (a query of another process: no event to wait on) until truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"gateway exited with {proc.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def _ping(data_dir: Path) -> bool:
    try:
        return bool(request(data_dir, "ping", timeout=1).get("ok"))
    except ControlError:
        return False


def _cli_send(config: Path, to: str, text: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "send", "-c", str(config), "--to", to, text],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert '"ok": true' in done.stdout


def _start_and_fill(tmp_path: Path) -> tuple[Path, Path, subprocess.Popen, Path]:
    config = make_config(tmp_path, latency=0.6)
    data = load_config(config).data_dir
    log = tmp_path / "gateway.log"
    proc = spawn_gateway(config, log)
    _poll(lambda: _ping(data), 15, "the control socket", proc, log)
    _cli_send(config, ALICE, LONG)  # 3 parts: 1.8 s on one modem
    reply = request(data, "send", to=BOB, text="Short one", short_code=SUPPORT)
    assert reply["ok"], reply
    db = data / "gateway.sqlite3"
    _poll(
        lambda: read_rows(db, "SELECT id FROM message_parts WHERE status = 'writing'"),
        10,
        "a part being written",
        proc,
        log,
    )
    return config, db, proc, log


def test_sigkill_while_sending_loses_nothing_and_marks_duplicates(tmp_path):
    config, db, proc, _log = _start_and_fill(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    caught = read_rows(db, "SELECT * FROM message_parts WHERE status = 'writing'")
    assert caught, "no part was being written when the process died"
    caught_ids = {r["id"] for r in caught}
    accepted = read_rows(db, "SELECT id, phone, body FROM messages WHERE direction = 'out'")
    assert len(accepted) == 2

    # Started again on the same data directory (in-process, fast sends now).
    make_config(tmp_path, latency=0.0)
    gw = Gateway(load_config(config))
    try:
        for row in accepted:
            gw.wait_status(row["id"], {"sent", "delivered"}, timeout=8)
        for part_id in caught_ids:
            part = gw.store.db.q1("SELECT * FROM message_parts WHERE id = ?", (part_id,))
            assert part["maybe_duplicate"] == 1 and part["tp_mr"] is not None
            assert gw.message(part["message_id"])["maybe_duplicate"] == 1
        for row in accepted:
            handset = gw.net.handset(row["phone"])
            wait_until(
                gw.sub,
                lambda h=handset, b=row["body"]: any(m.text == b for m in h.inbox),
                5,
                f"{row['phone']} to get its message",
            )
        assert not gw.store.db.q("SELECT id FROM message_parts WHERE status = 'writing'")
    finally:
        gw.stop()


def test_sigterm_shuts_down_cleanly(tmp_path):
    _config, db, proc, log = _start_and_fill(tmp_path)
    os.kill(proc.pid, signal.SIGTERM)
    try:
        code = proc.wait(15)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert code == 0, log.read_text()
    assert not read_rows(db, "SELECT id FROM messages WHERE status = 'sending'")
    assert not read_rows(db, "SELECT id FROM message_parts WHERE status = 'writing'")
    assert not (db.parent / "gateway.sock").exists()
    assert "gateway stopped" in log.read_text()
