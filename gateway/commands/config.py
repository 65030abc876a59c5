"""``gateway config check FILE``: check a configuration file without starting anything."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..config import Config, ConfigError, load_config


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``config`` and its verb ``check``."""
    config = sub.add_parser("config", help="check a configuration file")
    verbs = config.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    check = verbs.add_parser(
        "check", help="print OK and a summary, or every problem with its line and key"
    )
    check.add_argument("file", metavar="FILE", help="the YAML configuration file")
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Check ``args.file``: 0 when it can be used, 1 when it has errors."""
    out = out or sys.stdout
    try:
        config = load_config(args.file, log_warnings=False)  # printed below
    except ConfigError as exc:
        for issue in exc.issues:
            out.write(f"{issue}\n")
        count = len(exc.issues)
        out.write(f"{args.file}: {count} error{'s' if count != 1 else ''}\n")
        return 1
    out.write(f"{args.file}: OK\n")
    for line in summary(config):
        out.write(f"  {line}\n")
    for warning in config.warnings:
        out.write(f"warning: {warning}\n")
    return 0


def summary(config: Config) -> list[str]:
    """A few lines saying what the configuration sets up."""
    lines = [f"data dir: {config.data_dir}"]
    scheme = "https" if config.web.https else "http"
    lines.append(f"web: {scheme}://{config.web.bind}:{config.web.port}/")
    modems = ", ".join(
        modem.id + (f" ({modem.label})" if modem.label else "") for modem in config.modems
    )
    lines.append(f"modems: {len(config.modems)}" + (f": {modems}" if modems else ""))
    lines.append(f"short codes: {len(config.short_codes)}")
    for short in config.short_codes:
        lines.append(f"  {short.code} {short.name}: {', '.join(short.modems)}")
    if config.simulator is not None:
        sim = config.simulator
        lines.append(f"simulator: {len(sim.modems)} modems, {len(sim.handsets)} handsets")
    if config.demo is not None:
        demo = config.demo
        lines.append(
            f"demo: {len(demo.profiles)} profiles, {len(demo.conversations)} conversations"
        )
    return lines
