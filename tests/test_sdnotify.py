"""systemd notifications: READY=1 once the daemon is up, WATCHDOG=1 while it routes, STOPPING=1."""

from __future__ import annotations

import socket

import pytest

from gateway.config import parse_config
from gateway.daemon import Daemon
from gateway.sdnotify import notify, watchdog_interval

CONFIG = """
data_dir: {d}
modems:
  - {{id: a, imei: "351234560000010"}}
short_codes:
  - {{code: "55123", name: Support, modems: [a]}}
retention: {{nightly_backups: 0}}
simulator:
  modems:
    - {{imei: "351234560000010", number: "+15550100001"}}
"""


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def _next(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_no_systemd_means_no_notification(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_sec(monkeypatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval() is None


def test_daemon_says_ready_feeds_the_watchdog_and_says_stopping(
    tmp_path, monkeypatch, notify_socket
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    daemon = Daemon(parse_config(CONFIG.format(d=tmp_path), base_dir=tmp_path), web=False)
    daemon.start()
    try:
        assert _next(notify_socket).startswith("READY=1")
        assert _next(notify_socket) == "WATCHDOG=1"
        assert _next(notify_socket) == "WATCHDOG=1"
    finally:
        daemon.stop()
    # Watchdog pings may still be queued ahead of it; STOPPING=1 must follow.
    while (message := _next(notify_socket)) == "WATCHDOG=1":
        pass
    assert message == "STOPPING=1"
