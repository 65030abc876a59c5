"""Inbound latency: how fast an SMS a handset sends is stored, and how fast it reaches an open
chat window.

One process runs the daemon (``Daemon`` with the simulator inside, its web app on a free port)
and a browser stand-in: a user logged in over HTTP with ``/api/events`` open, the live stream
every open chat window, Inbox and Agent View listens to (each page keeps the events of its
profile). For each of ``--messages`` texts, one at a time, a handset sends it to a modem and
four moments are taken:

- ``sent``: the handset hands it to the simulated network;
- ``cmti``: the simulated modem writes ``+CMTI`` (new message stored on the SIM) to the gateway;
- ``stored``: the gateway has committed the message (its ``message.new`` event is published
  after the commit, read from the event bus);
- ``stream``: the ``message.new`` event of that message has arrived on the browser's stream
  (read from the socket by the stand-in, parsed as the page's script would).

Rows: +CMTI -> stored (the gateway's inbound path: read the PDU, commit, process), +CMTI ->
stream, and sent -> stream (end to end, the simulated network included), each p50, p90, p99 and
max in milliseconds. ``--gap`` seconds between texts (a handset typing, not a flood);
``--burst`` sends that many at once per round instead of one (the pick-up under load).

    .venv/bin/python bench/inbound.py [--messages 300] [--gap 0.05] [--modems 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import json
import re
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from gateway.config import load_config
from gateway.daemon import Daemon
from gateway.sim import modem as sim_modem
from gateway.store import Store

USER = ("bench", "bench-password-1")
HANDSET = "+15551230001"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, modems: int, port: int) -> Path:
    imeis = [f"35123456{i:07d}" for i in range(modems)]
    ids = ", ".join(f"m{i}" for i in range(modems))
    lines = [
        f"data_dir: {folder / 'data'}",
        "default_region: US",
        f"web: {{bind: 127.0.0.1, port: {port}}}",
        "modems:",
        *[f'  - {{id: m{i}, imei: "{imei}"}}' for i, imei in enumerate(imeis)],
        "short_codes:",
        f'  - {{code: "55123", name: Support, modems: [{ids}]}}',
        "retention: {nightly_backups: 0}",
        "simulator:",
        "  seed: 1",
        "  status_report_delay: 0",
        "  modems:",
        *[
            f'    - {{imei: "{imei}", number: "+1555010{i:04d}", family: generic}}'
            for i, imei in enumerate(imeis)
        ],
        "  handsets:",
        f'    - {{number: "{HANDSET}", name: Alice}}',
    ]
    path = folder / "gateway.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Stream:
    """A logged-in browser's ``/api/events``: the arrival time of each ``message.new`` event,
    by message body. Reopened when the server ends it (every 55 s)."""

    def __init__(self, port: int) -> None:
        self.port = port
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        base = f"http://127.0.0.1:{port}"
        page = opener.open(f"{base}/login", timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = {"csrf_token": token, "username": USER[0], "password": USER[1]}
        opener.open(f"{base}/login", data=urllib.parse.urlencode(form).encode(), timeout=30)
        self.cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        self.arrived: dict[str, float] = {}
        self.opened = threading.Event()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="bench-stream", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", "/api/events", headers={"Cookie": self.cookie})
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"/api/events answered {resp.status}")
            kind = None
            while not self._stop.is_set():
                line = resp.fp.readline()
                if not line:
                    break  # the server ended the stream: reopen
                text = line.decode().rstrip("\n")
                if text == ": connected":
                    self.opened.set()
                elif text.startswith("event: "):
                    kind = text[7:]
                elif text.startswith("data: ") and kind == "message.new":
                    at = time.perf_counter()
                    data = json.loads(text[6:])
                    with self._cond:
                        self.arrived[data.get("body", "")] = at
                        self._cond.notify_all()
            conn.close()

    def wait_for(self, body: str, timeout: float) -> float | None:
        with self._cond:
            self._cond.wait_for(lambda: body in self.arrived, timeout)
            return self.arrived.get(body)

    def close(self) -> None:
        self._stop.set()


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}

    def pick(q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": values[-1]}


def run(messages: int, gap: float, modems: int, burst: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    port = free_port()
    config = load_config(write_config(folder, modems, port))
    store = Store.open(config.data_dir)
    store.users.add(*USER, role="agent")
    store.close()

    cmti: dict[int, list[float]] = {}  # by modem object id: the times of its +CMTI lines
    original = sim_modem.SimModem.urc

    def urc(self, *lines: str) -> None:
        if any(line.startswith("+CMTI") for line in lines):
            cmti.setdefault(id(self), []).append(time.perf_counter())
        original(self, *lines)

    sim_modem.SimModem.urc = urc
    daemon = Daemon(config)
    stored: dict[str, float] = {}
    stored_cond = threading.Condition()
    sub = daemon.services.events.subscribe(maxsize=100_000)

    def follow() -> None:
        while True:
            ev = sub.get(timeout=None)
            if ev is None:
                return
            if ev.kind == "message.new" and ev.data.get("direction") == "in":
                with stored_cond:
                    stored[ev.data["body"]] = time.perf_counter()
                    stored_cond.notify_all()

    threading.Thread(target=follow, name="bench-bus", daemon=True).start()
    daemon.start()
    try:
        net = daemon.services.simulator.network
        manager = daemon.services.manager
        deadline = time.monotonic() + 30
        while not all(s.state == "up" for s in manager.statuses()):
            if time.monotonic() > deadline:
                raise RuntimeError("the modems did not come up")
            time.sleep(0.05)
        stream = Stream(port)
        if not stream.opened.wait(10):
            raise RuntimeError("the live stream did not open")
        rows: list[dict] = []
        targets = [m for m in net.modems]
        for n in range(0, messages, burst):
            batch = []
            for k in range(n, min(messages, n + burst)):
                modem = targets[k % len(targets)]
                body = f"bench inbound {k}"
                seen = len(cmti.get(id(modem), []))
                t_sent = time.perf_counter()
                net.send_from_handset(HANDSET, modem.number, body)
                batch.append((body, modem, seen, t_sent))
            for body, modem, seen, t_sent in batch:
                t_stream = stream.wait_for(body, 10)
                with stored_cond:
                    stored_cond.wait_for(lambda b=body: b in stored, 10)
                    t_stored = stored.get(body)
                times = cmti.get(id(modem), [])
                t_cmti = times[seen] if len(times) > seen else None
                rows.append(
                    {"sent": t_sent, "cmti": t_cmti, "stored": t_stored, "stream": t_stream}
                )
            if gap:
                time.sleep(gap)
        stream.close()
    finally:
        sub.close()
        daemon.stop()
        sim_modem.SimModem.urc = original

    def ms(a: str, b: str) -> list[float]:
        return [1000 * (r[b] - r[a]) for r in rows if r[a] is not None and r[b] is not None]

    lost = sum(1 for r in rows if r["stream"] is None)
    return {
        "messages": messages,
        "modems": modems,
        "burst": burst,
        "lost_on_stream": lost,
        "cmti_to_stored_ms": percentiles(ms("cmti", "stored")),
        "cmti_to_stream_ms": percentiles(ms("cmti", "stream")),
        "sent_to_stream_ms": percentiles(ms("sent", "stream")),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=300, help="texts sent (default 300)")
    p.add_argument("--gap", type=float, default=0.05, help="seconds between rounds (0.05)")
    p.add_argument("--modems", type=int, default=1, help="simulated modems (default 1)")
    p.add_argument("--burst", type=int, default=1, help="texts sent at once per round (1)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    result = run(args.messages, args.gap, args.modems, args.burst)
    print(
        f"inbound latency: {result['messages']} texts, {result['modems']} modem(s), "
        f"{result['burst']} at once; {result['lost_on_stream']} not seen on the stream"
    )
    print("| path | p50 | p90 | p99 | max |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key, name in (
        ("cmti_to_stored_ms", "+CMTI -> stored (committed, event published)"),
        ("cmti_to_stream_ms", "+CMTI -> event on the browser's live stream"),
        ("sent_to_stream_ms", "handset sends -> event on the browser's live stream"),
    ):
        q = result[key]
        print(
            f"| {name} | {q['p50']:.1f} ms | {q['p90']:.1f} ms | {q['p99']:.1f} ms | "
            f"{q['max']:.1f} ms |"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
