"""A per-input time bound for fuzzing: a parser that loops on one input fails the test with that
input named, instead of hanging the run until the suite's timeout fires with no clue.

It uses the process's *virtual* (user CPU) interval timer and SIGVTALRM, so it does not disturb
pytest-timeout, which uses the real-time timer and SIGALRM. A loop in Python code burns CPU, so
the timer fires; the handler raises in the main thread, where the fuzz loop runs.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class InputTooSlow(AssertionError):
    """One input took more than its CPU-time bound (a hang or a quadratic path)."""


@contextmanager
def cpu_bound_per_input(seconds: float) -> Iterator[Any]:
    """``with cpu_bound_per_input(1.0) as arm: for x in inputs: arm(x); parse(x)``

    Yields ``arm(label)``: call it before each input (it restarts the timer and remembers the
    label, shown with repr() only if the bound is hit); the timer stops when the block ends.
    """
    current: list[object] = [None]

    def fire(signum: int, frame: Any) -> None:
        raise InputTooSlow(f"more than {seconds} s of CPU on one input: {current[0]!r}")

    def arm(label: object) -> None:
        current[0] = label
        signal.setitimer(signal.ITIMER_VIRTUAL, seconds)

    previous = signal.signal(signal.SIGVTALRM, fire)
    try:
        yield arm
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)
