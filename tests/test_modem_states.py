"""The in-memory state machines: a supervised modem's state (modem/states.py, moved only by
ModemManager._set) and a modem's sending health (messaging/health.py, moved only by
SendHealth._to). Neither is stored, so no schema holds them: these tables do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.messaging.health import MOVES, SendHealth, SendState
from gateway.modem.manager import ModemStatus
from gateway.modem.states import ModemState, ModemStateError, check_move


def test_a_modem_moves_only_as_the_table_says() -> None:
    for old, new in [("searching", "starting"), ("starting", "up"), ("up", "starting"),
                     ("up", "down"), ("down", "searching"), ("failed", "starting"),
                     ("up", "up")]:  # fmt: skip
        assert check_move(old, new) == new
    for old, new in [("up", "searching"), ("searching", "up"), ("unconfigured", "up")]:
        with pytest.raises(ModemStateError, match=f"a modem {old} may not become {new}"):
            check_move(old, new)
    with pytest.raises(ValueError):
        check_move("up", "sleeping")


def test_a_status_shows_the_same_words_as_before() -> None:
    status = ModemStatus("a", state=ModemState.UP, sending={"state": SendState.FAILING})
    assert status.to_json()["state"] == "failing"
    assert ModemStatus("b").to_json()["state"] == "searching"


def test_sending_health_moves_only_as_the_table_says() -> None:
    assert set(MOVES) == set(SendState)
    assert SendState.PROBING not in MOVES[SendState.OK]  # a check comes only after failures
    at = datetime(2026, 1, 1, tzinfo=UTC)
    health = SendHealth(failing_after=1, probe_seconds=1, probe_max_seconds=4)
    assert not health.checked(at, None)  # an OK modem is not checked: no move
    assert health.failed(at, "CMS 500") and health.state is SendState.FAILING
    assert health.checked(at, None) and health.state is SendState.PROBING
    assert health.sent(at) and health.state is SendState.OK
    assert health.snapshot()["state"] == "ok"
