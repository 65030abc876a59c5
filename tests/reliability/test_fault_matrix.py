"""The fault matrix: every fault the simulator can inject, on one modem of a two-modem pool, at
each moment of a send. For each cell the real daemon runs over the simulator, and:

- the fault begins (an armed fault fires at its moment of the first send of modem a);
- a fault that stops modem a from sending is noticed: a leaves routing (down, being reset,
  failing), and the messages are rerouted: every one of them is sent while the fault lasts,
  by modem b where a cannot (nothing ``failed`` that b could send);
- the fault clears, modem a comes back into routing and sends a message itself;
- nothing is lost: every handset got its message whole, more than once only when the store
  marks it a possible duplicate; a text sent to modem a during the fault is stored once.

Cells run in parallel, each with its own daemon, simulator and data directory, so the matrix
takes seconds rather than minutes; ``--long`` sends more messages per cell.
"""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from integration.harness import (
    ALICE,
    IMEI_A,
    NUM_A,
    NUM_B,
    SUPPORT,
    Gateway,
    make_config,
    wait_until,
)

from gateway.config import load_config
from gateway.modem.sim import FAULT_KINDS
from gateway.modem.sim.modem import FAULT_MOMENTS

# Each fault with the parameters that make it bite: slow answers later than the send timeout
# (2 s below), so the gateway gives up on parts the network did take.
FAULTS: dict[str, dict[str, Any]] = {
    "hang": {},
    "unplug": {},
    "garbage": {"probability": 0.5, "max_bytes": 6},
    "cms_error": {"code": 500},
    "no_network": {},
    "pin": {},
    "storage_full": {},
    "slow": {"send_latency": 3.0},
    # Status reports at the instant of delivery: a +CDS/+CDSI lands inside the next send.
    "instant_reports": {},
}
# Faults after which modem a cannot send: it must leave routing and b send its messages.
# (Garbage on the line, a full storage and instant status reports do not stop sending.)
BLOCKING = {"hang", "unplug", "cms_error", "no_network", "pin", "slow"}
# "idle": the fault begins before any message is queued; the rest arm it for that moment of
# modem a's first send (see SimModem.set_fault).
MOMENTS = ("idle", "send", "prompt", "submitted", "between_parts")

CELLS = [(fault, moment) for fault in FAULTS for moment in MOMENTS]

# Short timings: heartbeats every 0.5 s, a command timeout of 1 s (2 s for a part's answer), a
# sticky grace of 0.6 s, a failing modem checked after 0.3 s (at most 1 s apart).
TIMINGS = {
    "heartbeat": 0.5,
    "command_timeout": 1,
    "send_timeout": 2,
    "grace": 0.01,
    "probe": 0.3,
    "probe_max": 1.0,
    "latency": 0.02,
}
LONG_TEXT = "".join(f"Part of a long notice, sentence {i}. " for i in range(9))  # 3 parts


def test_the_matrix_covers_every_fault_and_moment() -> None:
    assert set(FAULTS) == set(FAULT_KINDS), "a fault the simulator knows is missing here"
    assert set(MOMENTS) - {"idle"} == set(FAULT_MOMENTS) - {"now"}


@dataclass
class CellResult:
    """What one cell saw: the problems found (none when it passed) and its figures."""

    problems: list[str] = field(default_factory=list)
    messages: int = 0  # outbound messages checked on the handsets, the recovery one included
    inbound: int = 0
    duplicates: int = 0
    by_b: int = 0
    seconds: float = 0.0


def _texts(count: int, fault: str, moment: str) -> list[str]:
    """The first one long (so there is a "between parts"), then short ones and another long."""
    texts = [f"{LONG_TEXT}[{fault} {moment}]"]
    texts += [f"Notice {i} [{fault} {moment}]" for i in range(1, count)]
    if count > 3:
        texts[3] = f"{LONG_TEXT}second [{fault} {moment}]"
    return texts


def _left_routing(events: list) -> bool:
    """Whether modem a was seen out of routing: down, being reset, failing or probing, or up
    but known not to be registered (the daemon routes nothing to it then)."""
    for ev in events:
        if ev.data.get("id") != "a":
            continue
        if ev.kind == "modem.down":
            return True
        if ev.kind == "modem.health" and (
            ev.data.get("state") != "up"
            or (ev.data.get("registration") is not None and ev.data.get("registered") is False)
        ):
            return True
    return False


def _drain(sub) -> list:
    out = []
    while True:
        ev = sub.get(timeout=0)
        if ev is None:
            return out
        out.append(ev)


def run_cell(directory: Path, fault: str, moment: str, count: int) -> CellResult:
    """One cell of the matrix; AssertionErrors become the cell's problems."""
    result = CellResult()
    started = time.monotonic()
    directory.mkdir(parents=True)
    gw = Gateway(load_config(make_config(directory, **TIMINGS)))
    seen = gw.services.events.subscribe(maxsize=100000)
    try:
        _check_cell(gw, seen, fault, moment, count, result)
    except AssertionError as exc:
        result.problems.append(str(exc))
    finally:
        seen.close()
        gw.stop()
        result.seconds = time.monotonic() - started
    return result


def _check_cell(gw: Gateway, seen, fault: str, moment: str, count: int, r: CellResult) -> None:
    gw.wait_up("a", "b", timeout=20)
    manager, dispatcher, store = gw.services.manager, gw.services.dispatcher, gw.store
    modem_a = gw.net.modem(IMEI_A)
    _drain(seen)
    modem_a.set_fault(fault, when="now" if moment == "idle" else moment, **FAULTS[fault])

    texts = _texts(count, fault, moment)
    recipients = [f"+1555700{i:04d}" for i in range(count)]
    ids = [
        gw.services.outbox.submit(text, to=to, short_code=SUPPORT).message_id
        for text, to in zip(texts, recipients, strict=True)
    ]
    assert modem_a.wait_fired(timeout=10), f"the {fault} fault never fired at {moment}"
    inbound_text = f"Inbound during {fault} at {moment}"
    gw.net.handset(ALICE).send(to=NUM_A, text=inbound_text)

    # Everything goes out while the fault lasts; nothing fails that modem b could send.
    for mid in ids:
        gw.wait_status(mid, {"sent", "delivered"}, timeout=25)
    if fault in BLOCKING:
        # Noticed: the manager sees a hang, an unplug, a lost network or SIM by itself; a modem
        # that only fails its sends leaves routing after a few of them, so keep sending.
        events = _drain(seen)
        for extra in range(8):
            if _left_routing(events):
                break
            to = f"+1555701{extra:04d}"
            text = f"Extra {extra} [{fault} {moment}]"
            mid = gw.services.outbox.submit(text, to=to, short_code=SUPPORT).message_id
            ids.append(mid)
            texts.append(text)
            recipients.append(to)
            gw.wait_status(mid, {"sent", "delivered"}, timeout=25)
            events += _drain(seen)
        assert _left_routing(events), f"modem a never left routing during {fault} at {moment}"
    rows = [gw.message(mid) for mid in ids]
    r.by_b = sum(1 for row in rows if row["modem_id"] == "b")
    if fault in BLOCKING:
        assert r.by_b > 0, "no message was rerouted to modem b"

    # The fault clears: modem a comes back into routing and sends again itself.
    modem_a.clear_fault()
    wait_until(
        gw.sub,
        lambda: manager.status("a").state == "up" and dispatcher.routable("a"),
        25,
        f"modem a back in routing after {fault} at {moment}",
    )
    recovery_text = f"After {fault} at {moment}"
    recovery = gw.services.outbox.submit(recovery_text, to="+15557009999", short_code=SUPPORT)
    gw.wait_status(recovery.message_id, {"sent", "delivered"}, timeout=15)
    assert gw.message(recovery.message_id)["modem_id"] == "a", "modem a did not send again"
    wait_until(
        gw.sub,
        lambda: manager.status("a").to_json()["state"] == "up",
        10,
        "modem a shown up again",
    )

    # Nothing lost: each handset has its message whole; twice only if marked.
    for mid, text, to in zip(
        [*ids, recovery.message_id],
        [*texts, recovery_text],
        [*recipients, "+15557009999"],
        strict=True,
    ):
        wait_until(
            gw.sub,
            lambda t=text, n=to: _inbox(gw, n).count(t) >= 1,
            10,
            f"{to} to receive its message whole",
        )
        got = _inbox(gw, to).count(text)
        row = gw.message(mid)
        if got > 1:
            assert row["maybe_duplicate"] == 1, f"message {mid} arrived {got} times, unmarked"
            r.duplicates += 1
        assert row["status"] in ("sent", "delivered"), row["status"]
    r.messages = len(ids) + 1
    failed = store.db.value(
        "SELECT COUNT(*) FROM messages WHERE direction='out' AND status IN ('failed', 'expired')"
    )
    assert failed == 0, f"{failed} message(s) failed or expired"

    # The text sent to modem a during the fault is stored, once.
    def stored() -> int:
        return int(
            store.db.value(
                "SELECT COUNT(*) FROM messages WHERE direction='in' AND body = ?", (inbound_text,)
            )
        )

    wait_until(gw.sub, lambda: stored() >= 1, 20, "the inbound text to be stored")
    assert stored() == 1, f"the inbound text was stored {stored()} times"
    r.inbound = 1
    # Every complete text came from the pool's numbers.
    for to in [*recipients, "+15557009999"]:
        assert {m.sender for m in gw.net.handset(to).inbox} <= {NUM_A, NUM_B}, to


def _inbox(gw: Gateway, number: str) -> list[str]:
    """The complete messages a number received (the network makes its handset on the first)."""
    try:
        return [m.text for m in gw.net.handset(number).inbox]
    except LookupError:
        return []


@pytest.fixture(scope="module")
def matrix(request, tmp_path_factory, long_run) -> dict[tuple[str, str], CellResult]:
    """Runs the selected cells in parallel once; each test of a cell reads its result."""
    wanted = sorted(
        {
            (item.callspec.params["fault"], item.callspec.params["moment"])
            for item in request.session.items
            if getattr(item, "originalname", None) == "test_fault_cell"
        }
    )
    count = 20 if long_run else 4
    workers = 4 if long_run else 8
    base = tmp_path_factory.mktemp("matrix")
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            cell: pool.submit(run_cell, base / f"{cell[0]}-{cell[1]}", *cell, count)
            for cell in wanted
        }
        results = {cell: f.result() for cell, f in futures.items()}
    total = sum(r.messages for r in results.values())
    print(
        f"\nfault matrix: {len(results)} cells, {total} outbound messages and "
        f"{sum(r.inbound for r in results.values())} inbound checked, "
        f"{sum(r.by_b for r in results.values())} sent by the other modem, "
        f"{sum(r.duplicates for r in results.values())} marked duplicates, "
        f"{sum(1 for r in results.values() if r.problems)} cells with problems; "
        f"slowest cell {max((r.seconds for r in results.values()), default=0):.1f} s"
    )
    return results


@pytest.mark.parametrize(("fault", "moment"), CELLS, ids=[f"{f}-{m}" for f, m in CELLS])
def test_fault_cell(matrix, fault: str, moment: str) -> None:
    result = matrix[(fault, moment)]
    assert not result.problems, "\n".join(result.problems)
