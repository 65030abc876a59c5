"""Footprint and start-up of ``gateway run``: resident memory (idle after start and peak),
idle CPU, threads, at 1, 4 and 8 simulated modems; and the time from launching the process to
the first AT command the simulator sees and to the web app answering ``/login``.

The simulator runs in a process of its own (this file started with ``--sim-child``: the
simulator of ``gateway sim`` with a clock on the first AT line), so the daemon's RSS and CPU
are its own. The daemon runs with a configuration in a temp folder (ports given, no scanning,
no simulator inside). Memory is read from /proc/PID/status (VmRSS, VmHWM), CPU from
/proc/PID/stat: RSS 5 s after the start, idle CPU over ``--idle`` seconds, then 40 wrong logins
at once (argon2 on server threads, the heaviest thing the web side does) and RSS 5 s after; the
peak is the high-water mark over all of it. Start-up is the median of ``--runs`` starts.

    .venv/bin/python bench/footprint.py [--modems 1,4,8] [--idle 30] [--runs 3]
        [--large /tmp/footprint-store-v4] [--tree /older/checkout] [--json out.json] [--scrape]

``--scrape`` (a tree with /metrics) also reads RSS after one ``/metrics`` scrape, which loads
``prometheus_client``.

``--tree`` runs the daemon from another checkout (before/after in one way of measuring): its
``gateway`` package comes first on the path, as with ``python -m`` run in that folder.

``--soak`` drives a day of use as fast as the daemon takes it (sends, texts from handsets, page
views, exports, logins, live streams held open: :func:`soak`) and reports RSS all along and at
the end; ``--soak-scale`` shrinks or grows the day, ``--soak-only sends,exports`` runs only those
kinds (to find which one takes the memory).

    .venv/bin/python bench/footprint.py --soak --modems 8 [--soak-scale 1.0] [--json out.json]

``--large`` names a folder holding a filled ``gateway.sqlite3`` of the current schema (from
tests/scale/fill.py, e.g. bench/store_pages.py's cache migrated once); it is copied for each run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOAK_HANDSET = "+15551239999"
TICK = os.sysconf("SC_CLK_TCK")
TREE = ROOT  # the checkout whose daemon is measured (--tree)


# -- the simulator child -------------------------------------------------------------------


def sim_child(modems: int) -> int:
    """Serve ``modems`` simulated modems; print each port as JSON, then ``{"ready": true}``,
    then ``{"first_at": <epoch seconds>}`` when the first AT line arrives on any port."""
    import signal

    from gateway.sim import Network
    from gateway.sim import modem as sim_modem

    seen = threading.Event()
    original = sim_modem.SimModem._on_line

    def on_line(self, raw: str) -> None:
        if not seen.is_set() and "AT" in raw.upper():
            seen.set()
            print(json.dumps({"first_at": time.time()}), flush=True)
        original(self, raw)

    sim_modem.SimModem._on_line = on_line
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    base = tempfile.mkdtemp(prefix="footprint-sim-")
    # The day texts 500 made-up numbers: the network gives each a handset.
    with Network(base, seed=1, status_report_delay=0, auto_handsets=True) as net:
        for _ in range(modems):
            net.add_modem(family="generic")
        net.add_handset(SOAK_HANDSET)
        for m in net.modems:
            print(json.dumps({"port": m.port, "imei": m.imei, "number": m.number}), flush=True)
        print(json.dumps({"ready": True}), flush=True)

        def commands() -> None:
            # One JSON line per text a handset sends: {"from", "to", "text"} (the soak's inbound).
            for line in sys.stdin:
                cmd = json.loads(line)
                net.send_from_handset(cmd["from"], cmd["to"], cmd["text"])

        threading.Thread(target=commands, name="commands", daemon=True).start()
        stop.wait()
    shutil.rmtree(base, ignore_errors=True)
    return 0


class Sim:
    """The simulator child; ``first_at`` is filled in when it reports."""

    def __init__(self, modems: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--sim-child", str(modems)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.modems: list[dict] = []
        self.first_at: float | None = None
        self._first = threading.Event()
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
            if "first_at" in obj:
                self.first_at = obj["first_at"]
                self._first.set()

    def wait_first_at(self, timeout: float) -> float | None:
        self._first.wait(timeout)
        return self.first_at

    def text(self, sender: str, to: str, text: str) -> None:
        """A handset texts one of the modems (inbound for the gateway)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"from": sender, "to": to, "text": text}) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- the daemon ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SCRAPE = False  # --scrape: also /metrics (allowed from loopback), RSS after one scrape


def write_config(folder: Path, modems: list[dict], port: int) -> Path:
    lines = [
        f"data_dir: {folder / 'data'}",
        "default_region: US",
        f"web: {{bind: 127.0.0.1, port: {port}}}",
        "modems:",
    ]
    for i, m in enumerate(modems):
        lines.append(f'  - {{id: m{i}, imei: "{m["imei"]}", port: "{m["port"]}"}}')
    ids = ", ".join(f"m{i}" for i in range(len(modems)))
    lines += [
        "short_codes:",
        f'  - {{code: "55123", name: Support, modems: [{ids}]}}',
        "retention: {nightly_backups: 0}",
        "modem_manager: {scan: []}",
    ]
    if SCRAPE:
        lines.append("metrics: {allow_loopback: true}")
    path = folder / "gateway.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])  # kB
            elif key == "Threads":
                out[key] = int(value)
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=1) as r:
            return r.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wrong_login(port: int) -> int:
    """GET /login for a session and its CSRF token, then POST a wrong password (an argon2
    check on a server thread); the POST's status."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}/login"
    try:
        with opener.open(base, timeout=30) as r:
            page = r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code  # refused at once (more than 10 requests from one address): no check
    except urllib.error.URLError:
        return 0  # the connection was dropped (a busy machine's backlog): no check
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    body = urllib.parse.urlencode(
        {"csrf_token": token.group(1) if token else "", "username": "admin", "password": "wrong"}
    ).encode()
    try:
        with opener.open(base, data=body, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0


def burst(port: int, clients: int = 40) -> None:
    """``clients`` wrong logins at once: the heaviest thing an idle gateway's web side does
    (each takes argon2's 19 MiB while it runs; at most two run at once)."""
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(wrong_login, [port] * clients))


def start_gateway(folder: Path, config: Path, port: int, poll: float) -> subprocess.Popen:
    """``gateway run`` with ``config``, its output in ``folder``/gateway.log, once its web app
    answers (checked every ``poll`` seconds; its log's end raised when it does not in 60 s)."""
    log = (folder / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "-c", str(config)],
        cwd=TREE,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not web_answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_gateway(proc)
            raise RuntimeError((folder / "gateway.log").read_text()[-3000:])
        time.sleep(poll)
    return proc


def stop_gateway(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def one_run(modems: int, idle: float, large: Path | None) -> dict:
    """Start a simulator and a daemon, time the start, measure, stop both."""
    sim = Sim(modems)
    folder = Path(tempfile.mkdtemp(prefix="footprint-"))
    proc = None
    try:
        port = free_port()
        config = write_config(folder, sim.modems, port)
        if large is not None:
            (folder / "data").mkdir()
            shutil.copy(large / "gateway.sqlite3", folder / "data" / "gateway.sqlite3")
        t0 = time.time()
        proc = start_gateway(folder, config, port, poll=0.005)
        ready = time.time() - t0
        first_at = sim.wait_first_at(10)
        result = {
            "modems": modems,
            "store": "large" if large else "empty",
            "first_at_s": (first_at - t0) if first_at else None,
            "ready_s": ready,
        }
        if idle > 0:
            time.sleep(5)  # modems finish their start-up
            status = proc_status(proc.pid)
            c0 = cpu_seconds(proc.pid)
            time.sleep(idle)
            c1 = cpu_seconds(proc.pid)
            result.update(
                rss_idle_mb=status["VmRSS"] / 1024,
                idle_cpu_pct=100 * (c1 - c0) / idle,
            )
            if SCRAPE:
                # The first scrape loads prometheus_client: the memory a scraped gateway holds.
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                    r.read()
                result["rss_after_scrape_mb"] = proc_status(proc.pid)["VmRSS"] / 1024
            burst(port)
            time.sleep(5)
            after_burst = proc_status(proc.pid)
            result.update(
                rss_after_burst_mb=after_burst["VmRSS"] / 1024,
                rss_peak_mb=after_burst["VmHWM"] / 1024,
                threads=after_burst["Threads"],
            )
        return result
    finally:
        if proc is not None:
            stop_gateway(proc)
        sim.close()
        shutil.rmtree(folder, ignore_errors=True)


# -- a day of use, fast ---------------------------------------------------------------------

SOAK_PAGES = [
    "/",
    "/inbox",
    "/agent",
    "/messages",
    "/messages?q=appointment",
    "/messages?direction=in",
    "/profiles",
    "/profiles?q=55",
    "/modems",
    "/settings",
    "/api/inbox",
    "/api/agent/queue",
]
SOAK_USERS = 6  # each holds SSE_PER_USER - 1 live streams through the soak


class Browser:
    """A logged-in user: a cookie jar over urllib."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.port = port
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        base = f"http://127.0.0.1:{port}/login"
        page = self.opener.open(base, timeout=30).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = {"csrf_token": token, "username": username, "password": password}
        self.opener.open(base, data=urllib.parse.urlencode(form).encode(), timeout=60).read()

    @property
    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def get(self, path: str) -> int:
        """GET a page and read it whole (an export streams to the end); its size in bytes, or
        -1 when the server answered 503 (more than 10 requests of this address at once: the
        soak's users all come from 127.0.0.1)."""
        try:
            with self.opener.open(f"http://127.0.0.1:{self.port}{path}", timeout=600) as r:
                size = 0
                while chunk := r.read(65536):
                    size += len(chunk)
                return size
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
            return -1


def hold_stream(port: int, cookie: str, stop: threading.Event, events: list[int]) -> None:
    """Keep one live stream (/api/events) open until ``stop``, reopening it when the server
    ends it (every 55 s); count the events read into ``events[0]``."""
    import http.client

    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/api/events", headers={"Cookie": cookie})
            resp = conn.getresponse()
            if resp.status != 200:
                stop.wait(1)
                continue
            while not stop.is_set():
                line = resp.fp.readline()
                if not line:
                    break
                if line.startswith(b"event: "):
                    events[0] += 1
        except OSError:
            stop.wait(0.5)
        finally:
            conn.close()


def soak(
    modems: int, scale: float, streams_per_user: int = 7, only: set[str] | None = None
) -> dict:
    """A day of a busy clinic's traffic, as fast as the daemon takes it, with RSS sampled all
    along: sends through the control socket, texts from handsets, page views by several
    users, CSV exports, logins right and wrong, and live streams held open throughout."""
    from gateway.control import request
    from gateway.store import Store

    day = {
        "sends": int(2000 * scale),
        "inbound": int(1000 * scale),
        "page_views": int(3000 * scale),
        "exports": int(40 * scale),
        "logins": int(100 * scale),
    }
    if only:  # one kind of traffic alone: which one takes the memory
        day = {k: (v if k in only else 0) for k, v in day.items()}
    sim = Sim(modems)
    folder = Path(tempfile.mkdtemp(prefix="footprint-soak-"))
    proc = None
    stop = threading.Event()
    try:
        port = free_port()
        config = write_config(folder, sim.modems, port)
        users = [(f"user{i}", f"soak-password-{i}") for i in range(SOAK_USERS)]
        store = Store.open(folder / "data")
        for name, password in users:
            store.users.add(name, password, role="admin")
        store.close()
        proc = start_gateway(folder, config, port, poll=0.05)
        time.sleep(5)  # the modems finish their start-up
        rss_start = proc_status(proc.pid)["VmRSS"] / 1024
        data_dir = folder / "data"
        memory_start = request(data_dir, "memory")  # where it is (gateway/diagnostics.py)
        peak = [rss_start]

        def sample() -> None:
            while not stop.wait(0.25):
                peak[0] = max(peak[0], proc_status(proc.pid)["VmRSS"] / 1024)

        threading.Thread(target=sample, daemon=True).start()
        browsers = [Browser(port, *u) for u in users]
        events = [0]
        streams = [
            threading.Thread(target=hold_stream, args=(port, b.cookie, stop, events), daemon=True)
            for b in browsers
            for _ in range(streams_per_user)
        ]
        for t in streams:
            t.start()
        numbers = [f"+1555200{i:04d}" for i in range(500)]
        started = time.monotonic()
        done = {k: 0 for k in day}
        done_lock = threading.Lock()
        errors: list[str] = []
        refused = [0]

        def count(kind: str) -> None:
            with done_lock:
                done[kind] += 1

        def sends() -> None:
            for i in range(day["sends"]):
                reply = request(
                    data_dir,
                    "send",
                    to=numbers[i % len(numbers)],
                    text=f"Reminder {i}: your appointment is tomorrow at 10:00.",
                )
                if not reply.get("ok"):
                    errors.append(f"send: {reply}")
                count("sends")

        def inbound() -> None:
            targets = [m["number"] for m in sim.modems]
            for i in range(day["inbound"]):
                sim.text(
                    numbers[i % len(numbers)],
                    targets[i % len(targets)],
                    f"Thanks, see you at the appointment {i}",
                )
                count("inbound")
                time.sleep(0.01)  # a handset's pace, not a flood: the soak is about memory

        def views(b: Browser, n: int) -> None:
            for i in range(n):
                if b.get(SOAK_PAGES[i % len(SOAK_PAGES)]) < 0:
                    refused[0] += 1
                count("page_views")

        def exports(b: Browser) -> None:
            for i in range(day["exports"]):
                if b.get("/profiles/export.csv" if i % 2 else "/messages/export.csv") < 0:
                    refused[0] += 1
                count("exports")

        def logins() -> None:
            for i in range(day["logins"]):
                name, password = users[i % len(users)]
                try:
                    Browser(port, name, password if i % 4 else "wrong password")
                except urllib.error.HTTPError as exc:
                    if exc.code not in (401, 429):  # wrong, or throttled: expected
                        errors.append(f"login: {exc.code}")
                count("logins")

        workers = [
            threading.Thread(target=sends),
            threading.Thread(target=inbound),
            threading.Thread(target=exports, args=(browsers[0],)),
            threading.Thread(target=logins),
            *[
                threading.Thread(target=views, args=(b, day["page_views"] // 3))
                for b in browsers[1:4]
            ],
        ]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        took = time.monotonic() - started
        rss_busy_end = proc_status(proc.pid)["VmRSS"] / 1024
        stop.set()
        time.sleep(5)  # streams closed, the daemon idle again
        end = proc_status(proc.pid)
        memory_end = request(data_dir, "memory", top=40)
        # What malloc_trim would give back now (a measure of the heaps' free pages).
        memory_trimmed = request(data_dir, "memory", top=0, trim=True)
        return {
            "memory_start": memory_start,
            "memory_end": memory_end,
            "memory_trimmed": memory_trimmed,
            "modems": modems,
            "day": done,
            "stream_events": events[0],
            "refused_503": refused[0],
            "errors": errors[:5],
            "seconds": took,
            "rss_start_mb": rss_start,
            "rss_peak_sampled_mb": peak[0],
            "rss_end_busy_mb": rss_busy_end,
            "rss_end_idle_mb": end["VmRSS"] / 1024,
            "vmhwm_mb": end["VmHWM"] / 1024,
            "threads": end["Threads"],
            "streams": len(streams),
        }
    finally:
        stop.set()
        if proc is not None:
            stop_gateway(proc)
        sim.close()
        shutil.rmtree(folder, ignore_errors=True)


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sim-child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--modems", default="1,4,8", help="modem counts (default 1,4,8)")
    p.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU (default 30)")
    p.add_argument("--runs", type=int, default=3, help="start-ups timed per count (default 3)")
    p.add_argument("--large", type=Path, help="folder with a filled gateway.sqlite3")
    p.add_argument("--large-only", action="store_true", help="skip the empty store")
    p.add_argument("--tree", type=Path, default=ROOT, help="checkout to run (default this one)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--scrape", action="store_true", help="also RSS after one /metrics scrape")
    p.add_argument("--soak", action="store_true", help="a day of use, fast (see soak())")
    p.add_argument("--soak-scale", type=float, default=1.0, help="of the day's traffic (1.0)")
    p.add_argument("--soak-streams", type=int, default=7, help="live streams per user (7)")
    p.add_argument("--soak-only", default="", help="e.g. sends,inbound: only these kinds")
    args = p.parse_args(argv)
    global TREE, SCRAPE
    TREE = args.tree.resolve()
    SCRAPE = args.scrape
    if args.sim_child is not None:
        return sim_child(args.sim_child)
    if args.soak:
        only = set(args.soak_only.split(",")) - {""}
        results = [
            soak(int(n), args.soak_scale, args.soak_streams, only) for n in args.modems.split(",")
        ]
        print(
            "| modems | day's traffic | took | RSS at start | RSS peak (sampled) | RSS at the "
            "end, busy | RSS 5 s later | VmHWM | threads |"
        )
        print("|" + " --- |" * 9)
        for r in results:
            d = r["day"]
            print(
                f"| {r['modems']} | {d['sends']} sends, {d['inbound']} inbound, "
                f"{d['page_views']} pages, {d['exports']} exports, {d['logins']} logins, "
                f"{r['streams']} streams ({r['stream_events']} events) | {r['seconds']:.0f} s "
                f"| {r['rss_start_mb']:.1f} MB | {r['rss_peak_sampled_mb']:.1f} MB | "
                f"{r['rss_end_busy_mb']:.1f} MB | {r['rss_end_idle_mb']:.1f} MB | "
                f"{r['vmhwm_mb']:.1f} MB | {r['threads']} |"
            )
            for when in ("memory_start", "memory_end", "memory_trimmed"):
                m = r.get(when) or {}
                heap = m.get("c_heap") or {}
                print(
                    f"{when}: RSS {m.get('rss', 0) / 2**20:.1f} MiB, C heap in use "
                    f"{heap.get('in_use', 0) / 2**20:.1f} MiB, free "
                    f"{heap.get('free', 0) / 2**20:.1f} MiB, mapped "
                    f"{heap.get('mapped', 0) / 2**20:.1f} MiB; SQLite "
                    f"{(m.get('sqlite_heap') or 0) / 2**20:.1f} MiB; store connections "
                    f"{m.get('store_connections')}; threads {m.get('thread_names')}"
                )
                resident = m.get("resident") or {}
                print(
                    "  resident: "
                    + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in resident.items())
                )
                traced = m.get("python_traced")  # with GATEWAY_TRACEMALLOC=N only
                if traced and when == "memory_end":
                    print(f"  Python traced now {traced['now'] / 2**20:.1f} MiB; grew most:")
                    for row in traced["top_growth"] or []:
                        print(
                            f"    {row['growth'] / 1024:+9.1f} KiB ({row['count']} blocks) "
                            f"{row['where']}"
                        )
            if r["errors"]:
                print("errors:", r["errors"])
            if r["refused_503"]:
                print(f"{r['refused_503']} page views refused with 503 (10 at once per address)")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return 0

    rows: list[dict] = []
    stores: list[Path | None] = [] if args.large_only else [None]
    stores += [args.large] if args.large else []
    for large in stores:
        for n in [int(x) for x in args.modems.split(",")]:
            # Runs beyond the first time the start-up only (the page cache is warm for all).
            runs = [one_run(n, args.idle, large)]
            runs += [one_run(n, 0, large) for _ in range(args.runs - 1)]
            row = dict(runs[0])
            row["first_at_s"] = median([r["first_at_s"] for r in runs if r["first_at_s"]])
            row["ready_s"] = median([r["ready_s"] for r in runs])
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)

    head = (
        "| store | modems | launch → first AT | launch → /login answers | RSS idle | RSS 5 s "
        "after 40 wrong logins | RSS peak | threads | idle CPU |"
    )
    print(head)
    print("|" + " --- |" * 9)
    for r in rows:

        def f(key: str, fmt: str, r: dict = r) -> str:
            return fmt.format(r[key]) if r.get(key) is not None else "-"

        print(
            f"| {r['store']} | {r['modems']} | {f('first_at_s', '{:.2f} s')} | "
            f"{f('ready_s', '{:.2f} s')} | {f('rss_idle_mb', '{:.1f} MB')} | "
            f"{f('rss_after_burst_mb', '{:.1f} MB')} | {f('rss_peak_mb', '{:.1f} MB')} | "
            f"{f('threads', '{}')} | {f('idle_cpu_pct', '{:.2f} %')} |"
        )
    if SCRAPE:
        for r in rows:
            print(
                f"RSS after a /metrics scrape, {r['modems']} modems: {r.get('rss_after_scrape_mb')}"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
