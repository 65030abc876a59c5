"""The state of a supervised modem (``ModemStatus.state``), kept in memory only: the store
keeps a modem's identity and counters, never its state, so there is no schema to hold it.
The modem manager changes it in one place (``ModemManager._set``), which checks each move
against :data:`MOVES`.

::

    searching ──▶ starting ──▶ up ──▶ down ──▶ searching / starting (found again)
        │            │  ▲       │
        └─▶ failed ◀─┘  └ starting (a reset)      failed: the wrong modem on its port, or a
                                                  SIM that needs a PIN or PUK it lacks

``unconfigured`` is for a modem found that no configuration names: made so, never moved.
"""

from __future__ import annotations

import enum


class ModemState(enum.StrEnum):
    """Where the manager is with one modem (shown as the same words, and by ``gateway
    modems``; the dispatcher's sending health can show an up modem as failing or probing)."""

    SEARCHING = "searching"  # looking for its port
    STARTING = "starting"  # port found: opening and setting it up (also during a reset)
    UP = "up"  # ready to send and receive
    DOWN = "down"  # lost (unplugged, hung, failed to start): looked for again with backoff
    FAILED = "failed"  # cannot be used until a person fixes it
    UNCONFIGURED = "unconfigured"  # an AT port that no configured modem claims


class ModemStateError(ValueError):
    """A move the table does not allow: a bug in the manager, never the modem's fault."""


_S = ModemState
MOVES: dict[ModemState, frozenset[ModemState]] = {
    _S.SEARCHING: frozenset({_S.STARTING, _S.FAILED}),
    _S.STARTING: frozenset({_S.UP, _S.DOWN, _S.FAILED}),
    _S.UP: frozenset({_S.STARTING, _S.DOWN}),
    # A supervisor's internal error after a failure still leaves it down.
    _S.DOWN: frozenset({_S.SEARCHING, _S.STARTING, _S.FAILED}),
    _S.FAILED: frozenset({_S.SEARCHING, _S.STARTING, _S.DOWN}),
    _S.UNCONFIGURED: frozenset(),
}


def check_move(old: ModemState | str, new: ModemState | str) -> ModemState:
    """``new`` as a member, or :class:`ModemStateError` when ``old`` may not become it
    (staying the same is always allowed)."""
    old, new = ModemState(old), ModemState(new)
    if old is not new and new not in MOVES[old]:
        raise ModemStateError(f"a modem {old} may not become {new}")
    return new
