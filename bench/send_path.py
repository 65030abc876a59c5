"""The send path: the dispatcher and the store between "queued" and "sent", without serial I/O.

Modems are in-process links that take ``--latency`` seconds per ``AT+CMGS`` (a sleep, so the GIL
is free meanwhile) and answer with a TP-MR; everything else is the daemon's own: the store on
disk (WAL, ``synchronous=FULL``), the event bus, the routing thread and one sender thread per
modem, built by ``gateway.services`` as the daemon builds them.

- **Saturation**: ``--per-modem`` single-part messages per modem queued up front (one profile each,
  so no sticky modem holds them back), then 1, 2, 4 and 8 modems with ``--latency`` (0.5 s) per
  PDU. Efficiency = ideal time (messages x latency / modems) / real time from the modems coming up
  to the last message recorded as sent.
- **CPU per message**: one modem with zero latency and 50, 1,000 (and with ``--big``, 100,000)
  messages queued; process CPU time (every thread) over the first ``--sample`` sends, divided by
  the messages sent.
- **Where the CPU goes**: the 1,000-queued run again with every dispatcher thread (routing and
  sender) under cProfile, merged; the functions with the most time of their own, and the
  store's and the encoder's shares (``--profile-lines``; 0 skips it).
- **fdatasyncs per message**: the 1,000-queued run again in a child process under
  ``strace -f -c -e trace=fsync,fdatasync`` (skipped when strace is missing).

    .venv/bin/python bench/send_path.py [--json out.json] [--big] [--latency 0.5]
        [--profile-lines 15]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gateway.config import parse_config
from gateway.messaging.outbound import PRIORITY_BULK
from gateway.services import build_services
from gateway.store.messages import NewOutbound
from gateway.store.times import iso, now

TEXT = "Your code is 482913. It expires in 10 minutes."


def config_text(data_dir: str, modems: int) -> str:
    ids = [f"m{i}" for i in range(modems)]
    lines = [f"data_dir: {data_dir}", "default_region: US", "modems:"]
    for i, mid in enumerate(ids):
        lines.append(f'  - {{id: {mid}, imei: "35693803564{i:04d}"}}')
    lines.append("short_codes:")
    lines.append(f'  - {{code: "55123", name: Bench, modems: [{", ".join(ids)}]}}')
    return "\n".join(lines) + "\n"


class Link:
    """A modem that takes ``latency`` seconds per PDU; sets ``done`` after ``target`` sends."""

    def __init__(self, latency: float, counter: Counter) -> None:
        self.latency = latency
        self.counter = counter
        self.mr = 0

    def send_pdu(self, pdu: str, length: int) -> int:
        if self.latency:
            time.sleep(self.latency)
        self.mr = (self.mr + 1) % 256
        self.counter.hit()
        return self.mr


class Counter:
    def __init__(self, target: int) -> None:
        self.target = target
        self.n = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def hit(self) -> None:
        with self.lock:
            self.n += 1
            if self.n >= self.target:
                self.done.set()


def fill(store, queued: int) -> None:
    """``queued`` single-part bulk messages, one profile each, in one transaction."""
    expires = iso(now().replace(year=now().year + 1))
    with store.db.tx():
        for i in range(queued):
            phone = f"+1202{i:07d}"
            pid = store.profiles.add(phone, f"P{i}")
            store.messages.add_outbound(
                NewOutbound(pid, phone, "55123", TEXT, "gsm7", 1, None, PRIORITY_BULK, expires)
            )


def run(modems: int, latency: float, queued: int, sample: int) -> dict:
    """Queue ``queued`` messages, bring ``modems`` modems up, time the first ``sample`` sends."""
    folder = tempfile.mkdtemp(prefix="bench-send-")
    try:
        config = parse_config(config_text(folder, modems))
        services = build_services(config, modems=False)
        store = services.store
        fill(store, queued)
        counter = Counter(sample)
        dispatcher = services.dispatcher
        dispatcher.start()
        cpu0, t0 = time.process_time(), time.perf_counter()
        for mc in config.modems:
            dispatcher.modem_up(mc.id, Link(latency, counter))
        counter.done.wait()
        # The last send's answer is recorded after send_pdu returns: wait for it.
        while queued - store.messages.queued_count() - _in_flight(store, modems) < sample:
            time.sleep(0.0005)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        dispatcher.stop()
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ideal = sample * latency / modems
    return {
        "modems": modems,
        "latency_s": latency,
        "queued": queued,
        "messages": sample,
        "wall_s": round(wall, 3),
        "efficiency": round(ideal / wall, 4) if latency else None,
        "cpu_ms_per_msg": round(cpu * 1000 / sample, 3),
    }


def profiled(queued: int, sample: int, lines: int) -> dict:
    """The CPU run with the routing and sender threads under cProfile: the top functions by
    their own time, and the shares of the store (SQLite calls and gateway/store), the PDU
    encoder and the event bus in the total."""
    from gateway.messaging.dispatcher import Dispatcher

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def under_profile(method):
        def run(*args, **kwargs):
            prof = cProfile.Profile(time.thread_time)  # CPU, not waits (locks, fsync)
            with lock:
                profiles.append(prof)
            prof.enable()
            try:
                return method(*args, **kwargs)
            finally:
                prof.disable()

        return run

    originals = Dispatcher._run, Dispatcher._sender
    Dispatcher._run = under_profile(Dispatcher._run)
    Dispatcher._sender = under_profile(Dispatcher._sender)
    try:
        result = run(1, 0.0, queued, sample)
    finally:
        Dispatcher._run, Dispatcher._sender = originals
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        stats.add(prof)
    total = sum(v[2] for v in stats.stats.values())  # own time of every function
    shares = {"sqlite": 0.0, "store (python)": 0.0, "pdu encoding": 0.0, "events": 0.0}
    for (file, _line, name), v in stats.stats.items():
        own = v[2]
        if "sqlite3.Connection" in name or "sqlite3.Cursor" in name:
            shares["sqlite"] += own
        elif "/gateway/store/" in file:
            shares["store (python)"] += own
        elif "/gateway/modem/" in file:
            shares["pdu encoding"] += own
        elif file.endswith("messaging/events.py"):
            shares["events"] += own
    out = io.StringIO()
    stats.stream = out
    stats.sort_stats("tottime").print_stats(lines)
    top = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(top) if ln.lstrip().startswith("ncalls")), 0)
    return {
        "queued": queued,
        "messages": result["messages"],
        "profiled_ms_per_msg": round(total * 1000 / sample, 3),
        "shares": {k: round(v / total, 3) for k, v in shares.items()} if total else {},
        "top": top[start:],
    }


def _in_flight(store, modems: int) -> int:
    """Messages claimed by a modem and not recorded as sent yet."""
    return sum(store.messages.queued_count(f"m{i}") for i in range(modems))


def fsyncs(queued: int, sample: int, latency: float = 0.0) -> dict | None:
    """fsync + fdatasync calls per message in a child process under strace, the modem taking
    ``latency`` s per PDU (at zero the router sometimes has not prepared the next message
    when the modem answers, and the sender records its part itself: one commit more)."""
    if shutil.which("strace") is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        trace = ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", out.name]
        me = [sys.executable, __file__, "--child-latency", str(latency), "--child", str(queued)]
        # The fill and start-up alone, then with the sends: the difference is the sends'.
        subprocess.run([*trace, *me, "0"], check=True, capture_output=True)
        idle = _calls(Path(out.name).read_text())
        subprocess.run([*trace, *me, str(sample)], check=True, capture_output=True)
        total = _calls(Path(out.name).read_text())
    per = round((total - idle) / sample, 2)
    return {"queued": queued, "messages": sample, "latency_s": latency, "fsyncs_per_msg": per}


def _calls(report: str) -> int:
    n = 0
    for line in report.splitlines():
        parts = line.split()
        if parts and parts[-1] in ("fsync", "fdatasync"):
            n += int(parts[3])
    return n


def child(queued: int, sample: int, latency: float = 0.0) -> None:
    """Fill and (with ``sample`` > 0) send; the parent subtracts the run with sample 0."""
    if sample == 0:
        folder = tempfile.mkdtemp(prefix="bench-send-")
        config = parse_config(config_text(folder, 1))
        services = build_services(config, modems=False)
        fill(services.store, queued)
        services.dispatcher.start()
        services.dispatcher.stop()
        services.store.close()
        shutil.rmtree(folder, ignore_errors=True)
        return
    run(1, latency, queued, sample)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--per-modem", type=int, default=16)
    ap.add_argument("--sample", type=int, default=400, help="sends timed for CPU per message")
    ap.add_argument("--big", action="store_true", help="also 100,000 queued")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument(
        "--profile-lines", type=int, default=15, help="functions shown in the profile (0: none)"
    )
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-latency", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child, args.child_latency)
        return 0
    results: dict = {"saturation": [], "cpu": [], "fsync": []}
    print(f"saturation, {args.latency} s per PDU, {args.per_modem} messages per modem")
    print(f"{'modems':>6} {'messages':>8} {'wall s':>8} {'ideal s':>8} {'efficiency':>10}")
    for modems in (1, 2, 4, 8):
        n = modems * args.per_modem
        r = run(modems, args.latency, n, n)
        results["saturation"].append(r)
        ideal = n * args.latency / modems
        print(f"{modems:>6} {n:>8} {r['wall_s']:>8.3f} {ideal:>8.3f} {r['efficiency']:>10.4f}")
    print(f"\nCPU per message, 1 modem, zero latency, first {args.sample} sends")
    print(f"{'queued':>8} {'ms/msg':>8} {'msgs/s':>8}")
    for queued in (50, 1000, 100_000) if args.big else (50, 1000):
        sample = min(args.sample, queued)
        r = run(1, 0.0, queued, sample)
        results["cpu"].append(r)
        rate = r["messages"] / r["wall_s"]
        print(f"{queued:>8} {r['cpu_ms_per_msg']:>8.3f} {rate:>8.0f}")
    if args.profile_lines:
        prof = profiled(1000, args.sample, args.profile_lines)
        results["profile"] = prof
        print(
            f"\nwhere the CPU goes (1,000 queued, {prof['messages']} sent, dispatcher threads "
            f"under cProfile: {prof['profiled_ms_per_msg']} ms/msg with its overhead)"
        )
        print(
            "  shares of the own time: "
            + ", ".join(f"{k} {v:.0%}" for k, v in prof["shares"].items())
        )
        for line in prof["top"]:
            print("  " + line)
    results["fsync"] = []
    for latency in (0.0, 0.02):
        f = fsyncs(1000, min(args.sample, 200) if latency else args.sample, latency)
        if f is None:
            print("\nfsyncs per message: strace not installed")
            break
        results["fsync"].append(f)
        print(
            f"{'' if latency else chr(10)}fsync+fdatasync per message (1,000 queued, "
            f"{f['messages']} sent, modem taking {latency * 1000:.0f} ms): {f['fsyncs_per_msg']}"
        )
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
