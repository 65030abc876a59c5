"""The daemon's resident memory during a burst of logins, measured on ``gateway run`` itself (a
process of its own, with its start-up settings of the C allocator, its real server and the real
argon2 cost), with 8 simulated modems served by ``gateway sim`` in another process.

Bounds on growth, not on the absolute size (which depends on the Python build and the C
library): one password check of 7 MiB at a time plus the server's work during the burst, and
back near the idle size after it. Two checks of 19 MiB at once (before) grew it ~40 MiB."""

from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import argon2
import pytest
from integration.harness import SimProcess, free_port, poll, spawn_gateway, write_sim_config

from gateway.store import Store

from .conftest import HttpClient

pytestmark = pytest.mark.slow

SOURCES = [f"127.0.0.{i}" for i in range(2, 10)]  # 8 addresses, 5 logins each


@dataclass
class Port:
    port: int


def status_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def test_a_burst_of_logins_grows_the_daemon_by_one_check_and_gives_it_back(tmp_path, monkeypatch):
    sim = SimProcess(tmp_path / "sim", "--modems", "8")
    proc = None
    try:
        port = free_port()
        config = write_sim_config(tmp_path / "gateway.yaml", tmp_path / "data", port, sim.modems)
        # The real hasher (the suite's conftest makes a cheap one for speed).
        monkeypatch.setattr("gateway.store.users.PasswordHasher", argon2.PasswordHasher)
        store = Store.open(tmp_path / "data")
        store.users.add("admin", "right-password-1", role="admin")
        store.close()
        log = tmp_path / "gateway.log"
        proc = spawn_gateway(config, log)
        server = Port(port)

        def answers() -> bool:
            try:
                return HttpClient(server).request("GET", "/login")[0] == 200
            except OSError:
                return False

        def dead() -> str:
            return "" if proc.poll() is None else log.read_text()[-3000:]

        poll(answers, 30, "the web app", dead)
        # Every modem up and its start-up done, so that the burst is all that moves.
        poll(lambda: log.read_text().count(" up on ") >= 8, 30, "8 modems up", dead)
        assert HttpClient(server, "127.0.0.20").login("admin", "right-password-1") == 302
        idle = status_kib(proc.pid)["VmRSS"]

        sessions = []
        for i in range(40):
            client = HttpClient(server, SOURCES[i % len(SOURCES)], timeout=60)
            sessions.append((client, client.token()))
        barrier = threading.Barrier(len(sessions))
        statuses: list[int] = []

        def guess(client: HttpClient, token: str, n: int) -> None:
            form = urllib.parse.urlencode(
                {"username": f"user{n}", "password": "wrong-guess", "csrf_token": token}
            ).encode()
            barrier.wait(10)
            status, _, _ = client.request(
                "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
            )
            statuses.append(status)

        threads = [
            threading.Thread(target=guess, args=(c, t, n)) for n, (c, t) in enumerate(sessions)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        after = status_kib(proc.pid)
        print(
            f"\ngateway run, 8 modems: RSS idle {idle / 1024:.1f} MiB, peak (VmHWM) "
            f"{after['VmHWM'] / 1024:.1f} MiB, after the burst {after['VmRSS'] / 1024:.1f} MiB; "
            f"statuses {sorted(statuses)}"
        )
        assert len(statuses) == 40 and set(statuses) <= {401, 429}, statuses
        assert 401 in statuses  # some were checked, not all refused
        # One 7 MiB check at a time and the server's work; VmHWM also holds the start-up's
        # peak, which is below the idle size plus this.
        assert after["VmHWM"] - idle < 14 * 1024, "a login burst grew the daemon too much"
        assert after["VmRSS"] - idle < 6 * 1024, "the burst's memory was not given back"
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(20)
        sim.stop()
