"""The modem manager over the simulator on real ptys: finding modems by IMEI/ICCID among several
by-id links, commit-then-delete, heartbeats, resets after a hang, unplug and replug, hot-plug,
SIM PINs, and a dead modem that must not hold up another one.

Every wait is on a queue or an event with a timeout: the manager's callbacks feed queues, and
statuses are re-checked each time ``on_status`` fires.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.modem import pdu as pdumod
from gateway.modem.device import Modem, ModemSettings
from gateway.modem.manager import ModemManager, ModemSpec, ModemStatus, probe_port
from gateway.sim import Network, SimModem
from gateway.sim.identity import make_imei

SETTINGS = ModemSettings(
    command_timeout=1.0,
    retry_delay=0.02,
    sms_ready_timeout=5.0,
    startup_timeout=5.0,
    reset_timeout=10.0,
    send_timeout=5.0,
)
PEER = "+15551230001"
WAIT = 10.0


class Recorder:
    """The manager's callbacks, each feeding a queue the test waits on."""

    def __init__(self) -> None:
        self.pdus: queue.Queue[tuple[str, str, str]] = queue.Queue()
        self._ups: dict[str, queue.Queue[Modem]] = {}
        self._lock = threading.Lock()
        self.downs: queue.Queue[tuple[str, str]] = queue.Queue()
        self.statuses: queue.Queue[ModemStatus] = queue.Queue()
        # Hooks a test may set: runs inside on_pdu, before the manager deletes anything.
        self.before_commit: Callable[[str, str, str], None] | None = None

    def on_pdu(self, modem_id: str, pdu: str, source: str) -> None:
        if self.before_commit is not None:
            self.before_commit(modem_id, pdu, source)
        self.pdus.put((modem_id, pdu, source))

    def ups(self, modem_id: str) -> queue.Queue[Modem]:
        """The Modems of each on_up of ``modem_id``, in order."""
        with self._lock:
            return self._ups.setdefault(modem_id, queue.Queue())

    def on_up(self, modem_id: str, modem: Modem) -> None:
        self.ups(modem_id).put(modem)

    def on_down(self, modem_id: str, reason: str) -> None:
        self.downs.put((modem_id, reason))

    def on_status(self, status: ModemStatus) -> None:
        self.statuses.put(status)


def next_of(q: queue.Queue, timeout: float = WAIT, what: str = "an event"):
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no {what} within {timeout} s") from None


def up_of(rec: Recorder, modem_id: str, timeout: float = WAIT) -> Modem:
    """The Modem of the next on_up for ``modem_id``."""
    return next_of(rec.ups(modem_id), timeout, f"on_up of {modem_id}")


def wait_status(
    mgr: ModemManager,
    rec: Recorder,
    pred: Callable[[ModemStatus], bool],
    modem_id: str | None = None,
    timeout: float = WAIT,
) -> ModemStatus:
    """Wait until a status (of ``modem_id``, or any modem listed) satisfies ``pred``; re-checked
    every time on_status fires."""
    deadline = time.monotonic() + timeout
    while True:
        current = [s for s in mgr.statuses() if modem_id is None or s.modem_id == modem_id]
        for s in current:
            if pred(s):
                return s
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no such status within {timeout} s; now: {current}")
        try:
            rec.statuses.get(timeout=left)
        except queue.Empty:
            continue


def settle(sim: SimModem) -> None:
    """Return once the simulated modem has handled everything posted to it before (deliveries
    from handsets): a control call runs on the modem thread after them. set_signal to the same
    value says nothing on a generic modem."""
    sim.set_signal(sim.signal)


def cpin_entries(sim: SimModem) -> list[str]:
    """The PIN entries (``AT+CPIN=...``) the simulated modem received."""
    return [line for line in sim.history if line.upper().startswith("AT+CPIN=")]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    with Network(tmp_path, seed=11, reorder_probability=0.0) as network:
        network.add_handset(PEER)
        yield network


@pytest.fixture
def manager(net: Network) -> Iterator[Callable[..., tuple[ModemManager, Recorder]]]:
    """Start a manager on the simulator's by-id folder; stopped at the end of the test."""
    started: list[ModemManager] = []

    def _start(specs: list[ModemSpec], **kwargs) -> tuple[ModemManager, Recorder]:
        rec = Recorder()
        options = dict(
            heartbeat_seconds=60.0,
            sweep_seconds=300.0,
            reconnect_max_seconds=1.0,
            probe_timeout=0.3,
        )
        options.update(kwargs)
        mgr = ModemManager(
            specs,
            scan=[str(net.by_id_dir / "*")],
            on_pdu=rec.on_pdu,
            on_up=rec.on_up,
            on_down=rec.on_down,
            on_status=rec.on_status,
            **options,
        )
        started.append(mgr)
        mgr.start()
        return mgr, rec

    yield _start
    for mgr in started:
        mgr.stop()


@pytest.fixture
def silent_port(net: Network) -> Iterator[str]:
    """A by-id link to a pty that never answers (a modem's diagnostics or GPS port)."""
    master, slave = os.openpty()
    tty.setraw(master)
    link = net.by_id_dir / "usb-Vendor_Modem_00000000-if02-port0"
    os.symlink(os.ttyname(slave), link)
    yield str(link)
    link.unlink(missing_ok=True)
    os.close(master)
    os.close(slave)


def spec(modem_id: str, **kwargs) -> ModemSpec:
    kwargs.setdefault("settings", SETTINGS)
    return ModemSpec(modem_id, **kwargs)


# -- finding and binding ---------------------------------------------------------------------


def test_silent_port_is_not_an_at_port(silent_port):
    assert probe_port(silent_port, timeout=0.3) is None


def test_found_by_imei_among_links(net, manager, silent_port):
    sims = [net.add_modem(family, boot_time=0.05) for family in ("huawei", "simcom", "quectel")]
    mgr, rec = manager([spec("b", imei=sims[1].imei), spec("c", imei=sims[2].imei)])
    found = {up_of(rec, "b").port, up_of(rec, "c").port}
    assert found == {sims[1].port, sims[2].port}
    assert mgr.status("b").identity.imei == sims[1].imei
    assert mgr.status("c").identity.imei == sims[2].imei
    assert mgr.status("b").port == sims[1].port

    # The first modem is listed as found but not configured; the silent port is not listed.
    extra = wait_status(mgr, rec, lambda s: s.state == "unconfigured")
    assert extra.identity.imei == sims[0].imei
    assert extra.port == sims[0].port
    ports = {s.port for s in mgr.statuses()}
    assert silent_port not in ports


def test_bound_by_iccid(net, manager):
    net.add_modem("generic")
    sim = net.add_modem("ublox")
    mgr, rec = manager([spec("x", iccid=sim.iccid)])
    modem = up_of(rec, "x")
    assert modem.port == sim.port
    assert mgr.status("x").identity.iccid == sim.iccid


def test_wrong_imei_on_configured_port_is_refused(net, manager):
    sim = net.add_modem("generic")
    wrong = make_imei(random.Random(99))
    assert wrong != sim.imei
    mgr, rec = manager([spec("x", imei=wrong, port=sim.port)])
    status = wait_status(mgr, rec, lambda s: s.last_error is not None, "x")
    assert status.state != "up"
    assert sim.imei in status.last_error
    assert wrong in status.last_error
    assert sim.port in status.last_error
    assert mgr.modem("x") is None


def hung_then_back(net: Network) -> SimModem:
    """A modem that does not answer its first probes (booting, busy or hung), then does."""
    sim = net.add_modem("generic")
    sim.set_fault("hang")
    return sim


def wait_probed(mgr: ModemManager, rec: Recorder) -> None:
    """Return once the manager has had time to probe the hung modem's port (a hung modem drops
    its input, so nothing on its side tells) and gave up: each probe takes two timeouts of
    0.3 s; the supervisor tried several times by now."""
    wait_status(mgr, rec, lambda s: s.state == "searching", "x")
    time.sleep(2.0)
    assert mgr.status("x").state == "searching"


def test_a_missed_probe_is_retried_after_a_hotplug_event(net, manager):
    # Found by a soak test: a failed probe was cached for good, keyed by the device node, so a
    # modem that missed one probe was never probed again until it was replugged.
    sim = hung_then_back(net)
    mgr, rec = manager([spec("x", imei=sim.imei)], reconnect_max_seconds=0.2)
    wait_probed(mgr, rec)
    sim.clear_fault("hang")
    mgr.rescan()
    modem = up_of(rec, "x")
    assert modem.port == sim.port


def test_a_missed_probe_expires(net, manager):
    sim = hung_then_back(net)
    mgr, rec = manager(
        [spec("x", imei=sim.imei)], reconnect_max_seconds=0.2, probe_retry_seconds=0.5
    )
    wait_probed(mgr, rec)
    sim.clear_fault("hang")
    modem = up_of(rec, "x")  # no hot-plug event: the failed probe is simply tried again
    assert modem.port == sim.port


# -- messages --------------------------------------------------------------------------------


def test_startup_sweep_commits_then_deletes(net, manager):
    sim = net.add_modem("generic")
    handset = net.handset(PEER)
    handset.send(to=sim.number, text="first")
    handset.send(to=sim.number, text="second")
    settle(sim)
    assert len(sim.stored()) == 2  # stored while no one listens (no +CNMI yet)

    mgr, rec = manager([spec("x", imei=sim.imei)])
    still_there: list[bool] = []
    stored_pdus = lambda: {m["pdu"].upper() for m in sim.stored()}  # noqa: E731
    rec.before_commit = lambda _id, pdu, _src: still_there.append(pdu.upper() in stored_pdus())
    got = [next_of(rec.pdus, what="a swept PDU") for _ in range(2)]
    assert {g[0] for g in got} == {"x"}
    assert all(g[2].startswith("sweep") for g in got)
    assert still_there == [True, True]  # on_pdu saw each message still on the SIM
    wait_status(mgr, rec, lambda s: s.received == 2, "x")
    assert sim.stored() == []


def test_sweep_keeps_message_when_commit_fails(net, manager):
    sim = net.add_modem("generic")
    net.handset(PEER).send(to=sim.number, text="keep me")
    settle(sim)
    before = sim.stored()
    assert len(before) == 1

    failed = threading.Event()

    def fail(_id: str, _pdu: str, _src: str) -> None:
        failed.set()
        raise RuntimeError("the store is read-only")

    mgr, rec = manager([spec("x", imei=sim.imei)])
    rec.before_commit = fail
    # The start-up sweep ends with a storage reading: then it has dealt with every message.
    status = wait_status(mgr, rec, lambda s: s.storage is not None, "x")
    assert failed.is_set()
    assert status.storage.read.used == 1
    after = sim.stored()
    assert [(m["index"], m["pdu"]) for m in after] == [(m["index"], m["pdu"]) for m in before]
    assert mgr.status("x").received == 0


def test_new_message_is_read_committed_and_deleted(net, manager):
    sim = net.add_modem("huawei", boot_time=0.05)
    mgr, rec = manager([spec("x", imei=sim.imei)])
    up_of(rec, "x")
    net.handset(PEER).send(to=sim.number, text="hello gateway")
    modem_id, pdu, source = next_of(rec.pdus, what="the new message")
    assert modem_id == "x"
    assert source.startswith("+CMTI")
    decoded = pdumod.decode(pdu, smsc=True)
    assert decoded.text == "hello gateway"
    wait_status(mgr, rec, lambda s: s.received == 1, "x")
    assert sim.stored() == []


def test_storage_full_is_freed_by_the_sweep(net, manager):
    # A SIM800 says nothing when its storage is full; the network holds what does not fit.
    sim = net.add_modem("simcom", storage_capacity=3, boot_time=0.0)
    handset = net.handset(PEER)
    for i in range(4):
        handset.send(to=sim.number, text=f"msg {i}")
    settle(sim)
    assert len(sim.stored()) == 3

    mgr, rec = manager([spec("x", imei=sim.imei)])
    texts = set()
    for _ in range(4):
        _id, pdu, _src = next_of(rec.pdus, what="a message")
        texts.add(pdumod.decode(pdu, smsc=True).text)
    assert texts == {f"msg {i}" for i in range(4)}
    wait_status(mgr, rec, lambda s: s.received == 4, "x")
    assert sim.stored() == []


def test_memory_full_notice_triggers_a_sweep(net, manager):
    # A Huawei says ^SMMEMFULL; the manager sweeps at once instead of at the next period.
    sim = net.add_modem("huawei", storage_capacity=2, boot_time=0.0)
    mgr, rec = manager([spec("x", imei=sim.imei)])
    up_of(rec, "x")
    wait_status(mgr, rec, lambda s: s.storage is not None, "x")
    failures: queue.Queue[str] = queue.Queue()
    store_works = threading.Event()

    def commit(_id: str, pdu: str, _src: str) -> None:
        if not store_works.is_set():
            failures.put(pdu)
            raise RuntimeError("the disk is full")

    rec.before_commit = commit
    handset = net.handset(PEER)
    handset.send(to=sim.number, text="one")
    handset.send(to=sim.number, text="two")
    for _ in range(2):
        next_of(failures, what="a failed commit")
    assert len(sim.stored()) == 2  # both kept on the SIM, which is now full

    store_works.set()
    handset.send(to=sim.number, text="three")  # does not fit: ^SMMEMFULL
    got = [next_of(rec.pdus, what="a committed message") for _ in range(3)]
    assert {pdumod.decode(p, smsc=True).text for _id, p, _src in got} == {"one", "two", "three"}
    wait_status(mgr, rec, lambda s: s.received == 3, "x")
    assert sim.stored() == []


# -- health ----------------------------------------------------------------------------------


def test_heartbeat_updates_signal(net, manager):
    sim = net.add_modem("generic", signal=20)
    mgr, rec = manager([spec("x", imei=sim.imei)], heartbeat_seconds=0.1)
    wait_status(mgr, rec, lambda s: s.signal is not None and s.signal.rssi == 20, "x")
    sim.set_signal(7)
    status = wait_status(mgr, rec, lambda s: s.signal is not None and s.signal.rssi == 7, "x")
    assert status.state == "up"
    assert status.registration is not None and status.registration.registered


def test_hang_leads_to_reset_and_back_up(net, manager):
    sim = net.add_modem("generic")
    settings = ModemSettings(
        command_timeout=0.3, retry_delay=0.02, startup_timeout=5.0, reset_timeout=10.0
    )
    mgr, rec = manager([spec("x", imei=sim.imei, settings=settings)], heartbeat_seconds=0.1)
    modem = up_of(rec, "x")
    wait_status(mgr, rec, lambda s: s.storage is not None, "x")  # start-up checks are done
    sim.set_fault("hang", duration=1.5)
    resetting = wait_status(mgr, rec, lambda s: s.state == "starting", "x")
    assert "hung" in resetting.last_error
    assert sim.wait_fault_cleared("hang", timeout=WAIT)
    wait_status(mgr, rec, lambda s: s.state == "up" and s.last_error is None, "x")
    assert mgr.modem("x") is modem  # the same Modem, reset and reopened
    assert modem.signal().rssi == sim.signal


def test_reset_on_request(net, manager):
    # A Huawei stick re-enumerates on reset: it comes back on another pty behind the same link.
    sim = net.add_modem("huawei", boot_time=0.05)
    mgr, rec = manager([spec("x", imei=sim.imei)])
    modem = up_of(rec, "x")
    wait_status(mgr, rec, lambda s: s.storage is not None, "x")
    first = sim.device
    mgr.request_reset("x")
    wait_status(mgr, rec, lambda s: s.state == "starting", "x")
    wait_status(mgr, rec, lambda s: s.state == "up" and s.last_error is None, "x")
    assert sim.device != first
    assert mgr.modem("x") is modem
    net.handset(PEER).send(to=sim.number, text="after the reset")
    _id, pdu, _src = next_of(rec.pdus, what="a message after the reset")
    assert pdumod.decode(pdu, smsc=True).text == "after the reset"


def test_unplug_and_replug_on_a_new_pty(net, manager):
    sim = net.add_modem("quectel", boot_time=0.05)
    mgr, rec = manager([spec("x", imei=sim.imei)])
    up_of(rec, "x")
    first = sim.device
    sim.unplug()
    modem_id, reason = next_of(rec.downs, what="on_down")
    assert modem_id == "x" and reason
    assert mgr.modem("x") is None
    sim.replug()
    modem = up_of(rec, "x")
    assert sim.device != first
    assert os.path.realpath(modem.port) == sim.device
    status = wait_status(mgr, rec, lambda s: s.state == "up", "x")
    assert status.port == sim.port


def test_modem_plugged_in_while_running(net, manager):
    early = net.add_modem("generic")
    later_imei = make_imei(random.Random(1234))
    mgr, rec = manager([spec("early", imei=early.imei), spec("late", imei=later_imei)])
    up_of(rec, "early")
    assert mgr.status("late").state == "searching"

    stranger = net.add_modem("sierra")
    found = wait_status(mgr, rec, lambda s: s.state == "unconfigured")
    assert found.identity.imei == stranger.imei
    assert found.port == stranger.port

    late = net.add_modem("huawei", imei=later_imei, boot_time=0.05)
    modem = up_of(rec, "late")
    assert modem.port == late.port
    assert mgr.status("late").identity.imei == later_imei


def test_dead_modem_never_blocks_another(net, manager):
    dead = net.add_modem("generic")
    alive = net.add_modem("generic")
    settings = ModemSettings(
        command_timeout=0.3, retry_delay=0.02, startup_timeout=1.0, reset_timeout=1.0
    )
    mgr, rec = manager(
        [spec("dead", imei=dead.imei, settings=settings), spec("alive", imei=alive.imei)],
        heartbeat_seconds=0.1,
    )
    ups = {up_of(rec, "dead").port, up_of(rec, "alive").port}
    assert len(ups) == 2
    dead.set_fault("hang")  # never clears
    wait_status(mgr, rec, lambda s: s.state == "starting", "dead")  # resetting, in vain

    modem = mgr.modem("alive")
    started = time.monotonic()
    sent = modem.send_text(PEER, "still here", status_report=False)
    assert len(sent) == 1
    assert net.handset(PEER).wait_for_message(timeout=WAIT).text == "still here"

    # The first commit fails, so the message waits on the SIM for the sweep we ask for.
    refused: queue.Queue[str] = queue.Queue()
    once = threading.Event()

    def commit_once(modem_id: str, pdu: str, source: str) -> None:
        if not once.is_set():
            once.set()
            refused.put(source)
            raise RuntimeError("not this time")

    rec.before_commit = commit_once
    net.handset(PEER).send(to=alive.number, text="and you?")
    assert next_of(refused, what="a refused commit").startswith("+CMTI")
    mgr.request_sweep("alive")
    modem_id, _pdu, source = next_of(rec.pdus, what="the swept message")
    assert (modem_id, source.split()[0]) == ("alive", "sweep")
    assert time.monotonic() - started < 3.0  # none of it waited for the dead modem's timeouts
    assert mgr.status("dead").state != "up"


# -- SIM PIN ---------------------------------------------------------------------------------


def test_pin_entered_once(net, manager):
    sim = net.add_modem("generic", pin="4321")
    settings = ModemSettings(
        pin="4321", command_timeout=1.0, retry_delay=0.02, sms_ready_timeout=5.0
    )
    _mgr, rec = manager([spec("x", imei=sim.imei, settings=settings)])
    up_of(rec, "x")
    assert cpin_entries(sim) == ['AT+CPIN="4321"']
    assert sim.sim_state == "READY"


def test_wrong_pin_fails_and_is_never_retried(net, manager):
    sim = net.add_modem("generic", pin="4321")
    settings = ModemSettings(
        pin="0000", command_timeout=1.0, retry_delay=0.02, sms_ready_timeout=5.0
    )
    mgr, rec = manager([spec("x", imei=sim.imei, settings=settings)], reconnect_max_seconds=0.1)
    status = wait_status(mgr, rec, lambda s: s.state == "failed", "x")
    assert "PIN" in status.last_error
    # The supervisor gives up for good: nothing will enter the PIN again, even after a replug.
    for supervisor in [t for t in threading.enumerate() if t.name == "modem-x"]:
        supervisor.join(WAIT)
        assert not supervisor.is_alive()
    sim.unplug()
    sim.replug()
    mgr.rescan()
    assert cpin_entries(sim) == ['AT+CPIN="0000"']
    assert sim.pin_tries == 2
    assert mgr.status("x").state == "failed"
