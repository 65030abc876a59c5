"""The gateway's configuration: one YAML file turned into typed, frozen dataclasses.

Every problem in the file is reported with the file name, the line and the dotted key path
(``gateway.yaml line 14, modems[1].rate_limit.per_minute: expected a whole number ≥ 0, got
"ten"``), and all problems are collected into one :class:`ConfigError` rather than stopping at
the first. The documented example is ``config/gateway.example.yaml``; the key reference is
``docs/config.md``.

The package has one job per module:

- :mod:`.schema`: the sections and their keys, each declared once (type, default, reader);
- :mod:`.reader`: a generic reader of YAML nodes into those dataclasses, keeping lines;
- :mod:`.values`: readers of the gateway's own kinds of value (phone numbers, PINs, zones);
- :mod:`.rules`: checks that combine keys, within a section and across sections;
- this module: loading a file, and the names the rest of the gateway imports.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import Node

from .errors import ConfigError, ConfigIssue
from .reader import Bad, Context, Reported, keys, mapping
from .rules import SECTION_CHECKS, check_references
from .schema import (
    DEFAULT_DATA_DIR,
    DEFAULT_HELP_REPLY,
    DEFAULT_OOPS_REPLY,
    DEFAULT_OPT_IN_REPLY,
    DEFAULT_OPT_OUT_REPLY,
    REPLY_PLACEHOLDERS,
    SIM_FAMILIES,
    AgentConfig,
    CannedResponse,
    Config,
    DemoConfig,
    DemoConversation,
    DemoMessage,
    DemoProfile,
    Keywords,
    ManagerConfig,
    MessagesConfig,
    MetricsConfig,
    ModemConfig,
    QuietHours,
    RateLimit,
    Replies,
    RetentionConfig,
    RoutingConfig,
    ShortCodeConfig,
    SimHandsetConfig,
    SimModemConfig,
    SimulatorConfig,
    WebConfig,
    WebhookConfig,
    WebhookDeliveryConfig,
)

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_HELP_REPLY",
    "DEFAULT_OOPS_REPLY",
    "DEFAULT_OPT_IN_REPLY",
    "DEFAULT_OPT_OUT_REPLY",
    "REPLY_PLACEHOLDERS",
    "SIM_FAMILIES",
    "AgentConfig",
    "CannedResponse",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "DemoConfig",
    "DemoConversation",
    "DemoMessage",
    "DemoProfile",
    "Keywords",
    "ManagerConfig",
    "MessagesConfig",
    "MetricsConfig",
    "ModemConfig",
    "QuietHours",
    "RateLimit",
    "Replies",
    "RetentionConfig",
    "RoutingConfig",
    "ShortCodeConfig",
    "SimHandsetConfig",
    "SimModemConfig",
    "SimulatorConfig",
    "WebConfig",
    "WebhookConfig",
    "WebhookDeliveryConfig",
    "default_config",
    "load_config",
    "parse_config",
]

log = logging.getLogger(__name__)


def load_config(
    path: str | Path, *, data_dir: str | Path | None = None, log_warnings: bool = True
) -> Config:
    """Read and check the configuration file at ``path``; raise :class:`ConfigError` if wrong.

    Relative paths in the file are resolved against the file's folder. ``data_dir`` overrides the
    file's ``data_dir`` (``gateway demo --data-dir``); paths that default to places inside the
    data directory follow it. Warnings are kept in ``Config.warnings`` and, unless
    ``log_warnings`` is false (a caller that shows them itself), logged.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(name, None, "", f"cannot read the file: {exc}")]) from exc
    if _holds_nothing(text):
        # Most likely a file truncated or never filled in: starting on defaults would run a
        # gateway with no modems, in a data directory nobody chose.
        raise ConfigError(
            [
                ConfigIssue(
                    name,
                    None,
                    "",
                    "the file is empty (or only comments): it configures nothing, and the "
                    "gateway does not start on defaults it was not given; start from "
                    "config/gateway.example.yaml (at least data_dir, modems and short_codes)",
                )
            ]
        )
    config = parse_config(
        text, name, base_dir=Path(path).expanduser().resolve().parent, data_dir=data_dir
    )
    config = dataclasses.replace(config, source=Path(path))
    if log_warnings:
        for warning in config.warnings:
            log.warning("%s", warning)
    return config


def _holds_nothing(text: str) -> bool:
    """Whether a YAML text sets nothing at all (empty, blank, only comments, or a null
    document). Broken YAML is parse_config's to report, with its line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return False
    # "---" alone (or "~", "null") is a document holding null: nothing either.
    return root is None or (
        isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"
    )


def parse_config(
    text: str,
    source: str = "<string>",
    *,
    base_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> Config:
    """Check configuration ``text``; ``source`` names it in errors.

    Relative paths are resolved against ``base_dir`` (default: the current folder).
    ``data_dir`` overrides the text's ``data_dir`` as in :func:`load_config`.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    ctx = Context(source, base.expanduser().resolve(), SECTION_CHECKS)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = f"not valid YAML: {exc.problem or exc.context}"
        raise ConfigError([ConfigIssue(source, line, "", problem)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(source, None, "", f"not valid YAML: {exc}")]) from exc
    except RecursionError:
        # PyYAML composes nested collections recursively; no configuration nests past a few.
        problem = "nested too deeply to be a configuration"
        raise ConfigError([ConfigIssue(source, None, "", problem)]) from None
    config = _read_config(ctx, root, Path(data_dir) if data_dir is not None else None)
    if ctx.errors or config is None:
        raise ConfigError(sorted(ctx.errors, key=lambda issue: issue.line or 0))
    return dataclasses.replace(config, warnings=tuple(ctx.warnings))


def default_config() -> Config:
    """The configuration of an empty file: every default, no modems."""
    return parse_config("", "<defaults>")


def _read_config(ctx: Context, root: Node | None, data_dir: Path | None) -> Config | None:
    """The Config of the document ``root`` (None for an empty file), or None after errors."""
    top = keys(Config)
    try:
        items = mapping(ctx, root, "", top) if root is not None else {}
    except Bad as bad:
        ctx.error(root, "", f"the file should be a mapping of settings; {bad.problem}")
        return None
    values: dict[str, Any] = {}
    failed: set[str] = set()
    for key, field in top.items():  # in the schema's order: region first
        if key not in items:
            continue
        node = items[key]
        try:
            values[key] = field.metadata["read"](ctx, node, key)
        except Bad as bad:
            ctx.error(bad.node or node, bad.key or key, bad.problem)
            failed.add(key)
        except Reported:
            failed.add(key)
        if key == "default_region" and key in values:
            ctx.region = values[key]

    if data_dir is not None:
        values["data_dir"] = data_dir.expanduser().resolve()  # from the command line: cwd
    check_references(ctx, values, items, failed)
    if ctx.errors:
        return None

    # Paths that live in the data directory unless named.
    root_dir: Path = values.get("data_dir", DEFAULT_DATA_DIR)
    web: WebConfig = values.get("web", WebConfig())
    if web.secret_key_file is None:
        values["web"] = dataclasses.replace(web, secret_key_file=root_dir / "secret_key")
    sim: SimulatorConfig | None = values.get("simulator")
    if sim is not None and sim.dir is None:
        values["simulator"] = dataclasses.replace(sim, dir=root_dir / "sim")
    if web.port and sim is not None and sim.control_port == web.port:
        ctx.error(
            items["simulator"], "simulator.control_port", f"the web app already uses {web.port}"
        )
        return None
    return Config(**values)
