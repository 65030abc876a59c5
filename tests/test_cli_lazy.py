"""The CLI loads only the module of the command it runs: the table that says which module
registers which command must match what the modules register, and ``gateway run`` must not
import the simulator or the web app before it needs them (start-up time and the daemon's memory)."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from gateway import cli


def _registered(module: str) -> set[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    importlib.import_module(module).register(sub)
    return set(sub.choices)


def test_command_table_matches_the_modules():
    for module in cli.COMMAND_MODULES:
        table = {c for c, m in cli.COMMANDS.items() if m == module}
        assert _registered(module) == table, module
    assert set(cli.COMMANDS.values()) == set(cli.COMMAND_MODULES)


def test_full_parser_knows_every_command():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(cli.COMMANDS)


def test_command_word_skips_top_level_options():
    assert cli._command(["-v", "-v", "run", "-c", "x.yaml"]) == "run"
    assert cli._command(["--help"]) is None


def test_run_parser_does_not_load_the_simulator_or_the_web_app():
    code = (
        "import sys; from gateway import cli; cli.build_parser('run');"
        "names = ('gateway.sim', 'gateway.commands.sim', 'flask');"
        "print(sorted(m for m in names if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_daemon_loads_neither_flask_before_it_starts_nor_emoji_for_a_text_with_colons():
    """``gateway run`` imports its command module and the daemon before the modems start: no
    Flask yet (the web app loads while the store is checked). A text with a time of day or a
    "Note:" has no ``:name:`` shortcode and must not load the emoji tables (8 MB resident for
    good); one with ``:thumbsup:`` still becomes 👍."""
    code = (
        "import sys; import gateway.commands.daemon; import gateway.daemon;"
        "from gateway.messaging.outbound import expand_emoji;"
        "before = sorted(m for m in ('flask', 'emoji') if m in sys.modules);"
        "same = expand_emoji('Reminder 5: your appointment is at 10:00. Note: bring it');"
        "loaded = 'emoji' in sys.modules;"
        "print(before, loaded, same.endswith('bring it'), expand_emoji('ok :thumbsup:'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] False True ok 👍"
