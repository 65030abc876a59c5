"""The store's check at start runs beside the rest of the start-up (modems negotiate, the web app
loads) instead of before it, and is not weakened by that: until the check has passed nothing is
written to the store, no modem is announced up, and no SIM's storage is read or deleted; a store
that fails it is refused with nothing written and nothing deleted from a SIM.

The daemon is the real one over the simulator (tests/integration/harness.py); the check is held
at its start by a test double of ``Database.check`` that waits on an event, so that "while the
check runs" is a state the test controls rather than a race it hopes to win.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from integration.harness import ALICE, NUM_A, make_config

from gateway.config import load_config
from gateway.daemon import Daemon
from gateway.store import DB_NAME, Store, StoreDamaged, StoreError
from gateway.store.db import Database

from .test_store_faults import damage_page, messages_in, seed

STORAGE_COMMANDS = ("AT+CMGL", "AT+CMGR", "AT+CMGD")


def poll(check: Callable[[], object], what: str, timeout: float = 10.0) -> object:
    """Re-evaluate ``check`` until it is truthy (the simulator's state has no event to wait
    on); AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.01)  # polling the condition above, bounded by the deadline
    return value


@pytest.fixture
def held_check(monkeypatch) -> Iterator[threading.Event]:
    """Make the background check (the one given a connection of its own) wait until the
    returned event is set; the check itself then runs as usual."""
    release = threading.Event()
    started = threading.Event()
    real = Database.check

    def check(self: Database, conn=None):
        if conn is not None:
            started.set()
            assert release.wait(30), "the test never released the store's check"
        return real(self, conn)

    monkeypatch.setattr(Database, "check", check)
    release.started = started  # type: ignore[attr-defined]
    yield release
    release.set()


def written(data: Path) -> tuple[str, int]:
    """The store file's digest and the size of its WAL (where a commit lands first)."""
    wal = data / f"{DB_NAME}-wal"
    return (
        hashlib.sha256((data / DB_NAME).read_bytes()).hexdigest(),
        wal.stat().st_size if wal.exists() else 0,
    )


def storage_commands(daemon: Daemon) -> list[str]:
    """The storage commands (list, read, delete) the simulated modems received."""
    sim = daemon.services.simulator
    assert sim is not None
    return [
        line
        for m in sim.network.modems
        for line in list(m.history)
        if line.upper().startswith(STORAGE_COMMANDS)
    ]


def sms_waiting_on_the_sim(daemon: Daemon, text: str) -> None:
    """A handset's SMS stored on modem a's SIM before the gateway looked at it."""
    sim = daemon.services.simulator
    assert sim is not None
    sim.network.send_from_handset(ALICE, NUM_A, text)
    modem = sim.network.modem(NUM_A)
    poll(lambda: modem.stored(), "the SMS in modem a's storage")


def test_modems_negotiate_while_the_store_is_checked_but_the_sim_waits_for_its_verdict(
    tmp_path, held_check
):
    config = make_config(tmp_path)
    data = tmp_path / "data"
    seed(data, 1)  # an existing store, migrated: its check runs in the background
    daemon = Daemon(load_config(config), web=False)
    starting = threading.Thread(target=daemon.start, name="test-start")
    try:
        sms_waiting_on_the_sim(daemon, "waits for the check")
        sim_modem = daemon.services.simulator.network.modem(NUM_A)
        before = written(data)
        starting.start()
        assert held_check.started.wait(10)
        # The modems are opened and negotiated with meanwhile (the new-message indications
        # are set up, the last step of their start-up)...
        poll(
            lambda: all(
                any(line.upper().startswith("AT+CNMI=") for line in list(m.history))
                for m in daemon.services.simulator.network.modems
            ),
            "every modem's start-up negotiation",
        )
        # ... but no modem is up, nothing was read from or deleted on a SIM, nothing written.
        manager = daemon.services.manager
        assert [s.state for s in manager.statuses()] == ["starting"] * 3
        assert storage_commands(daemon) == []
        assert len(sim_modem.stored()) == 1
        assert written(data) == before
        assert starting.is_alive()  # start() waits for the verdict

        held_check.set()
        starting.join(20)
        assert not starting.is_alive()
        # Passed: the SMS is committed, then deleted from the SIM.
        poll(lambda: not sim_modem.stored(), "the SMS deleted from the SIM after its commit")
        assert "waits for the check" in messages_in(data / DB_NAME)
    finally:
        held_check.set()
        starting.join(20)
        daemon.stop()


def test_a_store_found_damaged_by_the_background_check_is_refused_with_nothing_written_or_deleted(
    tmp_path, held_check
):
    config = make_config(tmp_path)
    data = tmp_path / "data"
    seed(data, 3)
    damage_page(data / DB_NAME)
    daemon = Daemon(load_config(config), web=True)
    try:
        sms_waiting_on_the_sim(daemon, "must stay on the SIM")
        sim_modem = daemon.services.simulator.network.modem(NUM_A)
        before = written(data)
        failure: list[StoreError] = []

        def start() -> None:
            try:
                daemon.start()
            except StoreError as exc:  # the verdict, handed to the test's thread
                failure.append(exc)

        starting = threading.Thread(target=start, name="test-start")
        starting.start()
        assert held_check.started.wait(10)
        # A send accepted now would be written into the damaged store: it waits, then fails.
        sent: list[StoreError] = []

        def send() -> None:
            try:
                daemon.services.outbox.submit("into a damaged store?", to=ALICE)
            except StoreError as exc:  # the refusal, handed to the test's thread
                sent.append(exc)

        sender = threading.Thread(target=send, name="test-send")
        sender.start()
        held_check.set()
        starting.join(20)
        sender.join(20)
        assert len(failure) == 1 and isinstance(failure[0], StoreDamaged), failure
        assert "is damaged" in str(failure[0])
        assert len(sent) == 1 and isinstance(sent[0], StoreDamaged), sent
    finally:
        held_check.set()
        daemon.stop()
    assert storage_commands(daemon) == []
    assert len(sim_modem.stored()) == 1
    assert written(data) == before


def test_a_store_that_needs_a_migration_is_checked_before_it_is_migrated(tmp_path, monkeypatch):
    """The background check is only for a store of the current schema: a migration writes, so
    a store due for one is checked first, as before."""
    data = tmp_path / "data"
    Store.open(data).close()
    calls: list[object] = []
    real = Database.check

    def check(self: Database, conn=None):
        calls.append(conn)
        return real(self, conn)

    monkeypatch.setattr(Database, "check", check)
    monkeypatch.setattr("gateway.store.needs_migration", lambda db: True)
    store = Store.open(data, check_in_background=True)
    try:
        assert calls == [None]  # on the caller's thread and connection, before Store.open ended
        assert store.check is None
    finally:
        store.close()
