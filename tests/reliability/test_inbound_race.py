"""Inbound race: a flood of texts into one modem while its storage is swept as often as the
modem allows, with command latency, so a notice (+CMTI) and a sweep touch the same SIM slots at
the same moment again and again. Every text must end in the store exactly once, and the SIM
must end empty: a delete of a slot that the network refilled after it was read loses a text
(in neither the store nor the SIM), which is what this test exists to catch.

Sized so that the old defect (a sweep and the +CMTI handler each reading, committing and
deleting by index, uncoordinated) lost texts in almost every run; ``--long`` sends ten times
as many.
"""

from __future__ import annotations

import threading

import pytest
from integration.harness import NUM_A, Gateway, make_config, wait_until

from gateway.config import load_config

pytestmark = pytest.mark.slow


def _bodies(gw: Gateway) -> list[str]:
    rows = gw.store.db.q("SELECT body FROM messages WHERE direction = 'in' ORDER BY id")
    return [r["body"] for r in rows]


def test_flood_with_constant_sweeps_loses_nothing(tmp_path, long_run):
    per_handset = 600 if long_run else 60
    handsets = [f"+1555777{i:04d}" for i in range(4)]
    path = make_config(tmp_path, sweep=0.001, heartbeat=30, command_timeout=5)
    gw = Gateway(load_config(path))
    try:
        gw.wait_up("a")
        net = gw.net
        modem = net.modem(NUM_A)
        modem.command_latency = 0.02
        for number in handsets:
            net.add_handset(number)
        go = threading.Event()
        sent: list[str] = []
        lock = threading.Lock()

        def flood(number: str) -> None:
            go.wait(5)
            for i in range(per_handset):
                text = f"race {number[-4:]} {i:04d}"
                net.handset(number).send(to=NUM_A, text=text)
                with lock:
                    sent.append(text)

        threads = [threading.Thread(target=flood, args=(n,)) for n in handsets]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(60)
        total = per_handset * len(handsets)
        assert len(sent) == total

        def all_stored() -> bool:
            return len(_bodies(gw)) >= total

        try:
            wait_until(gw.sub, all_stored, timeout=600 if long_run else 60, what="every text")
            wait_until(gw.sub, lambda: not modem.stored(), timeout=30, what="an empty SIM")
        except AssertionError:
            pass  # the assertions below say what is missing
        stored = _bodies(gw)
        lost = sorted(set(sent) - set(stored))
        on_sim = len(modem.stored())
        assert not lost, (
            f"{len(lost)} of {total} texts not stored ({on_sim} left on the SIM): {lost[:5]}"
        )
        assert sorted(stored) == sorted(sent), "a text was stored twice"
    finally:
        gw.stop()
