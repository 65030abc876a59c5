"""The errors of a configuration file: each problem located by file, line and key path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


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
