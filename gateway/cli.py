"""The ``gateway`` command: one subcommand group per module in :mod:`gateway.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from . import __version__

# Each module exposes register(subparsers); the list is explicit so that a typo is an
# ImportError at start, not a silently absent command.
COMMAND_MODULES = [
    "gateway.commands.sms",
    "gateway.commands.config",
    "gateway.commands.daemon",
    "gateway.commands.ops",
    "gateway.commands.sim",
    "gateway.commands.modem",
    "gateway.commands.keyword",
    "gateway.commands.broadcast",
    "gateway.commands.token",
    "gateway.commands.webhook",
]

# Which module registers each command (tests/test_cli_lazy.py checks it against what the modules
# register). A command named on the command line loads its own module only: `gateway run` does
# not import the simulator and the other commands' modules, which took ~0.1 s of every start
# and several MB of the daemon's resident memory. `gateway --help` and unknown commands load
# them all.
COMMANDS = {
    "sms": "gateway.commands.sms",
    "config": "gateway.commands.config",
    "run": "gateway.commands.daemon",
    "demo": "gateway.commands.daemon",
    "send": "gateway.commands.ops",
    "modems": "gateway.commands.ops",
    "memory": "gateway.commands.ops",
    "user": "gateway.commands.ops",
    "backup": "gateway.commands.ops",
    "restore": "gateway.commands.ops",
    "sim": "gateway.commands.sim",
    "modem": "gateway.commands.modem",
    "keyword": "gateway.commands.keyword",
    "broadcast": "gateway.commands.broadcast",
    "token": "gateway.commands.token",
    "webhook": "gateway.commands.webhook",
}


DAEMON_COMMANDS = ("run", "demo")  # the long-running ones: started with the allocator's settings


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand, or with only the module of
    ``command`` when it is a known one."""
    parser = argparse.ArgumentParser(
        prog="gateway", description="SMS gateway appliance: modems, store and web app."
    )
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (repeat for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    names = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    for name in names:
        importlib.import_module(name).register(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option (the top-level
    options take no values)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = _command(args_list)
    if argv is None and command in DAEMON_COMMANDS and not {"-h", "--help"} & set(args_list):
        from .memory import restart_with_tunables

        # First, before the command's module is imported (0.1 s): the daemon runs with
        # glibc's per-thread caches off, a setting glibc reads at exec only (gateway/memory.py).
        restart_with_tunables()
    parser = build_parser(command)
    args = parser.parse_args(args_list)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
