"""The gateway's configuration: one YAML file turned into typed, frozen dataclasses.

Every problem in the file is reported with the file name, the line and the dotted key path
(``gateway.yaml line 14, modems[1].rate_limit.per_minute: expected a whole number ≥ 0, got
"ten"``), and all problems are collected into one :class:`ConfigError` rather than stopping at
the first. The documented example is ``config/gateway.example.yaml``; the key reference is
``docs/config.md``.

The file is read with PyYAML's safe composer, which keeps the position of every node, and the
scalars are interpreted here rather than by YAML's own resolver. That is deliberate: YAML 1.1 reads
``22:00`` as the number 1320, ``0123`` as an octal number and ``+15550100001`` as an integer, so
times, IMEIs and phone numbers are taken from the text as written.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import ipaddress
import logging
import re
import string
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import phonenumbers
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .phone import PhoneNumberError, normalize

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path("/var/lib/gateway")

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    """One problem (or warning) in a configuration file, located by file, line and key path."""

    file: str
    line: int | None  # 1-based; None when the problem is with the whole file
    key: str  # dotted path such as "modems[1].rate_limit.per_minute"; "" for the whole file
    problem: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file} line {self.line}"
        return f"{where}, {self.key}: {self.problem}" if self.key else f"{where}: {self.problem}"


class ConfigError(ValueError):
    """A configuration file that cannot be used; ``issues`` lists every problem found.

    ``file``, ``line``, ``key`` and ``problem`` describe the first problem; the message has one
    line per problem, each naming the file, the line and the key.
    """

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        if not self.issues:
            raise ValueError("ConfigError needs at least one issue")
        first = self.issues[0]
        self.file = first.file
        self.line = first.line
        self.key = first.key
        self.problem = first.problem
        super().__init__("\n".join(str(issue) for issue in self.issues))


# --------------------------------------------------------------------------------------------
# The schema
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """The web app: where it listens, HTTPS, and login sessions."""

    bind: str = "127.0.0.1"
    port: int = 8080  # 0 = any free port (tests)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Generate a self-signed certificate: into tls_cert/tls_key when named and missing, else
    # into data_dir.
    tls_self_signed: bool = False
    secret_key_file: Path | None = None  # the loader fills in data_dir/secret_key
    session_hours: int = 12

    @property
    def https(self) -> bool:
        """True when the web app serves HTTPS."""
        return self.tls_self_signed or self.tls_cert is not None


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """How many messages a modem may send; None = no limit."""

    per_minute: int | None = None
    per_day: int | None = None


@dataclass(frozen=True, kw_only=True)
class QuietHours:
    """A daily window (in the config's timezone) in which a modem sends no bulk messages."""

    start: datetime.time
    end: datetime.time  # may be earlier than start: the window wraps midnight

    def contains(self, moment: datetime.time) -> bool:
        """True when ``moment`` (a local wall-clock time) falls inside the window."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True, kw_only=True)
class ModemConfig:
    """One modem the gateway should drive, matched by IMEI or ICCID (or, last resort, port)."""

    id: str  # the name short codes use; defaults to imei, iccid, label or port
    imei: str | None = None
    iccid: str | None = None
    port: str | None = None
    pin: str | None = None
    label: str | None = None
    baudrate: int = 115200
    rtscts: bool = False
    status_reports: bool = True
    smsc: str | None = None  # E.164
    rate_limit: RateLimit = field(default_factory=RateLimit)
    quiet_hours: QuietHours | None = None


DEFAULT_OPT_OUT_REPLY = (
    "You are unsubscribed from {name} and will get no more messages. Reply START to resubscribe."
)
DEFAULT_OPT_IN_REPLY = (
    "You are subscribed to {name} again. Reply HELP for help, STOP to unsubscribe."
)
DEFAULT_HELP_REPLY = "{name}: reply STOP to unsubscribe, START to subscribe again."
DEFAULT_OOPS_REPLY = "Welcome back to {name}: your STOP was undone. Reply STOP to unsubscribe."
# Placeholders a reply text may use; str.format fills them in.
REPLY_PLACEHOLDERS = ("name", "code")


@dataclass(frozen=True, kw_only=True)
class Replies:
    """Automatic answers to keywords; ``{name}`` and ``{code}`` are the short code's."""

    opt_out: str = DEFAULT_OPT_OUT_REPLY
    opt_in: str = DEFAULT_OPT_IN_REPLY
    help: str = DEFAULT_HELP_REPLY
    oops: str = DEFAULT_OOPS_REPLY


@dataclass(frozen=True, kw_only=True)
class Keywords:
    """Inbound keywords, upper case with spaces removed (matching is case/space-insensitive)."""

    opt_out: tuple[str, ...] = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
    opt_in: tuple[str, ...] = ("START", "UNSTOP")
    help: tuple[str, ...] = ("HELP", "INFO")
    oops: tuple[str, ...] = ("OOPS",)


@dataclass(frozen=True, kw_only=True)
class ShortCodeConfig:
    """A named sender backed by a pool of modems."""

    code: str
    name: str
    modems: tuple[str, ...]  # modem ids
    default_modem: str | None = None  # one of modems
    replies: Replies = field(default_factory=Replies)
    keywords: Keywords = field(default_factory=Keywords)

    def reply(self, kind: Literal["opt_out", "opt_in", "help", "oops"]) -> str:
        """The reply text of ``kind`` with the short code's name and code filled in."""
        return getattr(self.replies, kind).format(name=self.name, code=self.code)


@dataclass(frozen=True, kw_only=True)
class MessagesConfig:
    """Limits and timings of messages."""

    max_parts: int = 10
    expiry_hours: float = 24.0
    ref16: bool = False
    retry_initial_seconds: float = 30.0
    retry_max_seconds: float = 900.0
    reassembly_timeout_minutes: float = 60.0
    validity_minutes: int | None = None  # TP-VP requested from the network; None = its default


@dataclass(frozen=True, kw_only=True)
class RoutingConfig:
    """How a profile's messages are routed within a short code's pool."""

    sticky_grace_minutes: float = 30.0


@dataclass(frozen=True, kw_only=True)
class RetentionConfig:
    """How long things are kept, and the nightly backups."""

    messages_days: int | None = None  # None = keep forever
    raw_pdus_days: int = 90
    nightly_backups: int = 7  # 0 = no nightly backup
    backup_time: datetime.time = datetime.time(3, 30)


@dataclass(frozen=True, kw_only=True)
class ManagerConfig:
    """How the modem manager finds ports and watches modems."""

    scan: tuple[str, ...] = ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*")
    heartbeat_seconds: float = 60.0
    sweep_seconds: float = 300.0
    reconnect_max_seconds: float = 60.0
    command_timeout_seconds: float = 10.0


@dataclass(frozen=True, kw_only=True)
class CannedResponse:
    """A prepared answer the Agent View offers."""

    title: str
    text: str


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """The Agent View: which inbound words flag a conversation urgent, and canned answers."""

    urgent_words: tuple[str, ...] = ("urgent", "emergency", "asap", "help")  # lower case
    canned_responses: tuple[CannedResponse, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SimModem:
    """A modem of the built-in simulator."""

    imei: str
    iccid: str | None = None
    number: str  # E.164, the SIM's own number
    family: str = "generic"
    label: str | None = None
    command_latency: float = 0.0
    send_latency: float = 0.0
    storage_capacity: int = 30


@dataclass(frozen=True, kw_only=True)
class SimHandset:
    """A phone on the simulated network."""

    number: str  # E.164
    name: str | None = None


# Modem firmwares the simulator imitates (the same list as gateway.modem.sim.families.FAMILIES;
# a test keeps them equal, and config does not import the simulator).
SIM_FAMILIES = ("generic", "huawei", "simcom", "quectel", "sierra", "ublox")


@dataclass(frozen=True, kw_only=True)
class SimulatorConfig:
    """Run the serial simulator inside the daemon (no hardware needed)."""

    dir: Path | None = None  # the loader fills in data_dir/sim
    control_port: int | None = None  # None = no control server; 0 = any free port
    seed: int = 1
    # Seconds from a delivery to its status report; None: 1-3 s at random, as on real networks.
    status_report_delay: float | None = None
    modems: tuple[SimModem, ...] = ()
    handsets: tuple[SimHandset, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DemoProfile:
    """A contact created when the demo starts."""

    name: str
    phone: str  # E.164
    status: Literal["active", "inactive"] = "active"
    opted_out: bool = False
    custom: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DemoMessage:
    """One message of a demo conversation; YAML key ``from`` is ``sender`` here."""

    sender: Literal["us", "them"]
    text: str

    @property
    def outbound(self) -> bool:
        """True for a message the gateway sent."""
        return self.sender == "us"


@dataclass(frozen=True, kw_only=True)
class DemoConversation:
    """A conversation put into the store when the demo starts."""

    phone: str  # E.164, one of the demo profiles
    short_code: str  # a short code's code
    messages: tuple[DemoMessage, ...]


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Demo data: an admin user, profiles and conversations."""

    admin_user: str = "admin"
    admin_password: str = "demo1234"
    profiles: tuple[DemoProfile, ...] = ()
    conversations: tuple[DemoConversation, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole configuration of one gateway."""

    data_dir: Path = DEFAULT_DATA_DIR
    default_region: str = "US"
    timezone: str = "UTC"
    web: WebConfig = field(default_factory=WebConfig)
    modems: tuple[ModemConfig, ...] = ()
    short_codes: tuple[ShortCodeConfig, ...] = ()
    messages: MessagesConfig = field(default_factory=MessagesConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    modem_manager: ManagerConfig = field(default_factory=ManagerConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    simulator: SimulatorConfig | None = None
    demo: DemoConfig | None = None
    source: Path | None = None  # the file this was loaded from
    warnings: tuple[ConfigIssue, ...] = ()  # non-fatal remarks, each with file, line and key

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The configured timezone (quiet hours and backup time are in it)."""
        return zoneinfo.ZoneInfo(self.timezone)

    def modem(self, modem_id: str) -> ModemConfig:
        """The modem with this id; KeyError if there is none."""
        for modem in self.modems:
            if modem.id == modem_id:
                return modem
        raise KeyError(f"no modem with id {modem_id!r} in the configuration")

    def short_code(self, code: str) -> ShortCodeConfig:
        """The short code with this code; KeyError if there is none."""
        for short in self.short_codes:
            if short.code == code:
                return short
        raise KeyError(f"no short code {code!r} in the configuration")

    def short_code_of_modem(self, modem_id: str) -> ShortCodeConfig | None:
        """The short code whose pool holds this modem (a modem is in at most one)."""
        for short in self.short_codes:
            if modem_id in short.modems:
                return short
        return None


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


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
    config = parse_config(
        text, name, base_dir=Path(path).expanduser().resolve().parent, data_dir=data_dir
    )
    config = dataclasses.replace(config, source=Path(path))
    if log_warnings:
        for warning in config.warnings:
            log.warning("%s", warning)
    return config


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
    ctx = _Context(source, base.expanduser().resolve())
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = f"not valid YAML: {exc.problem or exc.context}"
        raise ConfigError([ConfigIssue(source, line, "", problem)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(source, None, "", f"not valid YAML: {exc}")]) from exc
    config = _read_config(ctx, root, Path(data_dir) if data_dir is not None else None)
    if ctx.errors or config is None:
        raise ConfigError(sorted(ctx.errors, key=lambda issue: issue.line or 0))
    return dataclasses.replace(config, warnings=tuple(ctx.warnings))


def default_config() -> Config:
    """The configuration of an empty file: every default, no modems."""
    return parse_config("", "<defaults>")


def normalize_number(text: str, region: str) -> str:
    """``text`` as an E.164 number, reading national numbers in ``region``; ValueError if not.

    The same rule as everywhere else (:func:`gateway.phone.normalize`): only the length is
    checked, not the numbering plan, so test numbers such as +1 555 0100 pass.
    """
    try:
        return normalize(text, region)
    except PhoneNumberError as exc:
        raise ValueError(str(exc).removeprefix("phone: ")) from exc


# --------------------------------------------------------------------------------------------
# Reading nodes
# --------------------------------------------------------------------------------------------

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Bad(Exception):
    """One problem with one value; ``node``/``key`` override where it is reported."""

    def __init__(self, problem: str, node: Node | None = None, key: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.node = node
        self.key = key


class _Reported(Exception):
    """The value had problems that were already recorded; the caller skips it."""


class _Context:
    """What the readers share while one file is checked: where to report, what is known."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        self.region = "US"
        self.errors: list[ConfigIssue] = []
        self.warnings: list[ConfigIssue] = []

    def error(self, node: Node | None, key: str, problem: str) -> None:
        self.errors.append(ConfigIssue(self.source, _line(node), key, problem))

    def warn(self, node: Node | None, key: str, problem: str) -> None:
        self.warnings.append(ConfigIssue(self.source, _line(node), key, problem))

    def path(self, text: str) -> Path:
        """A path from the file, with ~ expanded, relative ones against the file's folder."""
        return (self.base_dir / Path(text).expanduser()).resolve()


Reader = Callable[[_Context, Node, str], Any]


def _line(node: Node | None) -> int | None:
    return None if node is None else node.start_mark.line + 1


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG and node.style is None


def _shown(node: Node) -> str:
    """How a value looks in an error message."""
    if isinstance(node, MappingNode):
        return "a mapping (key: value lines)"
    if isinstance(node, SequenceNode):
        return "a list"
    if _is_null(node):
        return "nothing"
    text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    return f'"{text}"'


def _scalar(node: Node, expected: str) -> str:
    """The text of a scalar node as written; _Bad for lists, mappings and null."""
    if not isinstance(node, ScalarNode) or _is_null(node):
        raise _Bad(f"expected {expected}, got {_shown(node)}")
    return node.value


def _mapping(ctx: _Context, node: Node, path: str, allowed: Iterable[str]) -> dict[str, Node]:
    """The entries of a mapping node by key; records unknown and duplicate keys as errors."""
    if _is_null(node):
        return {}
    if not isinstance(node, MappingNode):
        raise _Bad(f"expected a mapping (key: value lines), got {_shown(node)}")
    allowed = list(allowed)
    seen: dict[str, Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = key_node.value if isinstance(key_node, ScalarNode) else None
        if key is None:
            ctx.error(key_node, path, "expected a plain key, got a list or mapping as a key")
        elif key in seen:
            first = _line(seen[key])
            ctx.error(key_node, _join(path, key), f"duplicate key (first given on line {first})")
        else:
            seen[key] = key_node
    # Merge keys (<<: *anchor) are expanded by PyYAML's own rules: the mapping's keys win.
    try:
        yaml.constructor.SafeConstructor().flatten_mapping(node)
    except yaml.MarkedYAMLError as exc:
        raise _Bad(f"a bad merge key (<<): {exc.problem}") from None
    items: dict[str, Node] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            continue
        key = key_node.value
        if key not in allowed:
            ctx.error(key_node, _join(path, key), _unknown_key(key, allowed))
            continue
        items[key] = value_node
    return items


def _unknown_key(key: str, allowed: list[str]) -> str:
    by_lower = {name.lower(): name for name in allowed}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {by_lower[close[0]]!r}?"
    return "unknown key; expected one of " + ", ".join(allowed)


def _section(
    cls: type,
    fields: Mapping[str, Reader],
    *,
    required: Iterable[str] = (),
    check: Callable[[_Context, str, dict[str, Any], dict[str, Node]], dict[str, Any]] | None = None,
    attrs: Mapping[str, str] | None = None,
) -> Reader:
    """A reader for a mapping of known ``fields`` into ``cls``; absent keys keep cls's default.

    ``check`` sees the values and their nodes, may fill in derived ones, and raises _Bad (with
    the node and key to blame) for combinations that are wrong. ``attrs`` renames YAML keys that
    are not valid Python names (``from`` -> ``sender``).
    """
    required = tuple(required)
    attrs = attrs or {}

    def read(ctx: _Context, node: Node, path: str) -> Any:
        items = _mapping(ctx, node, path, fields)
        values: dict[str, Any] = {}
        failed = False
        for key, value_node in items.items():
            sub = _join(path, key)
            try:
                values[key] = fields[key](ctx, value_node, sub)
            except _Bad as bad:
                ctx.error(bad.node or value_node, bad.key or sub, bad.problem)
                failed = True
            except _Reported:
                failed = True
        for key in required:
            if key not in items:
                ctx.error(node, _join(path, key), "missing; this key is required")
                failed = True
        if failed:
            raise _Reported
        if check is not None:
            try:
                values = check(ctx, path, values, items)
            except _Bad as bad:
                ctx.error(bad.node or node, bad.key or path, bad.problem)
                raise _Reported from None
        return cls(**{attrs.get(key, key): value for key, value in values.items()})

    return read


def _list(item: Reader, *, min_items: int = 0) -> Reader:
    """A reader for a list of ``item``; null reads as an empty list."""

    def read(ctx: _Context, node: Node, path: str) -> tuple[Any, ...]:
        if _is_null(node):
            values: list[Any] = []
            nodes: list[Node] = []
        elif not isinstance(node, SequenceNode):
            raise _Bad(f"expected a list (lines starting with '- '), got {_shown(node)}")
        else:
            nodes = list(node.value)
            values = []
        failed = False
        for index, child in enumerate(nodes):
            sub = f"{path}[{index}]"
            try:
                values.append(item(ctx, child, sub))
            except _Bad as bad:
                ctx.error(bad.node or child, bad.key or sub, bad.problem)
                failed = True
            except _Reported:
                failed = True
        if failed:
            raise _Reported
        if len(values) < min_items:
            raise _Bad(f"expected a list of at least {min_items}, got {len(values)}")
        return tuple(values)

    return read


def _optional(reader: Reader) -> Reader:
    """``reader``, or None when the value is null (``key:`` with nothing, or ``~``)."""

    def read(ctx: _Context, node: Node, path: str) -> Any:
        return None if _is_null(node) else reader(ctx, node, path)

    return read


def _text(*, allow_empty: bool = False, choices: Iterable[str] | None = None) -> Reader:
    """A string as written (``name: 2024`` is the text "2024")."""
    options = tuple(choices) if choices is not None else None

    def read(ctx: _Context, node: Node, path: str) -> str:
        value = _scalar(node, "text" if options is None else "one of " + ", ".join(options))
        if not allow_empty and not value.strip():
            raise _Bad("expected text, got an empty string")
        if options is not None and value not in options:
            close = difflib.get_close_matches(value, options, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _Bad(f"expected one of {', '.join(options)}, got {_shown(node)}{hint}")
        return value

    return read


_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _bound_text(low: float | None, high: float | None, above: bool = False) -> str:
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" > {low:g}" if above else f" ≥ {low:g}"
    if high is not None:
        return f" ≤ {high:g}"
    return ""


def _int(low: int | None = None, high: int | None = None) -> Reader:
    """A whole number (decimal, as written: ``010`` is ten) within [low, high]."""
    expected = "a whole number" + _bound_text(low, high)

    def read(ctx: _Context, node: Node, path: str) -> int:
        value = _scalar(node, expected).strip()
        if not _INT_RE.fullmatch(value):
            raise _Bad(f"expected {expected}, got {_shown(node)}")
        number = int(value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise _Bad(f"expected {expected}, got {number}")
        return number

    return read


def _float(low: float | None = 0.0, *, above: bool = False, high: float | None = None) -> Reader:
    """A number (``30``, ``1.5``) ≥ low (> low when ``above``), ≤ high."""
    expected = "a number" + _bound_text(low, high, above)

    def read(ctx: _Context, node: Node, path: str) -> float:
        value = _scalar(node, expected).strip()
        if not _FLOAT_RE.fullmatch(value):
            raise _Bad(f"expected {expected}, got {_shown(node)}")
        number = float(value)
        too_low = low is not None and (number <= low if above else number < low)
        if too_low or (high is not None and number > high):
            raise _Bad(f"expected {expected}, got {value}")
        return number

    return read


_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def _bool(ctx: _Context, node: Node, path: str) -> bool:
    value = _scalar(node, "true or false")
    if node.style is None and value.lower() in _TRUE:
        return True
    if node.style is None and value.lower() in _FALSE:
        return False
    raise _Bad(f"expected true or false, got {_shown(node)}")


def _digits(low: int, high: int, what: str) -> Reader:
    """A string of ``low``-``high`` digits, as written (leading zeros kept)."""
    expected = f"{what} of {low}-{high} digits"

    def read(ctx: _Context, node: Node, path: str) -> str:
        value = _scalar(node, expected).strip()
        if not value.isdigit() or not value.isascii() or not low <= len(value) <= high:
            raise _Bad(f"expected {expected}, got {_shown(node)}")
        return value

    return read


def _pin(ctx: _Context, node: Node, path: str) -> str:
    expected = 'a quoted string of 4-8 digits, such as pin: "0000"'
    value = _scalar(node, expected)
    if node.style is None and _INT_RE.fullmatch(value):
        # A plain number: every YAML tool but this one would drop its leading zeros, so the
        # file would mean different things to different readers. Ask for quotes.
        raise _Bad(f"expected {expected}; put the PIN in quotes, or YAML reads it as a number")
    if not value.isdigit() or not value.isascii() or not 4 <= len(value) <= 8:
        raise _Bad(f"expected {expected}, got {_shown(node)}")
    return value


def _time(ctx: _Context, node: Node, path: str) -> datetime.time:
    expected = 'a time of day "HH:MM" (24-hour clock)'
    value = _scalar(node, expected).strip()
    match = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise _Bad(f"expected {expected}, got {_shown(node)}")
    return datetime.time(int(match[1]), int(match[2]))


def _path(ctx: _Context, node: Node, path: str) -> Path:
    return ctx.path(_scalar(node, "a file or folder path"))


def _phone(ctx: _Context, node: Node, path: str) -> str:
    value = _scalar(node, "a phone number").strip()
    try:
        return normalize_number(value, ctx.region)
    except ValueError as exc:
        raise _Bad(
            f"expected a phone number (+ and country code, or national in region "
            f"{ctx.region}), got {_shown(node)}: {exc}"
        ) from None


def _keyword(ctx: _Context, node: Node, path: str) -> str:
    value = "".join(_scalar(node, "a keyword").split()).upper()
    if not value:
        raise _Bad("expected a keyword, got an empty string")
    return value


def _reply(ctx: _Context, node: Node, path: str) -> str:
    value = _text()(ctx, node, path)
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise _Bad(f"a stray brace: {exc}; write {{{{ and }}}} for literal braces") from None
    for name in names:
        if name not in REPLY_PLACEHOLDERS:
            allowed = ", ".join("{" + p + "}" for p in REPLY_PLACEHOLDERS)
            raise _Bad(f"unknown placeholder {{{name}}}; a reply may use {allowed}")
    return value


def _word(ctx: _Context, node: Node, path: str) -> str:
    return _text()(ctx, node, path).strip().lower()


def _host(ctx: _Context, node: Node, path: str) -> str:
    value = _scalar(node, "an IP address or host name").strip()
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*", value):
        return value
    raise _Bad(f"expected an IP address (such as 0.0.0.0) or host name, got {_shown(node)}")


def _region(ctx: _Context, node: Node, path: str) -> str:
    value = _scalar(node, "a two-letter region code such as US").strip().upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise _Bad(
            f"expected a two-letter region code known to phonenumbers (US, GB, DE, KE, ...), "
            f"got {_shown(node)}"
        )
    return value


def _timezone(ctx: _Context, node: Node, path: str) -> str:
    value = _scalar(node, "an IANA timezone name such as Europe/Paris").strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(value, sorted(zoneinfo.available_timezones()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _Bad(
            f"expected an IANA timezone name such as Europe/Paris, got {_shown(node)}{hint}"
        ) from None
    return value


def _scan_pattern(ctx: _Context, node: Node, path: str) -> str:
    value = _scalar(node, "an absolute device path or glob such as /dev/ttyUSB*").strip()
    if not value.startswith("/"):
        raise _Bad(f"expected an absolute device path or glob such as /dev/ttyUSB*, got {value!r}")
    return value


def _string_map(ctx: _Context, node: Node, path: str) -> dict[str, str]:
    """A mapping of names to scalar values, kept as text (custom profile fields)."""
    if _is_null(node):
        return {}
    if not isinstance(node, MappingNode):
        raise _Bad(f"expected a mapping (name: value lines), got {_shown(node)}")
    result: dict[str, str] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node, "a field name")
        sub = _join(path, key)
        if key in result:
            raise _Bad("duplicate key", key_node, sub)
        if _is_null(value_node):
            result[key] = ""
        else:
            try:
                result[key] = _scalar(value_node, "a single value (text or number)")
            except _Bad as bad:
                raise _Bad(bad.problem, value_node, sub) from None
    return result


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _check_web(ctx: _Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    cert, key = v.get("tls_cert"), v.get("tls_key")
    if (cert is None) != (key is None):
        given, missing = ("tls_cert", "tls_key") if cert is not None else ("tls_key", "tls_cert")
        raise _Bad(
            f"{given} is given without {missing}: name both the certificate and its key, or "
            "neither (tls_self_signed: true generates them)",
            nodes[given],
            _join(path, given),
        )
    https = v.get("tls_self_signed", False) or v.get("tls_cert") is not None
    bind = v.get("bind", WebConfig.bind)
    if not https and bind not in ("127.0.0.1", "::1", "localhost"):
        ctx.warn(
            nodes.get("bind"),
            _join(path, "bind"),
            "the web app listens beyond this machine without HTTPS, so passwords cross the "
            "network in clear; set tls_self_signed: true or name tls_cert and tls_key",
        )
    return v


def _check_rate(ctx: _Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    per_minute, per_day = v.get("per_minute"), v.get("per_day")
    if per_minute is not None and per_day is not None and per_day < per_minute:
        ctx.warn(nodes["per_day"], _join(path, "per_day"), "smaller than per_minute")
    return v


def _check_quiet(ctx: _Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    if v["start"] == v["end"]:
        raise _Bad(
            "start and end are the same, so the window is empty; remove quiet_hours for none",
            nodes["end"],
            _join(path, "end"),
        )
    return v


def _check_modem(ctx: _Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    if not any(v.get(key) for key in ("imei", "iccid", "port")):
        raise _Bad("a modem needs at least one of imei, iccid or port to be found by")
    if not v.get("imei") and not v.get("iccid"):
        ctx.warn(
            nodes["port"],
            _join(path, "port"),
            "matched by port only: /dev/ttyUSBn names change across reboots; prefer imei "
            "(see `gateway modems`) or a /dev/serial/by-id path",
        )
    if "id" not in v:
        v["id"] = v.get("imei") or v.get("iccid") or v.get("label") or v["port"]
    return v


def _check_replies_keywords(
    ctx: _Context, path: str, v: dict[str, Any], nodes: dict[str, Node]
) -> dict:
    if "opt_out" in v and not v["opt_out"]:
        raise _Bad(
            "expected at least one opt-out keyword (STOP must always work)",
            nodes["opt_out"],
            _join(path, "opt_out"),
        )
    owner: dict[str, str] = {}
    defaults = Keywords()
    for kind in ("opt_out", "opt_in", "help", "oops"):
        for word in v.get(kind, getattr(defaults, kind)):
            if word in owner and owner[word] != kind:
                raise _Bad(
                    f"keyword {word} is both in {owner[word]} and in {kind}",
                    nodes.get(kind),
                    _join(path, kind),
                )
            owner[word] = kind
    return v


def _check_short_code(ctx: _Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    pool = v["modems"]
    for index, modem_id in enumerate(pool):
        if modem_id in pool[:index]:
            raise _Bad(
                f"modem {modem_id!r} is listed twice",
                nodes["modems"].value[index],
                f"{_join(path, 'modems')}[{index}]",
            )
    default = v.get("default_modem")
    if default is not None and default not in pool:
        raise _Bad(
            f"default_modem {default!r} is not in this short code's modems ({', '.join(pool)})",
            nodes["default_modem"],
            _join(path, "default_modem"),
        )
    return v


def _check_short_code_text(ctx: _Context, node: Node, path: str) -> str:
    value = _scalar(node, "a short code such as 55123").strip()
    if not re.fullmatch(r"[A-Za-z0-9]{1,15}", value):
        raise _Bad(f"expected a short code of 1-15 letters or digits, got {_shown(node)}")
    return value


def _check_messages(ctx: _Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    initial = v.get("retry_initial_seconds", MessagesConfig.retry_initial_seconds)
    maximum = v.get("retry_max_seconds", MessagesConfig.retry_max_seconds)
    if maximum < initial:
        key = "retry_max_seconds" if "retry_max_seconds" in nodes else "retry_initial_seconds"
        raise _Bad(
            f"retry_max_seconds ({maximum:g}) is smaller than retry_initial_seconds ({initial:g})",
            nodes[key],
            _join(path, key),
        )
    return v


def _check_agent(ctx: _Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    titles: set[str] = set()
    for index, canned in enumerate(v.get("canned_responses", ())):
        if canned.title in titles:
            raise _Bad(
                f"title {canned.title!r} is used twice",
                nodes["canned_responses"].value[index],
                f"{_join(path, 'canned_responses')}[{index}].title",
            )
        titles.add(canned.title)
    return v


def _unique(
    items: tuple[Any, ...], attr: str, list_node: Node, path: str, what: str
) -> Iterable[tuple[Node, str, str]]:
    """(node, key, problem) for every item whose ``attr`` repeats an earlier one."""
    first: dict[Any, int] = {}
    for index, item in enumerate(items):
        value = getattr(item, attr)
        if value is None:
            continue
        if value in first:
            node = list_node.value[index]
            yield (
                node,
                f"{path}[{index}].{attr}",
                (f"{what} {value!r} is already used by {path}[{first[value]}]"),
            )
        else:
            first[value] = index


def _check_simulator(ctx: _Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    problems = []
    for attr, what in (("imei", "IMEI"), ("iccid", "ICCID"), ("number", "number")):
        problems += _unique(v.get("modems", ()), attr, nodes.get("modems"), "modems", what)
    problems += _unique(
        v.get("handsets", ()), "number", nodes.get("handsets"), "handsets", "number"
    )
    modem_numbers = {m.number for m in v.get("modems", ())}
    for index, handset in enumerate(v.get("handsets", ())):
        if handset.number in modem_numbers:
            problems.append(
                (
                    nodes["handsets"].value[index],
                    f"handsets[{index}].number",
                    f"{handset.number} is already a simulated modem's number",
                )
            )
    for node, key, problem in problems:
        ctx.error(node, _join(path, key), problem)
    if problems:
        raise _Reported
    return v


_RATE_LIMIT = _section(
    RateLimit,
    {"per_minute": _optional(_int(0)), "per_day": _optional(_int(0))},
    check=_check_rate,
)
_QUIET_HOURS = _section(
    QuietHours, {"start": _time, "end": _time}, required=("start", "end"), check=_check_quiet
)
_MODEM = _section(
    ModemConfig,
    {
        "id": _text(),
        "imei": _optional(_digits(14, 16, "an IMEI")),
        "iccid": _optional(_digits(18, 22, "an ICCID")),
        "port": _optional(_text()),
        "pin": _optional(_pin),
        "label": _optional(_text()),
        "baudrate": _int(1),
        "rtscts": _bool,
        "status_reports": _bool,
        "smsc": _optional(_phone),
        "rate_limit": _RATE_LIMIT,
        "quiet_hours": _optional(_QUIET_HOURS),
    },
    check=_check_modem,
)
_REPLIES = _section(Replies, {k: _reply for k in ("opt_out", "opt_in", "help", "oops")})
_KEYWORDS = _section(
    Keywords,
    {k: _list(_keyword) for k in ("opt_out", "opt_in", "help", "oops")},
    check=_check_replies_keywords,
)
_SHORT_CODE = _section(
    ShortCodeConfig,
    {
        "code": _check_short_code_text,
        "name": _text(),
        "modems": _list(_text(), min_items=1),
        "default_modem": _optional(_text()),
        "replies": _REPLIES,
        "keywords": _KEYWORDS,
    },
    required=("code", "name", "modems"),
    check=_check_short_code,
)
_MESSAGES = _section(
    MessagesConfig,
    {
        "max_parts": _int(1, 255),
        "expiry_hours": _float(0, above=True),
        "ref16": _bool,
        "retry_initial_seconds": _float(0, above=True),
        "retry_max_seconds": _float(0, above=True),
        "reassembly_timeout_minutes": _float(0, above=True),
        # TP-VP (relative) reaches from 5 minutes to 63 weeks.
        "validity_minutes": _optional(_int(5, 63 * 7 * 24 * 60)),
    },
    check=_check_messages,
)
_ROUTING = _section(RoutingConfig, {"sticky_grace_minutes": _float(0)})
_RETENTION = _section(
    RetentionConfig,
    {
        "messages_days": _optional(_int(1)),
        "raw_pdus_days": _int(1),
        "nightly_backups": _int(0),
        "backup_time": _time,
    },
)
_MANAGER = _section(
    ManagerConfig,
    {
        "scan": _list(_scan_pattern),
        "heartbeat_seconds": _float(0, above=True),
        "sweep_seconds": _float(0, above=True),
        "reconnect_max_seconds": _float(0, above=True),
        "command_timeout_seconds": _float(0, above=True),
    },
)
_AGENT = _section(
    AgentConfig,
    {
        "urgent_words": _list(_word),
        "canned_responses": _list(
            _section(
                CannedResponse, {"title": _text(), "text": _text()}, required=("title", "text")
            )
        ),
    },
    check=_check_agent,
)
_SIM_MODEM = _section(
    SimModem,
    {
        "imei": _digits(14, 16, "an IMEI"),
        "iccid": _optional(_digits(18, 22, "an ICCID")),
        "number": _phone,
        "family": _text(choices=SIM_FAMILIES),
        "label": _optional(_text()),
        "command_latency": _float(0),
        "send_latency": _float(0),
        "storage_capacity": _int(1, 255),
    },
    required=("imei", "number"),
)
_SIM_HANDSET = _section(
    SimHandset, {"number": _phone, "name": _optional(_text())}, required=("number",)
)
_SIMULATOR = _section(
    SimulatorConfig,
    {
        "dir": _optional(_path),
        "control_port": _optional(_int(0, 65535)),
        "seed": _int(),
        "status_report_delay": _optional(_float(0)),
        "modems": _list(_SIM_MODEM),
        "handsets": _list(_SIM_HANDSET),
    },
    check=_check_simulator,
)
_DEMO_PROFILE = _section(
    DemoProfile,
    {
        "name": _text(),
        "phone": _phone,
        "status": _text(choices=("active", "inactive")),
        "opted_out": _bool,
        "custom": _string_map,
    },
    required=("name", "phone"),
)
_DEMO_MESSAGE = _section(
    DemoMessage,
    {"from": _text(choices=("us", "them")), "text": _text()},
    required=("from", "text"),
    attrs={"from": "sender"},
)
_DEMO_CONVERSATION = _section(
    DemoConversation,
    {
        "phone": _phone,
        "short_code": _check_short_code_text,
        "messages": _list(_DEMO_MESSAGE, min_items=1),
    },
    required=("phone", "short_code", "messages"),
)
_DEMO = _section(
    DemoConfig,
    {
        "admin_user": _text(),
        "admin_password": _text(),
        "profiles": _list(_DEMO_PROFILE),
        "conversations": _list(_DEMO_CONVERSATION),
    },
)

# Top-level keys in the order they are read: region and data_dir first, since phone numbers
# and default paths depend on them.
_TOP: dict[str, Reader] = {
    "default_region": _region,
    "data_dir": _path,
    "timezone": _timezone,
    "web": _section(
        WebConfig,
        {
            "bind": _host,
            "port": _int(0, 65535),
            "tls_cert": _optional(_path),
            "tls_key": _optional(_path),
            "tls_self_signed": _bool,
            "secret_key_file": _path,
            "session_hours": _int(1, 24 * 366),
        },
        check=_check_web,
    ),
    "modems": _list(_MODEM),
    "short_codes": _list(_SHORT_CODE),
    "messages": _MESSAGES,
    "routing": _ROUTING,
    "retention": _RETENTION,
    "modem_manager": _MANAGER,
    "agent": _AGENT,
    "simulator": _optional(_SIMULATOR),
    "demo": _optional(_DEMO),
}


def _read_config(ctx: _Context, root: Node | None, data_dir: Path | None) -> Config | None:
    """The Config of the document ``root`` (None for an empty file), or None after errors."""
    try:
        items = _mapping(ctx, root, "", _TOP) if root is not None else {}
    except _Bad as bad:
        ctx.error(root, "", f"the file should be a mapping of settings; {bad.problem}")
        return None
    values: dict[str, Any] = {}
    failed: set[str] = set()
    for key, reader in _TOP.items():
        if key not in items:
            continue
        node = items[key]
        try:
            values[key] = reader(ctx, node, key)
        except _Bad as bad:
            ctx.error(bad.node or node, bad.key or key, bad.problem)
            failed.add(key)
        except _Reported:
            failed.add(key)
        if key == "default_region" and key in values:
            ctx.region = values[key]

    if data_dir is not None:
        values["data_dir"] = data_dir.expanduser().resolve()  # from the command line: cwd
    _check_references(ctx, values, items, failed)
    if ctx.errors:
        return None

    # Paths that live in the data directory unless named.
    root_dir = values.get("data_dir", DEFAULT_DATA_DIR)
    web = values.get("web", WebConfig())
    if web.secret_key_file is None:
        values["web"] = dataclasses.replace(web, secret_key_file=root_dir / "secret_key")
    sim = values.get("simulator")
    if sim is not None and sim.dir is None:
        values["simulator"] = dataclasses.replace(sim, dir=root_dir / "sim")
    if web.port and sim is not None and sim.control_port == web.port:
        ctx.error(
            items["simulator"], "simulator.control_port", f"the web app already uses {web.port}"
        )
        return None
    return Config(**values)


def _check_references(
    ctx: _Context, values: dict[str, Any], items: dict[str, Node], failed: set[str]
) -> None:
    """Checks across sections: modem ids, pools, demo conversations."""
    modems: tuple[ModemConfig, ...] = values.get("modems", ())
    codes: tuple[ShortCodeConfig, ...] = values.get("short_codes", ())
    if "modems" not in failed and modems:
        for attr, what in (("id", "id"), ("imei", "IMEI"), ("iccid", "ICCID"), ("port", "port")):
            for node, key, problem in _unique(modems, attr, items["modems"], "modems", what):
                ctx.error(node, key, problem)
    if "modems" in failed or "short_codes" in failed:
        return  # an unreadable modem or short code would only give echoes of the same error

    known = {modem.id for modem in modems}
    owner: dict[str, tuple[int, str]] = {}
    codes_node = items.get("short_codes")
    for node, key, problem in _unique(codes, "code", codes_node, "short_codes", "code"):
        ctx.error(node, key, problem)
    for node, key, problem in _unique(codes, "name", codes_node, "short_codes", "name"):
        ctx.error(node, key, problem)
    for index, short in enumerate(codes):
        pool_node = _child(codes_node.value[index], "modems")
        for position, modem_id in enumerate(short.modems):
            key = f"short_codes[{index}].modems[{position}]"
            node = pool_node.value[position] if pool_node is not None else None
            if modem_id not in known:
                close = difflib.get_close_matches(modem_id, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                listed = ", ".join(sorted(known)) or "none are configured"
                ctx.error(node, key, f"unknown modem {modem_id!r}{hint} (modem ids: {listed})")
            elif modem_id in owner and owner[modem_id][0] != index:
                ctx.error(
                    node,
                    key,
                    f"modem {modem_id!r} is already in short code {owner[modem_id][1]}; a "
                    "modem belongs to one short code, so that its inbound texts have one home",
                )
            else:
                owner[modem_id] = (index, short.code)
    if modems and not codes:
        node = items.get("short_codes", items.get("modems"))
        ctx.error(
            node,
            "short_codes",
            "modems are configured but no short code: add a short code whose modems list "
            "names them, or the gateway cannot send",
        )
    for index, modem in enumerate(modems):
        if codes and modem.id not in owner:
            ctx.warn(
                items["modems"].value[index],
                f"modems[{index}]",
                f"modem {modem.id!r} is in no short code's pool: it will receive but never send",
            )

    demo: DemoConfig | None = values.get("demo")
    if demo is None or "demo" in failed:
        return
    demo_node = items["demo"]
    profiles_node = _child(demo_node, "profiles")
    for node, key, problem in _unique(demo.profiles, "phone", profiles_node, "profiles", "phone"):
        ctx.error(node, f"demo.{key}", problem)
    phones = {profile.phone for profile in demo.profiles}
    code_names = {short.code for short in codes}
    conversations_node = _child(demo_node, "conversations")
    for index, conversation in enumerate(demo.conversations):
        conv_node = conversations_node.value[index]
        key = f"demo.conversations[{index}]"
        if conversation.phone not in phones:
            ctx.error(
                _child(conv_node, "phone"),
                f"{key}.phone",
                f"{conversation.phone} is not one of demo.profiles' phones",
            )
        if conversation.short_code not in code_names:
            listed = ", ".join(sorted(code_names)) or "none are configured"
            ctx.error(
                _child(conv_node, "short_code"),
                f"{key}.short_code",
                f"unknown short code {conversation.short_code!r} (short codes: {listed})",
            )


def _child(node: Node | None, key: str) -> Node | None:
    """The value node of ``key`` in a mapping node, for locating errors."""
    if not isinstance(node, MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return None
