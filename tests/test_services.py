"""The wiring (gateway/services.py): the services are built once, complete and connected; the
daemon holds them from construction and closes them whether or not it started; the web app
keeps them once and hands the same ones to every request."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.config import parse_config
from gateway.daemon import Daemon
from gateway.services import Services, build_services
from gateway.store import Store
from gateway.web.app import create_app
from gateway.web.context import app_state, services

CONFIG = """
data_dir: {d}
modems:
  - {{id: a, imei: "351234560000010"}}
short_codes:
  - {{code: "55123", name: Support, modems: [a]}}
retention: {{nightly_backups: 0}}
"""

SIMULATOR = """
simulator:
  modems:
    - {{imei: "351234560000010", number: "+15550100001"}}
"""


def test_services_without_modems_are_complete_and_connected(tmp_path) -> None:
    s = build_services(parse_config(CONFIG.format(d=tmp_path)), modems=False)
    try:
        assert s.manager is None and s.simulator is None and not s.demo
        # One bus and one store for every service.
        for service in (s.dispatcher, s.outbox, s.inbound, s.profiles, s.desk):
            assert service.store is s.store and service.events is s.events
        assert s.dispatcher.on_part_sent == s.inbound.part_sent
        assert s.inbound.outbox is s.outbox
        with pytest.raises(dataclasses.FrozenInstanceError):
            s.manager = None  # type: ignore[misc]
    finally:
        s.close()


def test_services_with_the_simulator_scan_only_its_ports(tmp_path) -> None:
    config = parse_config(CONFIG.format(d=tmp_path) + SIMULATOR.format(), base_dir=tmp_path)
    s = build_services(config)
    try:
        assert s.manager is not None and s.simulator is not None
        assert s.manager.scan == [str(s.simulator.network.by_id_dir / "*")]
        assert len(s.simulator.network.modems) == 1
        # The manager's checks of a failing modem and its health display are the dispatcher's.
        assert s.dispatcher.probe == s.manager.check_sending
        assert s.dispatcher.on_health == s.manager.set_sending
    finally:
        s.close()


def test_a_failed_build_closes_the_store_it_opened(tmp_path, monkeypatch) -> None:
    closed: list[bool] = []
    real_close = Store.close

    def close(self) -> None:
        closed.append(True)
        real_close(self)

    monkeypatch.setattr("gateway.store.Store.close", close)

    def broken(*args, **kwargs):
        raise RuntimeError("the profile service cannot be built")

    monkeypatch.setattr("gateway.services.ProfileService", broken)
    with pytest.raises(RuntimeError, match="profile service"):
        build_services(parse_config(CONFIG.format(d=tmp_path)), modems=False)
    assert closed == [True]


def test_a_daemon_that_never_started_closes_its_services(tmp_path, monkeypatch) -> None:
    daemon = Daemon(parse_config(CONFIG.format(d=tmp_path), base_dir=tmp_path), web=False)
    assert isinstance(daemon.services, Services) and daemon.services.manager is not None
    closed: list[str] = []
    monkeypatch.setattr(daemon.services.store, "close", lambda: closed.append("store"))
    daemon.stop()
    daemon.stop()  # a second stop does nothing
    assert closed == ["store"]


def test_a_daemon_whose_start_fails_stops_what_it_started(tmp_path, monkeypatch) -> None:
    daemon = Daemon(parse_config(CONFIG.format(d=tmp_path), base_dir=tmp_path), web=False)
    (tmp_path / "gateway.sock").mkdir()  # the control socket cannot be made
    closed: list[str] = []
    real_close = daemon.services.store.close

    def close() -> None:
        closed.append("store")
        real_close()

    monkeypatch.setattr(daemon.services.store, "close", close)
    monkeypatch.setattr("signal.signal", lambda *args: None)  # not the test runner's handlers
    with pytest.raises(OSError):
        daemon.run_forever()
    assert not daemon.services.dispatcher.alive
    assert closed == ["store"]


def test_the_app_keeps_the_services_once(tmp_path) -> None:
    s = build_services(parse_config(CONFIG.format(d=tmp_path)), modems=False)
    try:
        app = create_app(s, TESTING=True)
        assert app_state(app).services is s
        with app.test_request_context("/login"):
            assert services() is s
    finally:
        s.close()
