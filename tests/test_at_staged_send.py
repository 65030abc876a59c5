"""Issue 10: ``send_with_prompt`` with work of the caller's around the PDU. The commit that
records a part 'writing' runs after the ``AT+CMGS`` line and before the PDU (overlapping the
modem's prompt, not before the command), the bookkeeping of the previous send once the PDU is
out; a commit that fails abandons the message with ESC, and nothing was sent."""

from __future__ import annotations

import pytest
from fakes.serial_port import FakeSerial, ok

from gateway.modem.at import ATChannel, PromptTimeout

PDU = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"


def modem(cmd: str) -> bytes | None:
    if cmd.startswith("AT+CMGS="):
        return b"\r\n> "
    if cmd.startswith("PDU:"):
        return b"\r\n> " + PDU.encode() + b"\x1a\r\n+CMGS: 42\r\n\r\nOK\r\n"
    if cmd == "AT+CMEE?":
        return ok("+CMEE: 2")
    if cmd == "AT+CSQ":
        return ok("+CSQ: 20,99")
    return None


@pytest.fixture
def channel():
    fake = FakeSerial(modem)
    chan = ATChannel("/dev/fake0", serial_factory=fake.factory, timeout=2.0)
    chan.open()
    yield chan, fake
    chan.close()


def test_the_commit_runs_between_the_command_line_and_the_pdu(channel) -> None:
    chan, fake = channel
    seen: list[tuple[str, list[str]]] = []

    resp = chan.send_with_prompt(
        "AT+CMGS=23",
        PDU,
        before_payload=lambda: seen.append(("before", list(fake.commands))),
        while_waiting=lambda: seen.append(("waiting", list(fake.commands))),
    )

    assert resp.prefixed("+CMGS") == ["42"]
    assert seen == [
        ("before", ["AT+CMGS=23"]),  # the command line is out, the PDU is not
        ("waiting", ["AT+CMGS=23", "PDU:" + PDU]),  # the PDU is out, the answer may come
    ]


def test_a_failed_commit_abandons_the_message_with_esc(channel) -> None:
    chan, fake = channel

    class DiskFull(Exception):
        pass

    def commit() -> None:
        raise DiskFull("database or disk is full")

    with pytest.raises(DiskFull):
        chan.send_with_prompt("AT+CMGS=23", PDU, before_payload=commit)
    assert fake.commands == ["AT+CMGS=23", "<ESC>"]  # the PDU never went out
    # The channel is back in step: the next command resyncs and gets its own answer.
    assert chan.command("AT+CSQ").lines == ("+CSQ: 20,99",)


def test_a_slow_commit_is_not_taken_for_a_missing_prompt(channel) -> None:
    """The prompt timeout counts from the end of the caller's commit: a commit slower than
    the timeout (a slow SD card) does not abandon a message whose prompt came long ago."""
    chan, fake = channel
    import time

    resp = chan.send_with_prompt(
        "AT+CMGS=23", PDU, prompt_timeout=0.05, before_payload=lambda: time.sleep(0.15)
    )
    assert resp.prefixed("+CMGS") == ["42"]
    assert fake.commands == ["AT+CMGS=23", "PDU:" + PDU]


def test_no_prompt_still_sends_esc_after_the_commit(channel) -> None:
    chan, fake = channel
    fake.responder = lambda c: ok("+CMEE: 2") if c == "AT+CMEE?" else None
    ran: list[str] = []
    with pytest.raises(PromptTimeout):
        chan.send_with_prompt(
            "AT+CMGS=23", PDU, prompt_timeout=0.05, before_payload=lambda: ran.append("commit")
        )
    assert ran == ["commit"]
    assert fake.commands == ["AT+CMGS=23", "<ESC>"]
