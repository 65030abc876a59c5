"""An idle gateway blocks on events and does not write to the SD card: heartbeats and storage
sweeps go on, the store's files stay untouched."""

from __future__ import annotations

import time

from gateway.config import parse_config
from gateway.daemon import Daemon

CONFIG = """
data_dir: {d}
modems:
  - {{id: a, imei: "351234560000010"}}
short_codes:
  - {{code: "55123", name: Support, modems: [a]}}
modem_manager: {{heartbeat_seconds: 0.2, sweep_seconds: 0.3, reconnect_max_seconds: 1}}
retention: {{nightly_backups: 0}}
simulator:
  modems:
    - {{imei: "351234560000010", number: "+15550100001", family: simcom}}
"""


def _files(d) -> dict[str, tuple[int, int]]:
    return {
        p.name: (p.stat().st_size, p.stat().st_mtime_ns)
        for p in d.iterdir()
        if p.name.startswith("gateway.sqlite3")
    }


def test_idle_gateway_writes_nothing_to_the_store(tmp_path) -> None:
    config = parse_config(CONFIG.format(d=tmp_path), base_dir=tmp_path)
    daemon = Daemon(config, web=False)
    sub = daemon.services.events.subscribe()
    daemon.start()
    try:
        deadline = time.monotonic() + 20
        while not daemon.services.dispatcher.healthy("a"):
            assert time.monotonic() < deadline, "the simulated modem never came up"
            sub.get(timeout=0.5)
        # Let the start-up writes (modem seen, first sweep) settle: wait for two heartbeats.
        beats = 0
        while beats < 2:
            event = sub.get(timeout=5)
            assert event is not None, "no heartbeat"
            beats += event.kind == "modem.health"
        before = _files(tmp_path)
        beats = 0
        while beats < 8:  # eight heartbeats and a few sweeps of an idle gateway
            event = sub.get(timeout=5)
            assert event is not None, "no heartbeat"
            beats += event.kind == "modem.health"
        assert _files(tmp_path) == before
    finally:
        sub.close()
        daemon.stop()
