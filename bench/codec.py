"""Encode and decode throughput of our PDU codec against python-gsmmodem-new's ``gsmmodem.pdu``.

Same texts for both: GSM-7 short, GSM-7 multipart, UCS-2 without emoji (theirs crashes on emoji).
A message is all of its parts. Prints a table of messages per second and the ratio ours/theirs.

    .venv/bin/python bench/codec.py [--seconds 0.2]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.modem import pdu

try:
    from gsmmodem import pdu as theirs
except ImportError:  # pragma: no cover - the baseline is a test extra
    sys.exit("python-gsmmodem-new is not installed: pip install -e '.[test]'")

NUMBER = "+447700900123"
TEXTS = {
    "GSM-7 short": "Your code is 482913. It expires in 10 minutes.",
    "GSM-7 multipart": (
        "Dear customer, your order #55123 has shipped and will arrive on Monday between 9:00 and "
        "12:00. Track it at example.com/t/55123 or reply HELP for help, STOP to opt out. "
    )
    * 2,
    "UCS-2 short": "Здравствуйте! Ваш заказ отправлен, номер 55123.",
    "UCS-2 multipart": "Здравствуйте! Ваш заказ №55123 отправлен и прибудет в понедельник. " * 3,
}


def _batch(func: Callable[[], object], seconds: float) -> int:
    """How many calls of ``func`` take about ``seconds``."""
    calls = 1
    while True:
        start = time.process_time()
        for _ in range(calls):
            func()
        elapsed = time.process_time() - start
        if elapsed > seconds / 10:
            return max(1, int(calls * seconds / elapsed))
        calls *= 2


def rates(ours: Callable[[], object], theirs: Callable[[], object], seconds: float) -> tuple:
    """Calls per second of each, best of five interleaved runs.

    CPU time of this process (not wall time) and alternating runs keep other load on the
    machine from favouring one side.
    """
    batches = (_batch(ours, seconds), _batch(theirs, seconds))
    best = [0.0, 0.0]
    for _ in range(5):
        for i, func in enumerate((ours, theirs)):
            start = time.process_time()
            for _ in range(batches[i]):
                func()
            elapsed = max(time.process_time() - start, 1e-9)
            best[i] = max(best[i], batches[i] / elapsed)
    return best[0], best[1]


def _cases() -> list[tuple[str, str, Callable[[], object], Callable[[], object]]]:
    cases = []
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    for name, text in TEXTS.items():
        # Same reference and no status report in both, so the PDUs are comparable.
        ours_parts = pdu.encode_submit(NUMBER, text, reference=7)
        their_parts = theirs.encodeSmsSubmitPdu(
            NUMBER, text, reference=0, requestStatusReport=False
        )
        assert len(ours_parts) == len(their_parts), name
        cases.append(
            (
                "encode",
                name,
                lambda t=text: pdu.encode_submit(NUMBER, t, reference=7),
                lambda t=text: theirs.encodeSmsSubmitPdu(
                    NUMBER, t, reference=0, requestStatusReport=False
                ),
            )
        )
        hexes = pdu.encode_deliver(NUMBER, text, timestamp=when, reference=7)
        assert "".join(theirs.decodeSmsPdu(h)["text"] for h in hexes) == text, name
        cases.append(
            (
                "decode",
                name,
                lambda hs=hexes: [pdu.decode(h) for h in hs],
                lambda hs=hexes: [theirs.decodeSmsPdu(h) for h in hs],
            )
        )
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.2, help="CPU time per run")
    args = parser.parse_args(argv)
    print(f"{'operation':<8} {'text':<16} {'ours msg/s':>11} {'theirs msg/s':>13} {'ratio':>6}")
    worst = float("inf")
    for op, name, ours_fn, theirs_fn in _cases():
        ours_rate, theirs_rate = rates(ours_fn, theirs_fn, args.seconds)
        ratio = ours_rate / theirs_rate
        worst = min(worst, ratio)
        print(f"{op:<8} {name:<16} {ours_rate:>11,.0f} {theirs_rate:>13,.0f} {ratio:>5.2f}x")
    print(f"slowest ratio: {worst:.2f}x (ours / theirs; above 1 means ours is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
