"""Split one AT command line into its commands, as a modem's command parser does (V.250 5.2).

``AT E0 V1 +CMEE=1;+CMGF=0`` is four commands: basic ones are a letter (or ``&`` and a letter)
with an optional number, extended ones start with ``+``, ``^``, ``!``, ``$``, ``#`` or ``%`` and
end at ``;``. Names are case-insensitive; quoted strings keep their case.
"""

from __future__ import annotations

from dataclasses import dataclass

EXTENDED_PREFIXES = "+^!$#%"


class AtSyntaxError(ValueError):
    """The line is not a well-formed AT command line (the modem answers ERROR)."""


@dataclass(frozen=True)
class AtCommand:
    """One command of a line: ``name`` ("E", "&F", "+CMGS", "^ICCID"), how it is invoked, and
    its raw arguments (``set``: the comma-separated parameters, quotes kept; basic: the number)."""

    name: str
    kind: str  # "basic" | "action" | "read" | "test" | "set"
    args: tuple[str, ...] = ()

    def arg(self, i: int, default: str | None = None) -> str | None:
        """Parameter i with surrounding quotes removed; default when absent or empty."""
        if i >= len(self.args):
            return default
        value = self.args[i].strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        return value if value else default

    def int_arg(self, i: int, default: int | None = None) -> int | None:
        """Parameter i as an integer; AtSyntaxError when it is not one."""
        value = self.arg(i)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise AtSyntaxError(
                f"{self.name}: parameter {i + 1} {value!r} is not a number"
            ) from None


def _split_args(text: str) -> tuple[str, ...]:
    args, current, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            args.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise AtSyntaxError("unterminated quoted string")
    args.append("".join(current))
    return tuple(args)


def _extended_end(text: str, start: int) -> int:
    """Index of the ';' (or end) that closes the extended command starting at ``start``."""
    quoted = False
    for i in range(start, len(text)):
        if text[i] == '"':
            quoted = not quoted
        elif text[i] == ";" and not quoted:
            return i
    return len(text)


def parse_line(line: str) -> list[AtCommand]:
    """The commands of a line that starts with AT (any case); AtSyntaxError otherwise."""
    stripped = line.strip()
    if stripped[:2].upper() != "AT":
        raise AtSyntaxError(f"line does not start with AT: {line!r}")
    text = stripped[2:]
    commands: list[AtCommand] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " ;":
            i += 1
            continue
        if ch in EXTENDED_PREFIXES:
            j = i + 1
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            name = text[i:j].upper()
            if len(name) < 2:
                raise AtSyntaxError(f"empty extended command name at {text[i:]!r}")
            end = _extended_end(text, j)
            rest = text[j:end]
            if rest.startswith("=?"):
                cmd = AtCommand(name, "test")
            elif rest.startswith("?"):
                cmd = AtCommand(name, "read")
            elif rest.startswith("="):
                cmd = AtCommand(name, "set", _split_args(rest[1:]))
            elif rest.strip() == "":
                cmd = AtCommand(name, "action")
            else:
                raise AtSyntaxError(f"unexpected {rest!r} after {name}")
            commands.append(cmd)
            i = end + 1
            continue
        upper = ch.upper()
        if upper == "D":  # dial: the rest of the line is the dial string
            commands.append(AtCommand("D", "basic", (text[i + 1 :],)))
            break
        if upper == "S" and i + 1 < len(text) and text[i + 1].isdigit():
            j = i + 1
            while j < len(text) and text[j].isdigit():
                j += 1
            if text[j : j + 1] == "?":
                commands.append(AtCommand("S" + text[i + 1 : j], "read"))
                i = j + 1
            elif text[j : j + 1] == "=":
                k = j + 1
                while k < len(text) and text[k].isdigit():
                    k += 1
                commands.append(AtCommand("S" + text[i + 1 : j], "set", (text[j + 1 : k],)))
                i = k
            else:
                raise AtSyntaxError(f"S-register without ? or = at {text[i:]!r}")
            continue
        name = upper
        j = i + 1
        if ch == "&":
            if j >= len(text) or not text[j].isalpha():
                raise AtSyntaxError(f"& without a letter at {text[i:]!r}")
            name = "&" + text[j].upper()
            j += 1
        elif not ch.isalpha():
            raise AtSyntaxError(f"unexpected character {ch!r} in {line!r}")
        k = j
        while k < len(text) and text[k].isdigit():
            k += 1
        commands.append(AtCommand(name, "basic", (text[j:k],) if k > j else ()))
        i = k
    return commands
