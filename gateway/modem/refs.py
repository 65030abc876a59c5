"""Concatenation references that do not repeat for the same recipient.

A handset reassembles parts by (sender, reference, total); if two long messages to the same
number reuse a reference while the first is still incomplete, the parts mix. A reference is
therefore allocated per recipient from a counter that survives restarts and is shared by every
modem of the gateway (the daemon keeps it in the store; this module has the file-backed version
for the CLI and the interface both follow).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


class ReferenceAllocator(Protocol):
    """Hands out the next concatenation reference for a recipient."""

    def next(self, recipient: str, *, bits: int = 8) -> int:
        """The reference to use for the next multipart message to ``recipient``."""
        ...


class ReferenceStateError(OSError):
    """The file that keeps the references cannot be read or written."""


def step(last: int | None, bits: int) -> int:
    """The reference after ``last``; a recipient never seen starts at a random place so that two
    gateways (or a lost state file) are unlikely to collide."""
    modulus = 1 << bits
    if last is None:
        return secrets.randbelow(modulus)
    return (last + 1) % modulus


class FileReferenceAllocator:
    """A ReferenceAllocator kept in a small JSON file, written atomically on each allocation.

    Several instances (one per modem thread, or several processes) may share one file: each
    allocation holds an exclusive ``flock`` on ``<file>.lock`` from reading to writing, so two
    modems never hand out the same reference.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, int]:
        try:
            with self.path.open(encoding="utf-8") as f:
                state = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ReferenceStateError(f"{self.path}: cannot read reference state: {exc}") from exc
        if not isinstance(state, dict):
            raise ReferenceStateError(f"{self.path}: reference state is not a JSON object")
        try:
            return {k: int(v) for k, v in state.items()}
        except (TypeError, ValueError) as exc:
            raise ReferenceStateError(
                f"{self.path}: reference state holds a non-number: {exc}"
            ) from exc

    def _save(self, state: dict[str, int]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".refs-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise ReferenceStateError(f"{self.path}: cannot write reference state: {exc}") from exc

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ReferenceStateError(f"{lock_path}: cannot open the lock file: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def next(self, recipient: str, *, bits: int = 8) -> int:
        key = f"{bits}:{recipient}"
        with self._lock, self._file_lock():
            state = self._load()
            ref = step(state.get(key), bits)
            state[key] = ref
            self._save(state)
            return ref
