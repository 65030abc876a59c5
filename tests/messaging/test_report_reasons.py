"""The error a failed message shows for its status report: what happened in words a user can act
on, then the report's code and its TS 23.040 meaning; a code with no sentence of its own keeps
the spec's words."""

from __future__ import annotations

import pytest

from gateway.messaging.reports import failure_reason


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (0x43, "the number does not exist or is not in service; check the number"),
        (0x41, "the phone cannot receive this kind of message"),
        (0x46, "the phone could not be reached before the message expired"),
        (0x45, "no interworking available"),  # TS 23.040's words, no sentence of ours
        (0x50, "permanent error"),  # service-centre specific: the category
        (0x62, "no response from recipient, no longer trying"),
    ],
)
def test_failure_reason_names_what_happened_and_the_code(status: int, says: str) -> None:
    reason = failure_reason(status)
    assert reason.startswith(f"the network could not deliver it: {says}")
    assert f"(status report 0x{status:02X}, " in reason
