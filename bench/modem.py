"""Messages per second through a driver and the simulator with zero latency: our ``Modem`` against
python-gsmmodem-new's ``GsmModem``, both sending single-part texts over a pty to the same
simulated modem.

The simulator runs in its own process (``gateway sim``), so it does not compete with the driver
for this process's GIL; it answers every command at once (no command or send latency), so what
is measured is the driver: its framing of commands, the ``> `` prompt, reading the answer.

Rows: our ``Modem.send_pdu`` of a PDU encoded once; our ``Modem.send_text`` (encode and send, as
``sendSms`` does); their ``GsmModem.sendSms``. The ratio is each row against theirs. Wall-clock
rate of ``--messages`` sends, best of ``--runs`` interleaved runs; each driver has its own
simulated modem in the same simulator process. No status reports on either side (theirs
always asks for one; its +CNMI is set so that the modem drops them, see :func:`theirs`).

    .venv/bin/python bench/modem.py [--messages 300] [--runs 5] [--family generic]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from gateway.modem import pdu
from gateway.modem.device import Modem, ModemSettings

try:
    from gsmmodem.modem import GsmModem
except ImportError:  # pragma: no cover - the baseline is a test extra
    sys.exit("python-gsmmodem-new is not installed: pip install -e '.[test]'")

TEXT = "Your code is 482913. It expires in 10 minutes."


class Simulator:
    """``gateway sim`` in a child process: two modems on ptys (one per driver) and one handset."""

    def __init__(self, family: str, folder: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "sim",
                "--modems",
                "2",
                "--handsets",
                "1",
                "--family",
                family,
                "--dir",
                folder,
                "--control-port",
                "0",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        lines = [json.loads(self.proc.stdout.readline()) for _ in range(4)]
        self.ports: list[str] = [lines[0]["port"], lines[1]["port"]]
        self.peer: str = lines[2]["number"]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def rate(send: Callable[[], object], messages: int) -> float:
    """Messages per second of ``messages`` sends, wall clock."""
    start = time.perf_counter()
    for _ in range(messages):
        send()
    return messages / (time.perf_counter() - start)


def measure(sim: Simulator, messages: int, runs: int) -> dict[str, float]:
    """Best rate of each driver; runs interleaved so that other load on the machine hits all."""
    settings = ModemSettings(command_timeout=5.0, retry_delay=0.05)
    ours = Modem(sim.ports[0], settings)
    ours.open()
    theirs = GsmModem(sim.ports[1], 115200, requestDelivery=False)
    theirs.connect()
    # sendSms sets the status-report-request bit whatever requestDelivery says; its handler of
    # the +CDSI that follows then reads and deletes from its reader thread, in the middle of the
    # next send (and fails there: +CMS ERROR 304). Same conditions as ours: no reports.
    theirs.write("AT+CNMI=2,1,0,0,0")
    (part,) = pdu.encode_submit(sim.peer, TEXT)
    senders: dict[str, Callable[[], object]] = {
        "ours: Modem.send_pdu (PDU encoded once)": lambda: ours.send_pdu(part.pdu, part.length),
        "ours: Modem.send_text (encode + send)": lambda: ours.send_text(
            sim.peer, TEXT, status_report=False
        ),
        "python-gsmmodem-new: GsmModem.sendSms": lambda: theirs.sendSms(sim.peer, TEXT),
    }
    best = dict.fromkeys(senders, 0.0)
    try:
        for send in senders.values():
            rate(send, 10)  # warm-up
        for _ in range(runs):
            for name, send in senders.items():
                best[name] = max(best[name], rate(send, messages))
    finally:
        ours.close()
        theirs.close()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="sends per run")
    parser.add_argument("--runs", type=int, default=5, help="runs; the best counts")
    parser.add_argument("--family", default="generic", help="simulated modem family")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        sim = Simulator(args.family, folder)
        try:
            rates = measure(sim, args.messages, args.runs)
        finally:
            sim.close()
    their_rate = rates["python-gsmmodem-new: GsmModem.sendSms"]

    print(f"single-part sends, {args.family} simulator, zero latency, best of {args.runs} runs")
    print(f"| {'driver':<42} | {'msg/s':>7} | {'ratio':>6} |")
    print(f"| {'-' * 42} | {'-' * 7}:| {'-' * 6}:|")
    for name, value in rates.items():
        print(f"| {name:<42} | {value:>7,.0f} | {value / their_rate:>5.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
