"""``gateway sim``: run the serial simulator: virtual modems on ptys (or one on a real serial
device) and handsets, with a JSON control API on loopback, until SIGINT or SIGTERM.

Output (stdout, one JSON object per line, a stable interface): one line per modem
``{"port", "imei", "iccid", "number", "family"}``, one per handset ``{"number"}``, then
``{"control": "http://127.0.0.1:PORT"}``. Routes of the control API: gateway.sim.control.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from typing import Any

from ..sim import FAMILIES, ControlServer, Network, SimControl, SimError
from ..sim.handset import check_report_delay
from ..sim.network import DEFAULT_REPORT_DELAY


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sim``."""
    p = sub.add_parser(
        "sim",
        help="serve simulated modems on ptys (or a serial device) with a control API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--modems", type=int, default=1, metavar="N", help="modems (default 1)")
    p.add_argument("--handsets", type=int, default=1, metavar="N", help="handsets (default 1)")
    p.add_argument(
        "--control-port", type=int, default=0, metavar="P", help="control API port (0: any free)"
    )
    p.add_argument("--dir", metavar="D", help="folder for by-id/ links (default: a temp folder)")
    p.add_argument(
        "--family",
        default="generic",
        metavar="F",
        help=f"modem family, or a comma-separated list used in turn ({', '.join(FAMILIES)})",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for everything random")
    p.add_argument("--device", metavar="PATH", help="serve ONE modem on this serial device")
    p.add_argument("--baudrate", type=int, default=115200, help="for --device (default 115200)")
    p.add_argument("--command-latency", type=float, default=0.0, metavar="S")
    p.add_argument("--send-latency", type=float, default=0.0, metavar="S")
    p.add_argument(
        "--auto-handsets",
        action="store_true",
        help="a text to a number no handset has creates one (default: it fails with a "
        "'not obtainable' status report, as on a real network)",
    )
    p.add_argument(
        "--report-delay",
        type=_report_delay,
        default=DEFAULT_REPORT_DELAY,
        metavar="S|MIN-MAX",
        help="seconds from a delivery to its status report, fixed or a range "
        "(default 1-3, as on real networks; 0: at once)",
    )


def _report_delay(value: str) -> tuple[float, float]:
    """``2`` or ``1-3`` as (shortest, longest) seconds, for --report-delay."""
    low, sep, high = value.partition("-")
    try:
        pair = (float(low), float(high)) if sep else float(low)
        return check_report_delay(pair)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give seconds (2) or a range (1-3), each 0 or more ({exc})"
        ) from None


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def run(args: argparse.Namespace) -> int:
    """Start the network, print what it holds, serve until a signal; 0 on a clean stop."""
    families = [f.strip() for f in args.family.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if not families or unknown:
        print(
            f"gateway sim: unknown family {unknown or args.family!r}; known: {', '.join(FAMILIES)}",
            file=sys.stderr,
        )
        return 2
    if args.modems < 0 or args.handsets < 0:
        print("gateway sim: --modems and --handsets must be 0 or more", file=sys.stderr)
        return 2
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    base = args.dir or tempfile.mkdtemp(prefix="gateway-sim-")
    try:
        with Network(
            base,
            seed=args.seed,
            status_report_delay=args.report_delay,
            auto_handsets=args.auto_handsets,
        ) as net:
            options = {
                "command_latency": args.command_latency,
                "send_latency": args.send_latency,
            }
            if args.device:
                net.add_modem(
                    family=families[0], device=args.device, baudrate=args.baudrate, **options
                )
            else:
                for i in range(args.modems):
                    net.add_modem(family=families[i % len(families)], **options)
            for i in range(args.handsets):
                net.add_handset(f"+1555123{i + 1:04d}")
            for m in net.modems:
                _emit({k: m.summary()[k] for k in ("port", "imei", "iccid", "number", "family")})
            for h in net.handsets:
                _emit({"number": h.number})
            server = ControlServer(SimControl(net), "127.0.0.1", args.control_port).start()
            try:
                _emit({"control": server.url})
                stop.wait()
            finally:
                server.close()
    except (SimError, OSError) as exc:
        print(f"gateway sim: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.commands.sim``: the same command without the gateway CLI."""
    parser = argparse.ArgumentParser(prog="gateway sim", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
