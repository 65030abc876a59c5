"""A generic reader of YAML documents into frozen dataclasses, with every problem located.

Knows nothing of the gateway: it reads PyYAML's composed nodes (which keep their line), so that
each problem names the file, the line and the dotted key path, and collects every problem of a
file instead of stopping at the first. Scalars are interpreted here rather than by YAML's own
resolver, because YAML 1.1 reads ``22:00`` as 1320, ``0123`` as octal and ``+15550100001`` as
an integer; times, IMEIs and phone numbers are taken from the text as written.

A section of the file is a dataclass whose fields each declare their reader once, with
:func:`setting`; :func:`section` reads a mapping into it from those declarations. Checks across
the fields of one section are looked up by class in :attr:`Context.checks`, so the rules can
live apart from the schema.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import MISSING
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigIssue

NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"


class Bad(Exception):
    """One problem with one value; ``node``/``key`` override where it is reported."""

    def __init__(self, problem: str, node: Node | None = None, key: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.node = node
        self.key = key


class Reported(Exception):
    """The value had problems that were already recorded; the caller skips it."""


Reader = Callable[["Context", Node, str], Any]
# A check of one section: sees the values and their nodes by YAML key, may fill in derived
# values, records warnings, and raises Bad (with the node and key to blame) for combinations
# that are wrong.
Check = Callable[["Context", str, dict[str, Any], dict[str, Node]], dict[str, Any]]


class Context:
    """What the readers share while one file is checked: where to report, what is known."""

    def __init__(
        self, source: str, base_dir: Path, checks: Mapping[type, Check] | None = None
    ) -> None:
        self.source = source
        self.base_dir = base_dir
        self.checks: Mapping[type, Check] = checks or {}
        self.region = "US"  # phone numbers in the file are read in it (set from the file)
        self.errors: list[ConfigIssue] = []
        self.warnings: list[ConfigIssue] = []

    def error(self, node: Node | None, key: str, problem: str) -> None:
        self.errors.append(ConfigIssue(self.source, line(node), key, problem))

    def warn(self, node: Node | None, key: str, problem: str) -> None:
        self.warnings.append(ConfigIssue(self.source, line(node), key, problem))

    def path(self, text: str) -> Path:
        """A path from the file, with ~ expanded, relative ones against the file's folder."""
        return (self.base_dir / Path(text).expanduser()).resolve()


# -- nodes -----------------------------------------------------------------------------------


def line(node: Node | None) -> int | None:
    """The 1-based line a node starts on; None without a node."""
    return None if node is None else node.start_mark.line + 1


def join(path: str, key: str) -> str:
    """The dotted key path of ``key`` inside ``path``."""
    return f"{path}.{key}" if path else key


def is_null(node: Node) -> bool:
    """True for ``key:`` with nothing after it, or ``~`` / ``null`` unquoted."""
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG and node.style is None


def shown(node: Node) -> str:
    """How a value looks in an error message."""
    if isinstance(node, MappingNode):
        return "a mapping (key: value lines)"
    if isinstance(node, SequenceNode):
        return "a list"
    if is_null(node):
        return "nothing"
    text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    return f'"{text}"'


def scalar(node: Node, expected: str) -> str:
    """The text of a scalar node as written; Bad for lists, mappings and null."""
    if not isinstance(node, ScalarNode) or is_null(node):
        raise Bad(f"expected {expected}, got {shown(node)}")
    return node.value


def child(node: Node | None, key: str) -> Node | None:
    """The value node of ``key`` in a mapping node, for locating errors."""
    if not isinstance(node, MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return None


def mapping(ctx: Context, node: Node, path: str, allowed: Iterable[str]) -> dict[str, Node]:
    """The entries of a mapping node by key; records unknown and duplicate keys as errors."""
    if is_null(node):
        return {}
    if not isinstance(node, MappingNode):
        raise Bad(f"expected a mapping (key: value lines), got {shown(node)}")
    allowed = list(allowed)
    seen: dict[str, Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG:
            continue
        key = key_node.value if isinstance(key_node, ScalarNode) else None
        if key is None:
            ctx.error(key_node, path, "expected a plain key, got a list or mapping as a key")
        elif key in seen:
            first = line(seen[key])
            ctx.error(key_node, join(path, key), f"duplicate key (first given on line {first})")
        else:
            seen[key] = key_node
    # Merge keys (<<: *anchor) are expanded by PyYAML's own rules: the mapping's keys win.
    try:
        yaml.constructor.SafeConstructor().flatten_mapping(node)
    except yaml.MarkedYAMLError as exc:
        raise Bad(f"a bad merge key (<<): {exc.problem}") from None
    items: dict[str, Node] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            continue
        key = key_node.value
        if key not in allowed:
            ctx.error(key_node, join(path, key), unknown_key(key, allowed))
            continue
        items[key] = value_node
    return items


def unknown_key(key: str, allowed: list[str]) -> str:
    """The problem text for an unknown key, with the closest known one when there is one."""
    by_lower = {name.lower(): name for name in allowed}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {by_lower[close[0]]!r}?"
    return "unknown key; expected one of " + ", ".join(allowed)


def unique(
    items: tuple[Any, ...], attr: str, list_node: Node | None, path: str, what: str
) -> Iterator[tuple[Node | None, str, str]]:
    """(node, key, problem) for every item whose ``attr`` repeats an earlier one."""
    first: dict[Any, int] = {}
    for index, item in enumerate(items):
        value = getattr(item, attr)
        if value is None:
            continue
        if value in first:
            node = list_node.value[index] if list_node is not None else None
            yield (
                node,
                f"{path}[{index}].{attr}",
                f"{what} {value!r} is already used by {path}[{first[value]}]",
            )
        else:
            first[value] = index


# -- sections --------------------------------------------------------------------------------


def setting(
    read: Reader,
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | Any = MISSING,
    key: str | None = None,
    required: bool | None = None,
) -> Any:
    """Declare a dataclass field as a key of the file, read by ``read``.

    ``key`` is the YAML key when it is not a Python name (``from``); a field is required in the
    file when it has no default, unless ``required`` says otherwise (a value a check fills in).
    """
    metadata = {"read": read, "key": key, "required": required}
    if factory is not MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def keys(cls: type) -> dict[str, dataclasses.Field]:
    """The fields of ``cls`` that are keys of the file, by YAML key, in declaration order."""
    return {
        f.metadata.get("key") or f.name: f
        for f in dataclasses.fields(cls)
        if f.metadata.get("read") is not None
    }


def _required(f: dataclasses.Field) -> bool:
    if f.metadata.get("required") is not None:
        return bool(f.metadata["required"])
    return f.default is MISSING and f.default_factory is MISSING


def section(cls: type) -> Reader:
    """A reader of a mapping into ``cls`` from its :func:`setting` fields; absent keys keep
    their default; the check registered for ``cls`` in the context runs on what was read."""

    def read(ctx: Context, node: Node, path: str) -> Any:
        fields = keys(cls)
        items = mapping(ctx, node, path, fields)
        values: dict[str, Any] = {}
        failed = False
        for key, value_node in items.items():
            sub = join(path, key)
            try:
                values[key] = fields[key].metadata["read"](ctx, value_node, sub)
            except Bad as bad:
                ctx.error(bad.node or value_node, bad.key or sub, bad.problem)
                failed = True
            except Reported:
                failed = True
        for key, f in fields.items():
            if key not in items and _required(f):
                ctx.error(node, join(path, key), "missing; this key is required")
                failed = True
        if failed:
            raise Reported
        check = ctx.checks.get(cls)
        if check is not None:
            try:
                values = check(ctx, path, values, items)
            except Bad as bad:
                ctx.error(bad.node or node, bad.key or path, bad.problem)
                raise Reported from None
        return cls(**{fields[key].name: value for key, value in values.items()})

    return read


def list_of(item: Reader, *, min_items: int = 0) -> Reader:
    """A reader of a list of ``item``; null reads as an empty list."""

    def read(ctx: Context, node: Node, path: str) -> tuple[Any, ...]:
        if is_null(node):
            nodes: list[Node] = []
        elif not isinstance(node, SequenceNode):
            raise Bad(f"expected a list (lines starting with '- '), got {shown(node)}")
        else:
            nodes = list(node.value)
        values: list[Any] = []
        failed = False
        for index, item_node in enumerate(nodes):
            sub = f"{path}[{index}]"
            try:
                values.append(item(ctx, item_node, sub))
            except Bad as bad:
                ctx.error(bad.node or item_node, bad.key or sub, bad.problem)
                failed = True
            except Reported:
                failed = True
        if failed:
            raise Reported
        if len(values) < min_items:
            raise Bad(f"expected a list of at least {min_items}, got {len(values)}")
        return tuple(values)

    return read


def optional(reader: Reader) -> Reader:
    """``reader``, or None when the value is null (``key:`` with nothing, or ``~``)."""

    def read(ctx: Context, node: Node, path: str) -> Any:
        return None if is_null(node) else reader(ctx, node, path)

    return read


# -- scalars ---------------------------------------------------------------------------------


def text(*, allow_empty: bool = False, choices: Iterable[str] | None = None) -> Reader:
    """A string as written (``name: 2024`` is the text "2024")."""
    options = tuple(choices) if choices is not None else None

    def read(ctx: Context, node: Node, path: str) -> str:
        value = scalar(node, "text" if options is None else "one of " + ", ".join(options))
        if not allow_empty and not value.strip():
            raise Bad("expected text, got an empty string")
        if options is not None and value not in options:
            close = difflib.get_close_matches(value, options, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise Bad(f"expected one of {', '.join(options)}, got {shown(node)}{hint}")
        return value

    return read


INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _bound_text(low: float | None, high: float | None, above: bool = False) -> str:
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" > {low:g}" if above else f" ≥ {low:g}"
    if high is not None:
        return f" ≤ {high:g}"
    return ""


def integer(low: int | None = None, high: int | None = None) -> Reader:
    """A whole number (decimal, as written: ``010`` is ten) within [low, high]."""
    expected = "a whole number" + _bound_text(low, high)

    def read(ctx: Context, node: Node, path: str) -> int:
        value = scalar(node, expected).strip()
        if not INT_RE.fullmatch(value):
            raise Bad(f"expected {expected}, got {shown(node)}")
        number = int(value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise Bad(f"expected {expected}, got {number}")
        return number

    return read


def decimal(low: float | None = 0.0, *, above: bool = False, high: float | None = None) -> Reader:
    """A number (``30``, ``1.5``) ≥ low (> low when ``above``), ≤ high."""
    expected = "a number" + _bound_text(low, high, above)

    def read(ctx: Context, node: Node, path: str) -> float:
        value = scalar(node, expected).strip()
        if not _FLOAT_RE.fullmatch(value):
            raise Bad(f"expected {expected}, got {shown(node)}")
        result = float(value)
        too_low = low is not None and (result <= low if above else result < low)
        if too_low or (high is not None and result > high):
            raise Bad(f"expected {expected}, got {value}")
        return result

    return read


_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def boolean(ctx: Context, node: Node, path: str) -> bool:
    """true/false (also yes/no, on/off, unquoted: a quoted "yes" is text, not a switch)."""
    value = scalar(node, "true or false")
    if node.style is None and value.lower() in _TRUE:
        return True
    if node.style is None and value.lower() in _FALSE:
        return False
    raise Bad(f"expected true or false, got {shown(node)}")


def digits(low: int, high: int, what: str) -> Reader:
    """A string of ``low``-``high`` digits, as written (leading zeros kept)."""
    expected = f"{what} of {low}-{high} digits"

    def read(ctx: Context, node: Node, path: str) -> str:
        value = scalar(node, expected).strip()
        if not value.isdigit() or not value.isascii() or not low <= len(value) <= high:
            raise Bad(f"expected {expected}, got {shown(node)}")
        return value

    return read


def time_of_day(ctx: Context, node: Node, path: str) -> datetime.time:
    """``HH:MM`` on a 24-hour clock, as written (YAML 1.1 would read it as a number)."""
    expected = 'a time of day "HH:MM" (24-hour clock)'
    value = scalar(node, expected).strip()
    match = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise Bad(f"expected {expected}, got {shown(node)}")
    return datetime.time(int(match[1]), int(match[2]))


def file_path(ctx: Context, node: Node, path: str) -> Path:
    """A file or folder path; relative ones are against the configuration file's folder."""
    return ctx.path(scalar(node, "a file or folder path"))


def string_map(ctx: Context, node: Node, path: str) -> dict[str, str]:
    """A mapping of names to scalar values, kept as text (custom profile fields)."""
    if is_null(node):
        return {}
    if not isinstance(node, MappingNode):
        raise Bad(f"expected a mapping (name: value lines), got {shown(node)}")
    result: dict[str, str] = {}
    for key_node, value_node in node.value:
        key = scalar(key_node, "a field name")
        sub = join(path, key)
        if key in result:
            raise Bad("duplicate key", key_node, sub)
        if is_null(value_node):
            result[key] = ""
        else:
            try:
                result[key] = scalar(value_node, "a single value (text or number)")
            except Bad as bad:
                raise Bad(bad.problem, value_node, sub) from None
    return result


def key_paths(cls: type, prefix: str = "") -> Iterator[str]:
    """Every key of the file under section ``cls`` as a dotted path (``modems.rate_limit.
    per_day``; list items have no index), for checking that the docs name each one."""
    hints = typing.get_type_hints(cls)
    for key, f in keys(cls).items():
        path = prefix + key
        yield path
        for inner in _dataclasses_in(hints[f.name]):
            yield from key_paths(inner, path + ".")


def _dataclasses_in(hint: Any) -> list[type]:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return [hint]
    return [c for arg in typing.get_args(hint) for c in _dataclasses_in(arg)]
