"""A modem's sending health: whether the dispatcher routes messages to it.

A modem can be up (it answers, the manager calls it up) and still unable to send: a SIM that
asks for its PIN again, a modem that answers ``+CMS ERROR: 500`` to everything. Every failed
send that is the modem's fault (:class:`~.failures.Blame.MODEM`) counts; a sent part clears the
count. After ``failing_after`` in a row the modem leaves routing (``failing``) and its messages
go to the rest of the pool. After a pause (doubling up to a maximum) it is checked (SIM ready,
registered: the daemon wires the check); when the check passes it takes one message on trial
(``probing``), and a part sent brings it back (``ok``). A failed check or trial sends it back to
``failing`` with a longer pause.

States and the one place they change (:meth:`SendHealth._to`)::

    ok ──(N failures in a row)──▶ failing ──(check passes)──▶ probing ──(a part sent)──▶ ok
                                     ▲  └─(check fails)─┐        │
                                     └──────────────────┴────────┘ (the trial fails)
    any ──(the modem comes up again: reset)──▶ ok
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..store.times import iso


class SendState(enum.StrEnum):
    """Whether a modem that is up takes messages (in memory only: the dispatcher's, shown
    with the modem's status; a restart starts every modem at OK)."""

    OK = "ok"  # in routing
    FAILING = "failing"  # out of routing; checked again at ``probe_at``
    PROBING = "probing"  # the check passed; the next message it sends decides


class SendStateError(ValueError):
    """A move :data:`MOVES` does not allow: a bug in the dispatcher, never the modem's."""


# The moves of the picture above (staying is always allowed: another failure while FAILING
# lengthens the pause). Any state goes back to OK: a part sent, or the modem up again.
MOVES: dict[SendState, frozenset[SendState]] = {
    SendState.OK: frozenset({SendState.FAILING}),
    SendState.FAILING: frozenset({SendState.PROBING, SendState.OK}),
    SendState.PROBING: frozenset({SendState.OK, SendState.FAILING}),
}


@dataclass
class SendHealth:
    """The sending health of one modem (used by the dispatcher under its lock)."""

    failing_after: int
    probe_seconds: float
    probe_max_seconds: float
    state: SendState = SendState.OK
    failures: int = 0  # modem-blamed failures in a row
    reason: str | None = None  # the last of them
    since: datetime | None = None  # when it left OK
    probe_at: datetime | None = None  # when a FAILING modem is checked next
    pause: float = 0.0  # seconds between the last failure and probe_at

    @property
    def routable(self) -> bool:
        """Whether messages may be routed to it (a probing modem takes one at a time)."""
        return self.state is not SendState.FAILING

    def snapshot(self) -> dict[str, Any]:
        """What the Modems page, ``gateway modems`` and the events show."""
        return {
            "state": self.state.value,
            "failures": self.failures,
            "reason": self.reason,
            "since": iso(self.since) if self.since else None,
            "next_check": iso(self.probe_at) if self.probe_at else None,
        }

    # -- what happened -----------------------------------------------------------------------

    def sent(self, at: datetime) -> bool:
        """A part went out through this modem. True when the state changed."""
        self.failures = 0
        return self._to(SendState.OK, at, None)

    def failed(self, at: datetime, reason: str) -> bool:
        """A send failed by the modem's fault. True when the state changed."""
        self.failures += 1
        self.reason = reason
        if self.state is SendState.PROBING or (
            self.state is SendState.OK and self.failures >= self.failing_after
        ):
            return self._to(SendState.FAILING, at, reason)
        return False

    def checked(self, at: datetime, problem: str | None) -> bool:
        """The result of the check of a FAILING modem: None when it looks ready to send."""
        if self.state is not SendState.FAILING:
            return False
        if problem is None:
            return self._to(SendState.PROBING, at, self.reason)
        self.reason = problem
        return self._to(SendState.FAILING, at, problem)

    def reset(self, at: datetime) -> bool:
        """The modem came (back) up: a fresh start, whatever happened before."""
        self.failures = 0
        self.pause = 0.0
        return self._to(SendState.OK, at, None)

    def probe_due(self, at: datetime) -> bool:
        return self.state is SendState.FAILING and self.probe_at is not None and self.probe_at <= at

    # -- the one transition point ------------------------------------------------------------

    def _to(self, state: SendState, at: datetime, reason: str | None) -> bool:
        before = self.state
        if state is not before and state not in MOVES[before]:
            raise SendStateError(f"sending health: {before} may not become {state}")
        self.state = state
        self.reason = reason
        if state is SendState.OK:
            self.since = None
            self.probe_at = None
            self.pause = 0.0
        elif state is SendState.FAILING:
            # Each failure out of FAILING/PROBING doubles the pause before the next check.
            self.pause = (
                self.probe_seconds
                if before is SendState.OK or self.pause <= 0
                else min(self.pause * 2, self.probe_max_seconds)
            )
            self.probe_at = at + timedelta(seconds=self.pause)
            if before is SendState.OK:
                self.since = at
        else:  # PROBING: waits for a message, not for a timer
            self.probe_at = None
        return state is not before
