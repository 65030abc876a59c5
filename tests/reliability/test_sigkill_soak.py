"""SIGKILL soak: ``gateway run`` killed at random moments and started again, over and over,
against ``gateway sim`` in a process of its own (so the network, the modems' storage and the
handsets' inboxes survive every kill), while messages are submitted through the control socket
and handsets text the gateway.

At the end, the handsets' inboxes (from the simulator's control API) are compared with the store:
every accepted message arrived whole, every message that arrived twice is marked
``maybe_duplicate``, every text from a handset is stored exactly once, nothing is left in a
non-final state, nothing is left on the SIMs, and ``PRAGMA integrity_check`` answers ok.

Seeded: the seed is printed (and in every assertion); ``GATEWAY_SOAK_SEED=N`` replays a run (the
kills land at the same moments of the plan; process scheduling still varies). ``--long`` runs the
full size: 2,000 messages, 20 kills, faults injected on one modem of the pool.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from integration.harness import SimProcess, poll, read_rows, spawn_gateway

from gateway.control import ControlError, request
from gateway.modem import pdu
from gateway.modem.device import Modem, ModemSettings
from gateway.modem.manager import probe_port
from gateway.sim import Network
from gateway.sim.terminal import Terminal

SHORT_CODE = "55123"
CONFIG = """\
data_dir: {data_dir}
default_region: US
web: {{bind: 127.0.0.1, port: 0}}
modems:
  - {{id: a, imei: "{imei_a}", label: "Pool A"}}
  - {{id: b, imei: "{imei_b}", label: "Pool B"}}
short_codes:
  - {{code: "{code}", name: Support, modems: [a, b]}}
messages:
  retry_initial_seconds: 0.2
  retry_max_seconds: 1
  reassembly_timeout_minutes: 60
routing:
  sticky_grace_minutes: 0.01
retention:
  nightly_backups: 0
modem_manager:
  scan: ["{by_id}/*"]
  heartbeat_seconds: 1
  sweep_seconds: 1
  reconnect_max_seconds: 1
  command_timeout_seconds: 2
"""

# Texts of each kind. GSM-7 extension characters take two septets each (ESC + code) and a part
# must never split a pair; the emoji are UTF-16 surrogate pairs that must never be split either.
EXTENSION = "{}[]~^|€\\"
EMOJI = "😀🎉👍🏽🇬🇧"


@dataclass(frozen=True)
class Outgoing:
    """One message the soak submits: a unique tag at its start, so an inbox entry names it."""

    key: str
    to: str
    kind: str
    text: str


@dataclass(frozen=True)
class Incoming:
    """One text a handset sends to a modem of the pool."""

    sender: str
    to: str
    kind: str
    text: str


@dataclass
class Plan:
    """What the run does, drawn from the seed before anything starts."""

    seed: int
    kills: int
    outgoing: list[Outgoing]
    incoming: list[Incoming]
    faults: bool
    accepted: dict[str, int] = field(default_factory=dict)  # key -> message id


def _outgoing(rng: random.Random, i: int, to: str) -> Outgoing:
    tag = f"#{i:04d}"
    kind = rng.choice(["single", "gsm7-ext", "ucs2-emoji"])
    if kind == "single":
        text = f"{tag} plain text {rng.randrange(10**6)}"
    elif kind == "gsm7-ext":
        chunk = f" {EXTENSION} braces, euro and pipes"
        text = tag + chunk * rng.randint(5, 12)  # 2-4 parts
    else:
        text = tag + f" {EMOJI} emoji Ω" * rng.randint(5, 16)  # 2-6 parts
    return Outgoing(f"soak-{i}", to, kind, text)


def _incoming(rng: random.Random, j: int, sender: str, to: str) -> Incoming:
    tag = f"in{j:04d}"
    kind = rng.choice(["single", "gsm7-multipart", "ucs2-multipart"])
    if kind == "single":
        text = f"{tag} a reply from a phone"
    elif kind == "gsm7-multipart":
        text = tag + " a long reply [with] {braces} and €" * rng.randint(5, 9)
    else:
        text = tag + f" {EMOJI} back at you" * rng.randint(4, 8)
    return Incoming(sender, to, kind, text)


def _make_plan(seed: int, long_run: bool, handsets: list[str], modems: list[str]) -> Plan:
    rng = random.Random(seed)
    n_out, n_in, kills = (2000, 400, 20) if long_run else (40, 16, 4)
    outgoing = [_outgoing(rng, i, handsets[i % len(handsets)]) for i in range(n_out)]
    incoming = [
        _incoming(rng, j, handsets[j % len(handsets)], rng.choice(modems)) for j in range(n_in)
    ]
    return Plan(seed, kills, outgoing, incoming, faults=long_run)


class Daemon:
    """``gateway run`` as a process the soak kills and starts again."""

    def __init__(self, config: Path, data_dir: Path, log: Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.up = threading.Event()  # set while a started daemon answers on its socket
        self.starts = 0

    def start(self) -> None:
        # Every AT command in the log: what a failure needs to be understood.
        self.proc = spawn_gateway(self.config, self.log, "-vv")
        self.starts += 1

    def dead(self) -> str:
        """Why waiting on this daemon is pointless: it exited without being killed."""
        if self.proc is None or self.proc.poll() is None:
            return ""
        return f"gateway run exited with {self.proc.returncode}:\n{self._tail()}"

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def ask(self, op: str, **fields) -> dict:
        return request(self.data_dir, op, timeout=5, **fields)

    def wait_ready(self, timeout: float) -> None:
        """Until the control socket answers and both modems are up."""

        def ready() -> bool:
            try:
                modems = self.ask("modems")["modems"]
            except ControlError:
                return False
            return len(modems) == 2 and all(m["state"] == "up" for m in modems)

        poll(ready, timeout, "the daemon and both modems up", self.dead)
        self.up.set()

    def kill(self) -> None:
        assert self.proc is not None
        self.up.clear()
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL, self._tail()

    def terminate(self) -> int:
        assert self.proc is not None
        self.up.clear()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"gateway run did not stop on SIGTERM:\n{self._tail()}") from None


def _submitter(plan: Plan, daemon: Daemon, stop: threading.Event, errors: list[str]) -> None:
    """Submit every planned message; after a kill, submit it again with the same idempotency
    key, as a careful client does: the first attempt may have been committed before the kill."""
    rng = random.Random(plan.seed + 1)
    for msg in plan.outgoing:
        while not stop.is_set():
            daemon.up.wait(1)
            try:
                reply = daemon.ask("send", to=msg.to, text=msg.text, idempotency_key=msg.key)
            except ControlError:
                continue  # killed under us: ask again once it is back
            if not reply.get("ok"):
                errors.append(f"{msg.key} refused: {reply}")
                return
            plan.accepted[msg.key] = int(reply["id"])
            break
        stop.wait(rng.uniform(0, 0.04))


def _texter(plan: Plan, sim: SimProcess, stop: threading.Event, errors: list[str]) -> None:
    """Handsets text the pool throughout the run, whether the daemon is up or not."""
    rng = random.Random(plan.seed + 2)
    try:
        for msg in plan.incoming:
            if stop.wait(rng.uniform(0, 0.25)):
                return
            sim.text_from(msg.sender, msg.to, msg.text)
    except AssertionError as exc:  # the simulator refused: the check at the end reports it
        errors.append(str(exc))


def _fault(rng: random.Random, sim: SimProcess, imei: str) -> str | None:
    """Inject one fault (or none) on the modem; the next phase clears it."""
    sim.http("DELETE", f"/modems/{imei}/fault")
    choice = rng.choice(["none", "garbage", "cms_error", "slow", "hang"])
    params: dict = {
        "none": {},
        "garbage": {"probability": 0.05},
        "cms_error": {"probability": 0.3, "code": 500},
        "slow": {"send_latency": 0.3},
        "hang": {"duration": 1.5},
    }[choice]
    if choice == "none":
        return None
    sim.http("POST", f"/modems/{imei}/fault", {"kind": choice, **params})
    return choice


def _kill_moment(rng: random.Random, daemon: Daemon, db: Path, seed: int) -> str:
    """Wait for the moment this kill was planned for; returns what it was."""
    how = rng.choice(["writing", "writing", "random", "startup"])
    if how == "startup":
        # During start-up: opening the store, identifying modems, the first sweep.
        time.sleep(rng.uniform(0.0, 1.5))  # the kill moment itself is what is random here
        return how
    daemon.wait_ready(30)
    if how == "random":
        time.sleep(rng.uniform(0.0, 2.0))
        return how

    # Between the network's answer and the commit: a part handed to a modem, not yet recorded.
    def writing() -> bool:
        return bool(read_rows(db, "SELECT 1 FROM message_parts WHERE status = 'writing'"))

    try:
        poll(writing, 10, f"a part being written (seed {seed})", daemon.dead)
    except AssertionError:
        if daemon.dead():
            raise
        return "writing (none came: nothing left to send)"
    return how


@pytest.mark.timeout(3600)
def test_sigkill_soak_loses_nothing(tmp_path, long_run):
    seed = int(os.environ.get("GATEWAY_SOAK_SEED", "8101"))
    print(f"soak seed {seed} (replay: GATEWAY_SOAK_SEED={seed})")
    started = time.monotonic()
    sim = SimProcess(
        tmp_path / "sim",
        "--modems",
        "2",
        "--handsets",
        "20" if long_run else "4",
        "--seed",
        str(seed),
        "--send-latency",
        "0.05",
        "--command-latency",
        "0.02",
    )
    daemon: Daemon | None = None
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        imeis = [m["imei"] for m in sim.modems]
        numbers = [m["number"] for m in sim.modems]
        plan = _make_plan(seed, long_run, sim.handsets, numbers)
        data_dir = tmp_path / "data"
        config = tmp_path / "gateway.yaml"
        config.write_text(
            CONFIG.format(
                data_dir=data_dir,
                imei_a=imeis[0],
                imei_b=imeis[1],
                code=SHORT_CODE,
                by_id=tmp_path / "sim" / "by-id",
            ),
            encoding="utf-8",
        )
        db = data_dir / "gateway.sqlite3"
        daemon = Daemon(config, data_dir, tmp_path / "gateway.log")
        errors: list[str] = []
        threads = [
            threading.Thread(target=_submitter, args=(plan, daemon, stop, errors), daemon=True),
            threading.Thread(target=_texter, args=(plan, sim, stop, errors), daemon=True),
        ]
        rng = random.Random(seed + 3)
        moments: list[str] = []
        faults: list[str] = []
        daemon.start()
        daemon.wait_ready(30)  # the first start creates the store; kills come after
        for t in threads:
            t.start()
        for _ in range(plan.kills):
            if plan.faults:
                fault = _fault(rng, sim, imeis[1])
                if fault:
                    faults.append(fault)
            moments.append(_kill_moment(rng, daemon, db, seed))
            daemon.kill()
            daemon.start()
        if plan.faults:
            sim.http("DELETE", f"/modems/{imeis[1]}/fault")
        daemon.wait_ready(30)
        drain = 600 if long_run else 40
        for t in threads:
            t.join(drain)
            assert not t.is_alive(), f"seed {seed}: the submitter or texter is stuck"
        assert not errors, (seed, errors)
        assert len(plan.accepted) == len(plan.outgoing)

        # Everything accepted goes out; the gateway empties the SIMs; then every handset's text
        # is in the store, once. On a timeout go on: the precise checks below say what is wrong.
        def sent() -> bool:
            return not read_rows(
                db,
                "SELECT 1 FROM messages WHERE direction = 'out'"
                " AND status NOT IN ('sent', 'delivered') LIMIT 1",
            )

        def stored() -> bool:
            count = read_rows(db, "SELECT COUNT(*) FROM messages WHERE direction = 'in'")[0][0]
            return count >= len(plan.incoming)

        _settle(sent, drain, daemon.dead)
        poll(
            lambda: all(not sim.stored(imei) for imei in imeis),
            drain,
            f"the SIMs emptied by the gateway (seed {seed})",
            daemon.dead,
        )
        _settle(stored, 15, daemon.dead)  # what was read from the SIMs is committed already
        inboxes: dict[str, list[str]] = {h: [] for h in sim.handsets}

        def delivered() -> bool:
            for h in inboxes:
                inboxes[h] = [m["text"] for m in sim.inbox(h)]
            texts = Counter(t for box in inboxes.values() for t in box)
            return all(texts[m.text] for m in plan.outgoing)

        _settle(delivered, drain, sim.dead)
        assert daemon.terminate() == 0
        _check(plan, seed, db, inboxes)
        elapsed = time.monotonic() - started
        dup = read_rows(db, "SELECT COUNT(*) FROM messages WHERE maybe_duplicate = 1")[0][0]
        twice = sum(1 for box in inboxes.values() for n in Counter(box).values() if n > 1)
        kinds = Counter(m.kind for m in plan.outgoing)
        in_kinds = Counter(m.kind for m in plan.incoming)
        print(
            f"soak seed {seed}: {plan.kills} kills survived ({Counter(moments)}), "
            f"{len(plan.outgoing)} messages checked {dict(kinds)}, {len(plan.incoming)} inbound "
            f"checked {dict(in_kinds)}, {dup} marked maybe_duplicate ({twice} arrived twice), "
            f"faults {Counter(faults)}, "
            f"{daemon.starts} starts, {elapsed:.1f} s"
        )
    finally:
        stop.set()
        if daemon is not None and daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)
        for t in threads:
            t.join(5)
        sim.stop()


def _settle(check: Callable[[], bool], timeout: float, dead: Callable[[], str]) -> bool:
    """Poll ``check`` until true or ``timeout``; whether it came true (raises only if the
    process it waits on died)."""
    deadline = time.monotonic() + timeout
    while not check():
        reason = dead()
        assert not reason, reason
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _check(plan: Plan, seed: int, db: Path, inboxes: dict[str, list[str]]) -> None:
    """The store against the handsets' inboxes and the texts the handsets sent."""
    problems: list[str] = []
    assert read_rows(db, "PRAGMA integrity_check")[0][0] == "ok", seed

    # Outbound: delivered whole, duplicates marked, every message and part final.
    sent_texts = {m.text for m in plan.outgoing}
    for msg in plan.outgoing:
        row = read_rows(db, "SELECT * FROM messages WHERE id = ?", plan.accepted[msg.key])[0]
        if row["body"] != msg.text or row["phone"] != msg.to:
            problems.append(f"{msg.key}: stored as {row['phone']} {row['body']!r}")
        if row["status"] not in ("sent", "delivered"):
            problems.append(f"{msg.key} ({msg.kind}) is {row['status']}: {row['error']}")
        got = inboxes[msg.to].count(msg.text)
        if got == 0:
            problems.append(f"{msg.key} ({msg.kind}) never arrived whole at {msg.to}")
        elif got > 1 and not row["maybe_duplicate"]:
            problems.append(f"{msg.key} ({msg.kind}) arrived {got} times, not marked duplicate")
    for handset, box in inboxes.items():
        for text in box:
            if text not in sent_texts:
                problems.append(f"{handset} got a text nobody sent (a broken part?): {text!r}")
    unfinished = read_rows(
        db,
        "SELECT message_id, seq, status FROM message_parts"
        " WHERE status NOT IN ('sent', 'delivered')",
    )
    problems += [f"part {tuple(r)} left unfinished" for r in unfinished]

    # Inbound: each text a handset sent is stored exactly once, whole, and nothing is pending.
    # (The SIMs were empty before this: a text missing here was deleted unstored.)
    inbound: list[str] = []
    for msg in plan.incoming:
        rows = read_rows(
            db,
            "SELECT id, status FROM messages WHERE direction = 'in' AND phone = ? AND body = ?",
            msg.sender,
            msg.text,
        )
        if len(rows) != 1:
            inbound.append(f"inbound {msg.text[:7]} ({msg.kind}) stored {len(rows)} times")
        elif rows[0]["status"] != "received":
            inbound.append(f"inbound {msg.text[:7]} is {rows[0]['status']}")
    extra = read_rows(db, "SELECT COUNT(*) FROM messages WHERE direction = 'in'")[0][0]
    if extra != len(plan.incoming):
        inbound.append(f"{extra} inbound messages stored for {len(plan.incoming)} texts sent")
    pending = read_rows(db, "SELECT COUNT(*) FROM inbound_pdus WHERE settled = 0")[0][0]
    if pending:
        inbound.append(f"{pending} inbound PDUs never settled")
    if inbound:
        # Known while this was written: the +CMTI handler and the storage sweep both delete SIM
        # indexes with nothing coordinating them, and the SIM reuses a freed index at once (issue
        # 8, finding 1): the --long run loses ~90 of 400 texts to it, GATEWAY_SOAK_SEED=27 three
        # of 16 (AT+CMGR=1, AT+CMGD=1 from the +CMTI handler, AT+CMGD=1 again from the sweep).
        problems.append(
            f"{len(inbound)} inbound problems (a text missing here was deleted from the SIM "
            "unstored, as the SIM-storage race of issue 8, finding 1, does):"
        )
        problems += inbound
    assert not problems, f"seed {seed}: {len(problems)} problems:\n" + "\n".join(problems[:80])


# Findings of the soak, pinned down. A daemon killed between AT+CMGS and its message leaves the
# modem at the "> " prompt, where it takes every later command as message text: the next daemon's
# probe called the port "not an AT port" and the modem stayed out until it was power-cycled. One
# killed after the message but before the answer leaves "+CMGS: <mr>" and OK to come: the next
# daemon took them as the answers to its first commands, and every answer after as one behind
# (AT+CPIN? read the model name; the probe could read no IMEI).


@pytest.mark.parametrize("left", ["at the prompt", "owing the answer"])
@pytest.mark.parametrize("family", ["generic", "huawei", "simcom"])
def test_a_modem_left_mid_send_by_a_killed_daemon_is_found_and_opens_again(tmp_path, family, left):
    settings = ModemSettings(
        command_timeout=1.0, retry_delay=0.02, startup_timeout=5.0, sms_ready_timeout=5.0
    )
    with Network(tmp_path, seed=4) as net:
        sim = net.add_modem(family=family, send_latency=0.5)
        handset = net.add_handset("+15551230001")
        first = Modem(str(sim.port), settings)
        first.open()  # the first daemon: the modem booted and was set up for PDU mode
        first.close()
        killed = pdu.encode_submit(handset.number, "typed by the killed daemon")[0]
        with Terminal(sim.port) as term:  # ... then it began a send and was killed
            assert term.command(f"AT+CMGS={killed.length}").endswith("> ")
            if left == "owing the answer":
                term.write(killed.pdu + "\x1a")  # the answer comes 0.5 s later, to no one

        found = probe_port(str(sim.port), timeout=1.0)
        assert found is not None and found.imei == sim.imei, found
        modem = Modem(str(sim.port), settings)
        try:
            modem.open()
            assert modem.identify().imei == sim.imei
            part = pdu.encode_submit(handset.number, "after the kill")[0]
            modem.send_pdu(part.pdu, part.length)
            assert handset.wait_for_message(timeout=5, predicate=lambda m: "after" in m.text)
        finally:
            modem.close()
        # A message the modem had taken went out; a half-typed one was abandoned, not sent
        # with our commands as its text.
        expected = ["after the kill"]
        if left == "owing the answer":
            expected.insert(0, "typed by the killed daemon")
        assert sorted(m.text for m in handset.inbox) == sorted(expected)


def test_the_probe_finds_a_modem_left_at_the_prompt_that_hung_through_the_first_escape(tmp_path):
    # The --long soak: a fault (a 1.5 s hang) dropped the first ESC, the modem stayed at "> ",
    # the probe called it "not an AT port", and the manager never probed it again.
    with Network(tmp_path, seed=4) as net:
        sim = net.add_modem()
        sim.wait_plugged(5)
        with Terminal(sim.port) as term:
            term.command("ATE0")
            assert term.command("AT+CMGS=20").endswith("> ")
        sim.set_fault("hang", duration=0.8)
        found = probe_port(str(sim.port), timeout=1.0)
        assert found is not None and found.imei == sim.imei, found
