"""The send path through the serial simulator, the gateway side by side with its peers.

Every system drives the same simulated modems (``gateway.sim``, generic family, one pty each,
``--latency`` seconds per ``AT+CMGS``, in a process of its own that stamps the time of the first
byte of each ``AT+CMGS`` line and of each ``+CMGS:`` answer):

- **gateway**: ``gateway run`` (the daemon, its driver and its store on disk), messages queued
  in its store before it starts (saturation) or submitted one at a time through its control
  socket (pick-up: the same ``send`` as ``gateway sms send``);
- **python-gsmmodem-new**: a library with no queue and no store; one thread per modem calls
  ``GsmModem.sendSms`` in a loop (pick-up: the call);
- **smstools** (``smsd``, when installed): one smsd with a device per modem, message files
  renamed into its outgoing spool;
- **gammu-smsd** (when installed): one gammu-smsd per modem (one process drives one phone),
  files backend, message files renamed into its outbox.

Figures, each system measured the same way at the simulator:

- **saturation** at 1, 2, 4 and 8 modems: ``--per-modem`` single-part messages per modem, one
  recipient each, all queued before the system starts; efficiency = (sends x latency) / the time
  from a modem's first ``AT+CMGS`` to its last answer, over all modems (1.0: each modem never
  idle between two sends); messages/s = sends / (first ``AT+CMGS`` to last answer, any modem);
  the gap: a modem's answer to the first byte of its next ``AT+CMGS`` (p50, p99); the turn: the
  simulator's ``> `` written to its Ctrl-Z read (the system typing the PDU); the simulator's own
  time (the ``AT+CMGS`` line read to its ``> ``, and how late its answer came after the Ctrl-Z
  plus the latency: the latency starts at the Ctrl-Z) and "eff. net", the efficiency with that
  taken out of each modem's span; mean ms per send of each; the load average after each run;
- **pick-up**: one modem, idle, ``--pickups`` messages submitted one at a time (the next after
  the previous one's answer and a random pause); submit to the first byte of its ``AT+CMGS``;
- **CPU per message** at zero modem latency: CPU time of the system's processes (all threads,
  forked children included) between the first ``AT+CMGS`` and the last answer of
  ``--cpu-messages`` sends on one modem, over the sends in between.

Peers' settings (tuned, and why): bench/peers.md.

    .venv/bin/python bench/send_sim.py [--systems gateway,gsmmodem,smsd,gammu]
        [--modems 1,2,4,8] [--latency 0.5] [--per-modem 16] [--pickups 30] [--cpu-messages 300]
        [--skip saturation,pickup,cpu] [--tree /other/checkout] [--json out.json]
        [--burn N] [--fsync-load N]

``--burn`` and ``--fsync-load`` load the machine on purpose during the saturation runs: N
CPU-bound processes, N processes writing 64 KiB and fdatasyncing in a loop, each in a session
of its own (as another user's job; the simulator and every system have theirs too, which is
what the kernel's autogroup scheduling shares the CPUs by).

``--tree`` runs another checkout's gateway (its ``gateway`` package first on the path, its own
schema for the queued store): before and after in one way of measuring. A peer that is not
installed is reported "not installed" and skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT  # the checkout whose gateway is measured (--tree)
TICK = os.sysconf("SC_CLK_TCK")
TEXT = "Your code is 482913. It expires in 10 minutes."
SMSD = shutil.which("smsd") or ("/usr/sbin/smsd" if os.access("/usr/sbin/smsd", os.X_OK) else None)
GAMMU_SMSD = shutil.which("gammu-smsd")
SYSTEMS = ("gateway", "gsmmodem", "smsd", "gammu")
START_TIMEOUT = 60.0


def phone(i: int) -> str:
    """The i-th recipient (one per message)."""
    return f"+1202{i:07d}"


# -- the simulator child -------------------------------------------------------------------


def sim_child(modems: int, latency: float) -> int:
    """Serve ``modems`` generic modems taking ``latency`` s per AT+CMGS. Prints each port as
    JSON, then ``{"ready": true}``, then one line per event: ``{"e": "cmgs"|"ans", "m": index,
    "t": epoch seconds}`` (the first byte of an AT+CMGS line; a +CMGS answer written)."""
    from gateway.sim import Network
    from gateway.sim import modem as sim_modem

    index: dict[int, int] = {}
    out_lock = threading.Lock()

    def emit(kind: str, modem: object, t: float) -> None:
        with out_lock:
            print(json.dumps({"e": kind, "m": index.get(id(modem), -1), "t": t}), flush=True)

    read_port = sim_modem.SimModem._read_port
    on_line = sim_modem.SimModem._on_line
    emit_reply = sim_modem.SimModem._emit_reply
    finish_prompt = sim_modem.SimModem._finish_prompt

    def stamped_read(self, ep) -> None:
        # A line that starts in this read started now (AT+CMGS=NN fits in one read).
        if not self._line and self._prompt is None:
            self._line_t0 = time.time()
        read_port(self, ep)

    def stamped_line(self, raw: str) -> None:
        if "AT+CMGS=" in raw.upper():
            emit("cmgs", self, getattr(self, "_line_t0", time.time()))
        on_line(self, raw)
        self._line_t0 = time.time()  # the next line in the same read

    def stamped_reply(self, reply) -> None:
        emit_reply(self, reply)
        if any(line.startswith("+CMGS:") for block in reply.blocks for line in block):
            emit("ans", self, time.time())
        elif reply.prompt:
            emit("prompt", self, time.time())  # the "> " written

    def stamped_finish(self, body: str) -> None:
        # The Ctrl-Z read: the simulated network's latency starts here.
        emit("ctrlz", self, time.time())
        finish_prompt(self, body)

    sim_modem.SimModem._read_port = stamped_read
    sim_modem.SimModem._on_line = stamped_line
    sim_modem.SimModem._emit_reply = stamped_reply
    sim_modem.SimModem._finish_prompt = stamped_finish
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    base = tempfile.mkdtemp(prefix="sendsim-sim-")
    try:
        # The peers text made-up numbers: the network gives each a handset.
        with Network(base, seed=1, status_report_delay=0, auto_handsets=True) as net:
            for _ in range(modems):
                m = net.add_modem(family="generic", send_latency=latency, boot_time=0)
                index[id(m)] = len(index)
            for m in net.modems:
                print(json.dumps({"port": m.port, "imei": m.imei}), flush=True)
            print(json.dumps({"ready": True}), flush=True)
            stop.wait()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


class Sim:
    """The simulator child and the events it reports."""

    def __init__(self, modems: int, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--sim-child", str(modems), str(latency)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            # A session of its own, as each system under test has: with the kernel's
            # autogroup scheduling a session is what shares the CPUs fairly.
            start_new_session=True,
        )
        self.modems: list[dict] = []
        # Stamps per kind and modem: "cmgs", "prompt", "ctrlz", "ans" (see sim_child).
        self.stamps: dict[str, list[list[float]]] = {
            kind: [[] for _ in range(modems)] for kind in ("cmgs", "prompt", "ctrlz", "ans")
        }
        self.cmgs = self.stamps["cmgs"]
        self.ans = self.stamps["ans"]
        self.cond = threading.Condition()
        self.hooks: list[Callable[[str, int, float], None]] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            obj = json.loads(line)
            if obj.get("ready"):
                break
            self.modems.append(obj)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            obj = json.loads(line)
            with self.cond:
                self.stamps[obj["e"]][obj["m"]].append(obj["t"])
                for hook in self.hooks:
                    hook(obj["e"], obj["m"], obj["t"])
                self.cond.notify_all()

    def answers(self) -> int:
        return sum(len(a) for a in self.ans)

    def wait_answers(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.answers() >= n, timeout)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- deliberate load ----------------------------------------------------------------------

BURN = "while 1: pass"
FSYNC = """
import os, sys
path = sys.argv[1]
fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
n = 0
while True:
    os.write(fd, b"x" * 65536)
    os.fdatasync(fd)
    n += 1
    if n % 256 == 0:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, 0)
"""


class Load:
    """``burn`` CPU-bound processes and ``fsync`` processes that write 64 KiB and fdatasync in
    a loop (on the disk of the systems' stores), each in a session of its own like another
    user's job, for as long as the context lasts: a loaded machine made on purpose."""

    def __init__(self, burn: int, fsync: int) -> None:
        self.burn, self.fsync = burn, fsync
        self.procs: list[subprocess.Popen] = []
        self.folder: str | None = None

    def __enter__(self) -> Load:
        if self.fsync:
            self.folder = tempfile.mkdtemp(prefix="sendsim-load-")
        for _ in range(self.burn):
            self.procs.append(
                subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True)
            )
        for i in range(self.fsync):
            path = os.path.join(self.folder or "", f"f{i}")
            self.procs.append(
                subprocess.Popen([sys.executable, "-c", FSYNC, path], start_new_session=True)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(10)
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


# -- measuring -----------------------------------------------------------------------------


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of ``pids`` and every process in their sessions (smsd forks
    a child per modem)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        # After pid and comm: state, ppid, process group, session (fields[3]).
        if int(entry) in pids or int(fields[3]) in pids:
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def saturation_figures(sim: Sim, latency: float) -> dict:
    """Efficiency and throughput from the simulator's stamps."""
    busy = span = 0.0
    firsts, lasts, sends = [], [], 0
    for cm, an in zip(sim.cmgs, sim.ans, strict=True):
        if not an:
            continue
        n = len(an)
        sends += n
        busy += n * latency
        span += an[-1] - cm[0]
        firsts.append(cm[0])
        lasts.append(an[-1])
    wall = max(lasts) - min(firsts)
    # The modem idle between two sends: its answer to the first AT+CMGS of the next.
    gaps = [
        nxt - answered
        for cm, an in zip(sim.cmgs, sim.ans, strict=True)
        for answered, nxt in zip(an, cm[1:], strict=False)
    ]
    # The rest of each exchange, split between the system and the simulator itself: the
    # system's turn at the prompt ("> " written to the Ctrl-Z read), the simulator's own time
    # (the AT+CMGS line read to its "> ", and how late its answer came after the Ctrl-Z plus
    # the latency: on a loaded machine the simulator is starved too).
    turns, own = [], 0.0
    lates, prompts = [], []
    for m, an in enumerate(sim.ans):
        cm, pr, cz = sim.cmgs[m], sim.stamps["prompt"][m], sim.stamps["ctrlz"][m]
        for k in range(min(len(an), len(cm), len(pr), len(cz))):
            turns.append(cz[k] - pr[k])
            prompts.append(pr[k] - cm[k])
            late = max(0.0, an[k] - cz[k] - latency)
            lates.append(late)
            own += (pr[k] - cm[k]) + late

    def mean_ms(values: list[float]) -> float | None:
        return round(statistics.mean(values) * 1000, 2) if values else None

    return {
        # Where each exchange's time beyond the latency goes, mean ms per send: the system's
        # (gap, turn) and the simulator's (its prompt, its answer's lateness).
        "mean_ms": {
            "gap": mean_ms(gaps),
            "sim_prompt": mean_ms(prompts),
            "turn": mean_ms(turns),
            "sim_late": mean_ms(lates),
        },
        "gap_p50_ms": round(statistics.median(gaps) * 1000, 1) if gaps else None,
        "turn_p50_ms": round(statistics.median(turns) * 1000, 1) if turns else None,
        "sim_late_p50_ms": round(statistics.median(lates) * 1000, 1) if lates else None,
        # Efficiency with the simulator's own time taken out of each modem's span: what the
        # system itself costs (the headline figure counts the simulator's delays against it).
        "efficiency_net": round(busy / (span - own), 4) if span and latency else None,
        "gap_p99_ms": round(percentile(gaps, 0.99) * 1000, 1) if gaps else None,
        "sends": sends,
        "wall_s": round(wall, 3),
        "efficiency": round(busy / span, 4) if span and latency else None,
        "msgs_per_s": round(sends / wall, 2) if wall else None,
        "per_modem": [len(a) for a in sim.ans],
    }


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


class CpuWindow:
    """CPU of a process tree between the first AT+CMGS and the ``n``-th answer (read by a
    hook on the simulator's event thread, as the events arrive)."""

    def __init__(self, sim: Sim, pids: list[int], n: int) -> None:
        self.pids, self.n = pids, n
        self.start: float | None = None
        self.end: float | None = None
        self.seen = 0
        sim.hooks.append(self.on_event)

    def on_event(self, kind: str, modem: int, t: float) -> None:
        if kind == "cmgs" and self.start is None:
            self.start = tree_cpu(self.pids)
        elif kind == "ans":
            self.seen += 1
            if self.seen == self.n and self.end is None:
                self.end = tree_cpu(self.pids)

    def per_message_ms(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return round((self.end - self.start) * 1000 / (self.n - 1), 3)


# -- systems -------------------------------------------------------------------------------


class System:
    """One system under test against a running simulator."""

    name = ""

    def __init__(self, sim: Sim, folder: Path) -> None:
        self.sim, self.folder = sim, folder
        self.proc: subprocess.Popen | None = None

    @classmethod
    def available(cls) -> str | None:
        """None when it can run here, else why not."""
        return None

    def queue(self, count: int) -> None:
        """Queue ``count`` messages before start (saturation)."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def submit(self, i: int) -> float:
        """Submit one message while running; the time it was submitted."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        """The processes whose CPU is counted (with their sessions)."""
        return [self.proc.pid] if self.proc is not None else []

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):  # it stopped on its own
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def _spawn(self, argv: list[str], log: str, **kw) -> subprocess.Popen:
        out = (self.folder / log).open("wb")
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kw,
        )


# Queues messages in the store of a gateway configuration, as Outbox.submit would (one profile
# each); run as a child in the checkout under test.
FILL = """
import sys
from datetime import timedelta
from gateway.config import load_config
from gateway.messaging.outbound import PRIORITY_BULK
from gateway.services import build_services
from gateway.store.messages import NewOutbound
from gateway.store.times import iso, now
path, count, text = sys.argv[1], int(sys.argv[2]), sys.argv[3]
store = build_services(load_config(path), modems=False).store
expires = iso(now() + timedelta(days=1))
with store.db.tx():
    for i in range(count):
        phone = f"+1202{i:07d}"
        pid = store.profiles.add(phone, f"P{i}")
        store.messages.add_outbound(
            NewOutbound(pid, phone, "55123", text, "gsm7", 1, None, PRIORITY_BULK, expires)
        )
store.close()
"""


def tree_env() -> dict[str, str]:
    """The environment for the checkout under test: its ``gateway`` package first."""
    extra = os.environ.get("SENDSIM_PYTHONPATH")  # e.g. instrumentation, after the tree
    return {**os.environ, "PYTHONPATH": str(TREE) + (os.pathsep + extra if extra else "")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway(System):
    """``gateway run`` over the simulator's ptys; status reports off (the peers ask for none)."""

    name = "gateway"

    def __init__(self, sim: Sim, folder: Path) -> None:
        super().__init__(sim, folder)
        lines = [
            f"data_dir: {folder / 'data'}",
            "default_region: US",
            f"web: {{bind: 127.0.0.1, port: {free_port()}}}",
            "modems:",
        ]
        for i, m in enumerate(sim.modems):
            lines.append(
                f'  - {{id: m{i}, imei: "{m["imei"]}", port: "{m["port"]}", status_reports: false}}'
            )
        ids = ", ".join(f"m{i}" for i in range(len(sim.modems)))
        lines += [
            "short_codes:",
            f'  - {{code: "55123", name: Bench, modems: [{ids}]}}',
            "retention: {nightly_backups: 0}",
            "modem_manager: {scan: []}",
        ]
        self.config_path = folder / "gateway.yaml"
        self.config_path.write_text("\n".join(lines) + "\n")
        self.data_dir = folder / "data"

    def queue(self, count: int) -> None:
        # By the checkout under test (--tree), whose schema the store must have.
        subprocess.run(
            [sys.executable, "-c", FILL, str(self.config_path), str(count), TEXT],
            cwd=TREE,
            env=tree_env(),
            check=True,
        )

    def start(self) -> None:
        self.proc = self._spawn(
            [sys.executable, "-m", "gateway.cli", "run", "-c", str(self.config_path)],
            "gateway.log",
            cwd=TREE,
            env=tree_env(),
        )
        from gateway.control import ControlError, request

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                modems = request(self.data_dir, "modems", timeout=5)["modems"]
                if modems and all(m.get("state") == "up" for m in modems):
                    return
            except ControlError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.folder / "gateway.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"gateway did not come up:\n{log}")
            time.sleep(0.05)

    def wait_started(self) -> None:
        """For saturation: the daemon sends as soon as a modem is up; nothing to wait for."""

    def submit(self, i: int) -> float:
        from gateway.control import request

        t = time.time()
        reply = request(self.data_dir, "send", to=phone(i), text=TEXT, short_code="55123")
        if not reply.get("ok"):
            raise RuntimeError(f"gateway refused the message: {reply}")
        return t


class GsmModemPeer(System):
    """python-gsmmodem-new in a child process: one thread per modem, ``sendSms`` in a loop.
    Commands on its stdin: ``send I`` (one message, pick-up), ``burst N`` (N per modem)."""

    name = "gsmmodem"

    @classmethod
    def available(cls) -> str | None:
        try:
            import gsmmodem  # noqa: F401
        except ImportError:
            return "not installed (pip install python-gsmmodem-new)"
        return None

    def queue(self, count: int) -> None:
        self.burst = count // len(self.sim.modems)

    def start(self) -> None:
        ports = [m["port"] for m in self.sim.modems]
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--gsmmodem-child", ",".join(ports)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(self.folder / "gsmmodem.log").open("wb"),
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "connected":
            raise RuntimeError(f"gsmmodem did not connect: {line!r}")
        if getattr(self, "burst", 0):
            self._command(f"burst {self.burst}")

    def _command(self, text: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def submit(self, i: int) -> float:
        self._command(f"send {i}")
        assert self.proc is not None and self.proc.stdout is not None
        return float(self.proc.stdout.readline())


def gsmmodem_child(ports: list[str]) -> int:
    """The python-gsmmodem-new side: connect every modem, then obey stdin."""
    import logging

    from gsmmodem.modem import GsmModem

    if os.environ.get("SENDSIM_DEBUG"):
        logging.basicConfig(level=logging.DEBUG)
    modems = []
    for port in ports:
        # Its PDU mode asks for a status report whatever requestDelivery says, and its
        # notification thread then reads it while sendSms waits for "> " (a CMS 304): the
        # reports are not routed to it at all (AT+CNMI ds=0), as the gateway asks for none.
        m = GsmModem(port, 115200, requestDelivery=False, AT_CNMI="2,1,0,0,0")
        m.connect()
        modems.append(m)
    print("connected", flush=True)

    def burst(m: GsmModem, base: int, n: int) -> None:
        for k in range(n):
            m.sendSms(phone(base + k), TEXT)

    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "burst":
            n = int(arg)
            threads = [
                threading.Thread(target=burst, args=(m, i * n, n)) for i, m in enumerate(modems)
            ]
            for t in threads:
                t.start()
        elif cmd == "send":
            t = time.time()
            print(t, flush=True)
            modems[0].sendSms(phone(int(arg)), TEXT)
    return 0


class Smsd(System):
    """smstools' smsd, one device per modem, files renamed into its outgoing spool."""

    name = "smsd"

    @classmethod
    def available(cls) -> str | None:
        return None if SMSD else "not installed (apt-get install smstools)"

    def __init__(self, sim: Sim, folder: Path) -> None:
        super().__init__(sim, folder)
        for name in ("outgoing", "checked", "incoming", "failed", "sent", "tmp"):
            (folder / name).mkdir(exist_ok=True)
        devices = ",".join(f"GSM{i + 1}" for i in range(len(sim.modems)))
        text = (
            f"devices = {devices}\n"
            + "".join(
                f"{name} = {folder / name}\n"
                for name in ("outgoing", "checked", "incoming", "failed", "sent")
            )
            + f"logfile = {folder / 'smsd.log'}\n"
            f"infofile = {folder / 'smsd.working'}\n"
            f"pidfile = {folder / 'smsd.pid'}\n"
            "loglevel = 5\n"
            # Tuned (bench/peers.md): the shortest sleeps smsd takes (whole seconds).
            "delaytime = 1\n"
            "delaytime_mainprocess = 1\n"
            "trust_outgoing = yes\n"
            "receive_before_send = no\n"
            "status_interval = 0\n"
        )
        for i, m in enumerate(sim.modems):
            text += (
                f"\n[GSM{i + 1}]\ndevice = {m['port']}\nincoming = yes\nbaudrate = 115200\n"
                "check_network = 0\n"
            )
        self.conf = folder / "smsd.conf"
        self.conf.write_text(text)

    def _file(self, i: int) -> None:
        tmp = self.folder / "tmp" / f"bench-{i}"
        tmp.write_text(f"To: {phone(i).lstrip('+')}\n\n{TEXT}\n")
        os.rename(tmp, self.folder / "outgoing" / f"bench-{i}")

    def queue(self, count: int) -> None:
        for i in range(count):
            self._file(i)

    def start(self) -> None:
        self.proc = self._spawn([SMSD, "-t", "-c", str(self.conf)], "smsd.out")

    def submit(self, i: int) -> float:
        t = time.time()
        self._file(i)
        return t


class Gammu(System):
    """gammu-smsd, one per modem (a process drives one phone), files backend; messages dealt
    round-robin into their outboxes."""

    name = "gammu"

    @classmethod
    def available(cls) -> str | None:
        return None if GAMMU_SMSD else "not installed (apt-get install gammu-smsd)"

    def __init__(self, sim: Sim, folder: Path) -> None:
        super().__init__(sim, folder)
        self.procs: list[subprocess.Popen] = []
        self.confs = []
        for i, m in enumerate(sim.modems):
            d = folder / f"g{i}"
            for name in ("inbox", "outbox", "sent", "error", "tmp"):
                (d / name).mkdir(parents=True, exist_ok=True)
            conf = d / "smsdrc"
            conf.write_text(
                f"[gammu]\ndevice = {m['port']}\nconnection = at\n\n"
                "[smsd]\nservice = files\n"
                f"inboxpath = {d / 'inbox'}/\noutboxpath = {d / 'outbox'}/\n"
                f"sentsmspath = {d / 'sent'}/\nerrorsmspath = {d / 'error'}/\n"
                f"logfile = {d / 'smsd.log'}\ndebuglevel = 0\n"
                # Tuned (bench/peers.md): look at the outbox every loop, a loop a second
                # (0 is a busy loop), no battery/signal/PIN/network polls between sends.
                "LoopSleep = 1\nCommTimeout = 0\nStatusFrequency = 0\n"
                "CheckSecurity = 0\nCheckBattery = 0\nCheckSignal = 0\nCheckNetwork = 0\n"
                "ReceiveFrequency = 15\n"
            )
            self.confs.append(d)

    def _file(self, i: int, modem: int) -> None:
        d = self.confs[modem]
        stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        name = f"OUTC{stamp}_{i % 100:02d}_{phone(i)}_b{i}.txt"
        tmp = d / "tmp" / name
        tmp.write_text(TEXT)
        os.rename(tmp, d / "outbox" / name)

    def queue(self, count: int) -> None:
        for i in range(count):
            self._file(i, i % len(self.confs))

    def start(self) -> None:
        for d in self.confs:
            p = subprocess.Popen(
                [GAMMU_SMSD, "-c", str(d / "smsdrc")],
                stdout=(d / "out").open("wb"),
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.procs.append(p)
        self.proc = self.procs[0]

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def submit(self, i: int) -> float:
        t = time.time()
        self._file(i, 0)
        return t


CLASSES = {"gateway": Gateway, "gsmmodem": GsmModemPeer, "smsd": Smsd, "gammu": Gammu}


# -- runs ----------------------------------------------------------------------------------


def run_saturation(name: str, modems: int, latency: float, per_modem: int) -> dict:
    count = modems * per_modem
    sim = Sim(modems, latency)
    folder = Path(tempfile.mkdtemp(prefix=f"sendsim-{name}-"))
    system = CLASSES[name](sim, folder)
    try:
        system.queue(count)
        system.start()
        if not sim.wait_answers(count, START_TIMEOUT + count * latency * 4 / modems + 60):
            raise RuntimeError(f"{name}: {sim.answers()} of {count} sent in time")
        r = saturation_figures(sim, latency)
        r.update(system=name, modems=modems, latency_s=latency)
        return r
    finally:
        system.stop()
        sim.close()
        shutil.rmtree(folder, ignore_errors=True)


def run_cpu(name: str, count: int) -> dict:
    """``count`` sends on one modem at zero latency; CPU between first AT+CMGS and last answer."""
    sim = Sim(1, 0.0)
    folder = Path(tempfile.mkdtemp(prefix=f"sendsim-{name}-"))
    system = CLASSES[name](sim, folder)
    try:
        system.queue(count)
        window: CpuWindow | None = None
        if name == "gsmmodem":  # connects first, then sends when told
            system.queue(0)
            system.burst = 0
            system.start()
            window = CpuWindow(sim, system.pids(), count)
            system._command(f"burst {count}")
        else:
            # The window needs the pid: started under the simulator's event lock, so that
            # no event is read before the window is in place.
            with sim.cond:
                system.start()
                window = CpuWindow(sim, system.pids(), count)
        if not sim.wait_answers(count, START_TIMEOUT + count * 2):
            raise RuntimeError(f"{name}: {sim.answers()} of {count} sent in time")
        r = saturation_figures(sim, 0.0)
        return {
            "system": name,
            "messages": count,
            "cpu_ms_per_msg": window.per_message_ms(),
            "msgs_per_s": r["msgs_per_s"],
        }
    finally:
        system.stop()
        sim.close()
        shutil.rmtree(folder, ignore_errors=True)


def run_pickup(name: str, samples: int, latency: float) -> dict:
    sim = Sim(1, latency)
    folder = Path(tempfile.mkdtemp(prefix=f"sendsim-{name}-"))
    system = CLASSES[name](sim, folder)
    rng = random.Random(7)
    delays = []
    try:
        system.queue(0)
        system.start()
        # Every system gets the same time to finish its start-up (smsd and gammu-smsd tell
        # nothing when they are done; the gateway reads the SIM's storage once it is up).
        time.sleep(5)
        for i in range(samples):
            before = len(sim.cmgs[0])
            t = system.submit(i)
            with sim.cond:
                if not sim.cond.wait_for(lambda b=before: len(sim.cmgs[0]) > b, 60):
                    raise RuntimeError(f"{name}: message {i} not picked up within 60 s")
                picked = sim.cmgs[0][before]
            delays.append(picked - t)
            sim.wait_answers(i + 1, 60)
            time.sleep(rng.uniform(0.2, 0.6))
    finally:
        system.stop()
        sim.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "system": name,
        "samples": samples,
        "p50_ms": round(statistics.median(delays) * 1000, 1),
        "p99_ms": round(percentile(delays, 0.99) * 1000, 1),
        "max_ms": round(max(delays) * 1000, 1),
        "sorted_ms": [round(d * 1000, 1) for d in sorted(delays)],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--modems", default="1,2,4,8")
    ap.add_argument("--latency", type=float, default=0.5, help="seconds per AT+CMGS")
    ap.add_argument("--per-modem", type=int, default=16)
    ap.add_argument("--pickups", type=int, default=30)
    ap.add_argument("--cpu-messages", type=int, default=300)
    ap.add_argument("--skip", default="", help="parts to skip: saturation,pickup,cpu")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--burn", type=int, default=0, help="CPU-bound processes alongside")
    ap.add_argument("--fsync-load", type=int, default=0, help="fdatasync loops alongside")
    ap.add_argument(
        "--tree", type=Path, default=ROOT, help="checkout whose gateway runs (before/after)"
    )
    ap.add_argument("--sim-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--gsmmodem-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.sim_child:
        return sim_child(int(args.sim_child[0]), float(args.sim_child[1]))
    if args.gsmmodem_child:
        return gsmmodem_child(args.gsmmodem_child.split(","))
    global TREE
    TREE = args.tree.resolve()
    skip = set(filter(None, args.skip.split(",")))
    systems = []
    results: dict = {"skipped": {}, "saturation": [], "pickup": [], "cpu": []}
    for name in args.systems.split(","):
        why = CLASSES[name].available()
        if why:
            print(f"{name}: {why}; skipped")
            results["skipped"][name] = why
        else:
            systems.append(name)
    counts = [int(x) for x in args.modems.split(",")]
    if "saturation" not in skip:
        print(f"\nsaturation: {args.latency} s per AT+CMGS, {args.per_modem} messages per modem")
        print(
            f"{'system':>9} {'modems':>6} {'efficiency':>10} {'msgs/s':>7} {'wall s':>7} "
            f"{'gap p50 ms':>10} {'gap p99 ms':>10} {'turn p50':>8} {'sim late':>8} "
            f"{'eff. net':>8} {'load':>5}"
        )
        with Load(args.burn, args.fsync_load) as load:
            if load.procs:
                time.sleep(10)  # the load average catches up a little
            for modems in counts:
                for name in systems:
                    r = run_saturation(name, modems, args.latency, args.per_modem)
                    results["saturation"].append(r)
                    eff = f"{r['efficiency']:.4f}" if r["efficiency"] is not None else "-"
                    r["load"] = round(os.getloadavg()[0], 2)
                    print(
                        f"{name:>9} {modems:>6} {eff:>10} {r['msgs_per_s']:>7} {r['wall_s']:>7} "
                        f"{r['gap_p50_ms']!s:>10} {r['gap_p99_ms']!s:>10} {r['turn_p50_ms']!s:>8} "
                        f"{r['sim_late_p50_ms']!s:>8} {r['efficiency_net']!s:>8} {r['load']:>5}",
                        flush=True,
                    )
                    mm = r["mean_ms"]
                    print(
                        f"{'':>17} mean ms per send: gap {mm['gap']}, turn at the prompt "
                        f"{mm['turn']} (the system's); prompt {mm['sim_prompt']}, answer late "
                        f"{mm['sim_late']} (the simulator's)",
                        flush=True,
                    )
    if "pickup" not in skip:
        print(f"\npick-up (submit -> first byte of AT+CMGS), 1 idle modem, {args.pickups} messages")
        print(f"{'system':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for name in systems:
            r = run_pickup(name, args.pickups, args.latency)
            results["pickup"].append(r)
            print(f"{name:>9} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['max_ms']:>8}")
    if "cpu" not in skip:
        print(f"\nCPU per message, 1 modem, zero latency, {args.cpu_messages} messages")
        print(f"{'system':>9} {'ms/msg':>8} {'msgs/s':>8}")
        for name in systems:
            r = run_cpu(name, args.cpu_messages)
            results["cpu"].append(r)
            print(f"{name:>9} {r['cpu_ms_per_msg']!s:>8} {r['msgs_per_s']!s:>8}")
    results["machine"] = {
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
        "deliberate_load": {"burn": args.burn, "fsync": args.fsync_load},
        "python": sys.version.split()[0],
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
