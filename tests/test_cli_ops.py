"""The operator's commands against a running daemon (in-process, with the simulator inside):
``gateway send`` and ``gateway modems`` through the control socket, ``gateway user``,
``gateway backup`` while it runs, ``gateway restore`` refused while it runs."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest
from integration.harness import ALICE, NUM_A, SUPPORT, Gateway, make_config, wait_until

from gateway.cli import main
from gateway.config import load_config
from gateway.store import Store


@pytest.fixture
def running(tmp_path):
    config = make_config(tmp_path)
    gw = Gateway(load_config(config))
    gw.wait_up("a", "b", "c")
    yield config, gw
    gw.stop()


def _run(capsys, *argv: str, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_send_goes_through_the_running_daemon(running, capsys):
    config, gw = running
    code, out, _ = _run(capsys, "send", "-c", str(config), "--to", "(555) 123-0001", "Hi :wave:")
    assert code == 0
    reply = json.loads(out)
    assert reply["ok"] and reply["to"] == ALICE and reply["short_code"] == SUPPORT
    msg = gw.net.handset(ALICE).wait_for_message(timeout=5)
    assert (msg.text, msg.sender) == ("Hi 👋", NUM_A)
    gw.wait_status(reply["id"], "delivered")

    # The same idempotency key twice: one message.
    for _ in range(2):
        code, out, _ = _run(
            capsys, "send", "-c", str(config), "--to", ALICE, "--idempotency-key", "k1", "Once"
        )
        assert code == 0
    assert gw.store.db.value("SELECT COUNT(*) FROM messages WHERE body = 'Once'") == 1


def test_send_refusal_is_reported_with_its_field(running, capsys):
    config, _gw = running
    code, out, _ = _run(capsys, "send", "-c", str(config), "--to", "12", "hello")
    assert code == 1
    reply = json.loads(out)
    assert not reply["ok"] and reply["field"] == "to" and reply["error"]
    code, out, _ = _run(
        capsys, "send", "-c", str(config), "--to", ALICE, "--short-code", "999", "hello"
    )
    assert code == 1 and "no short code" in json.loads(out)["error"]


def test_send_and_modems_without_a_daemon_say_so(tmp_path, capsys):
    config = make_config(tmp_path)
    code, _, err = _run(capsys, "send", "-c", str(config), "--to", ALICE, "hello")
    assert code == 1 and "not running" in err
    code, _, err = _run(capsys, "modems", "-c", str(config))
    assert code == 1 and "not running" in err


def test_modems_lists_identity_and_state(running, capsys):
    config, gw = running
    manager = gw.services.manager
    # The first health reading (signal, operator) follows the modem's coming up.
    wait_until(gw.sub, lambda: all(manager.status(m).signal for m in "abc"), 5, "signals")
    code, out, _ = _run(capsys, "modems", "-c", str(config), "--json")
    assert code == 0
    modems = {m["id"]: m for m in json.loads(out)}
    assert set(modems) == {"a", "b", "c"}
    for mid, m in modems.items():
        assert m["state"] == "up" and m["imei"] == gw.config.modem(mid).imei
        assert m["number"] and m["signal"] is not None
    code, out, _ = _run(capsys, "modems", "-c", str(config))
    assert code == 0
    assert len(out.strip().splitlines()) == 3 and "up" in out and "signal" in out


def test_user_add_passwd_list(tmp_path, capsys, monkeypatch):
    config = make_config(tmp_path)
    args = ("-c", str(config))
    code, out, _ = _run(
        capsys,
        "user", "add", *args, "alice", "--role", "admin", "--password-stdin",
        stdin="correct horse\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0 and "alice (admin) added" in out
    code, _, err = _run(
        capsys, "user", "add", *args, "alice", "--password-stdin",
        stdin="another one\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 1 and "already exists" in err
    code, _, err = _run(
        capsys, "user", "add", *args, "bob", "--password-stdin",
        stdin="short\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 1 and "at least 8 characters" in err
    code, out, _ = _run(
        capsys, "user", "passwd", *args, "alice", "--password-stdin",
        stdin="battery staple\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0 and "password of alice changed" in out
    code, _, err = _run(
        capsys, "user", "passwd", *args, "nobody", "--password-stdin",
        stdin="battery staple\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 1 and err
    code, out, _ = _run(capsys, "user", "list", *args)
    assert code == 0 and out.split() == ["alice", "admin"]

    store = Store.open(load_config(config).data_dir)
    try:
        assert store.users.authenticate("alice", "battery staple") is not None
        assert store.users.authenticate("alice", "correct horse") is None
    finally:
        store.close()


def test_backup_while_running_and_restore_only_when_stopped(tmp_path, capsys):
    config = make_config(tmp_path)
    gw = Gateway(load_config(config))
    try:
        gw.wait_up("a")
        acc = gw.services.outbox.submit("Kept in the backup", to=ALICE, short_code=SUPPORT)
        gw.wait_status(acc.message_id, "delivered")
        backup = tmp_path / "copy.sqlite3"
        code, out, _ = _run(capsys, "backup", "-c", str(config), str(backup))
        assert code == 0 and str(backup) in out
        conn = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            row = conn.execute(
                "SELECT status FROM messages WHERE body = ?", ("Kept in the backup",)
            )
            assert row.fetchone()[0] == "delivered"
        finally:
            conn.close()
        # A message after the backup: the restore must take it away again.
        later = gw.services.outbox.submit("After the backup", to=ALICE, short_code=SUPPORT)
        gw.wait_status(later.message_id, {"sent", "delivered"})

        code, _, err = _run(capsys, "restore", "-c", str(config), str(backup))
        assert code == 1 and "running" in err
    finally:
        gw.stop()

    code, out, _ = _run(capsys, "restore", "-c", str(config), str(backup))
    assert code == 0 and "restored" in out
    data = load_config(config).data_dir
    assert (data / "gateway.sqlite3.before-restore").exists()
    store = Store.open(data)
    try:
        bodies = {r["body"] for r in store.db.q("SELECT body FROM messages")}
        assert "Kept in the backup" in bodies and "After the backup" not in bodies
    finally:
        store.close()

    bad = tmp_path / "not-a-backup.sqlite3"
    bad.write_text("hello")
    code, _, err = _run(capsys, "restore", "-c", str(config), str(bad))
    assert code == 1 and "not a gateway backup" in err
