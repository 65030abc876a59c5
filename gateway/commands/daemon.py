"""``gateway run`` and ``gateway demo``: the long-running process."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ConfigError, load_config
from ..control import ControlError
from ..store import StoreDamaged, StoreError

if TYPE_CHECKING:
    from ..daemon import Daemon

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "/etc/gateway/gateway.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the gateway (modems, store, web app)")
    run.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo", help="run the gateway with simulated modems and demo data (no hardware)"
    )
    demo.add_argument("--port", type=int, default=8080, help="web port (default 8080)")
    demo.add_argument(
        "--data-dir", default="var/demo", help="where the demo keeps its data (default var/demo)"
    )
    demo.add_argument("--bind", default="127.0.0.1", help="web address (default 127.0.0.1)")
    demo.set_defaults(func=cmd_demo)


def _run(config, *, demo: bool) -> int:
    from .. import diagnostics, memory

    memory.tune()  # before the daemon's threads exist: their arenas are made as they allocate
    diagnostics.start_tracing()  # GATEWAY_TRACEMALLOC=N only: a debugging aid
    from ..daemon import Daemon, DaemonError
    from ..web.errors import WebServerError  # not the server: Flask loads after the modems

    try:
        daemon = Daemon(
            config,
            demo=demo,
            on_started=_print_demo_banner if demo else None,
            whole_process=True,
        )
        daemon.run_forever()
    except StoreDamaged as exc:
        source = str(config.source) if config.source is not None else None
        print(f"gateway: not started: {exc.advice(source)}", file=sys.stderr)
        return 1
    except (DaemonError, StoreError, WebServerError, ControlError) as exc:
        print(f"gateway: not started: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # Name the file when the error has one (a socket or folder in the data directory).
        where = f" ({exc.filename})" if exc.filename else f" (data directory {config.data_dir})"
        print(f"gateway: not started: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return _run(config, demo=False)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import demo_config_path

    path = demo_config_path()
    try:
        config = load_config(path, data_dir=Path(args.data_dir).resolve())
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    web = dataclasses.replace(config.web, port=args.port, bind=args.bind)
    config = dataclasses.replace(config, web=web)
    return _run(config, demo=True)


def _print_demo_banner(daemon: Daemon) -> None:
    demo = daemon.config.demo
    lines = [
        "",
        "  SMS gateway demo is running.",
        f"  Web app:    {daemon.web_server.url}",
        f"  Log in as:  {demo.admin_user} / {demo.admin_password}",
    ]
    sim = daemon.services.simulator
    if sim is not None and sim.server is not None:
        lines.append(f"  Simulator:  {sim.server.url}  (JSON control API)")
    lines.append(f"  Data:       {daemon.config.data_dir}")
    lines += ["  Stop with Ctrl+C.", ""]
    print("\n".join(lines), flush=True)
