"""Keywords from a handset over the simulator: STOP opts out and confirms, a send is then
refused with the reason, START opts back in; HELP is answered; OOPS right after STOP undoes it."""

from __future__ import annotations

import pytest

from gateway.messaging.outbound import SendRefused

from .harness import ALERTS, ALICE, BOB, NUM_A, NUM_C, SUPPORT, wait_until


def _subscribed(gateway, phone: str, short_code: str = SUPPORT) -> bool | None:
    """Whether the profile of ``phone`` is subscribed to ``short_code`` (a STOP opts out of
    the short code texted alone)."""
    profile = gateway.store.profiles.by_phone(phone)
    if profile is None:
        return None
    return gateway.store.subscriptions.subscribed(profile["id"], short_code)


def _actions(gateway, phone: str) -> list[str]:
    profile = gateway.store.profiles.by_phone(phone)
    return [e["action"] for e in gateway.store.opt_events.history(profile["id"])]


def test_stop_refused_send_then_start(gateway):
    alice = gateway.net.handset(ALICE)
    gateway.services.outbox.submit("Welcome!", to=ALICE, short_code=SUPPORT)
    assert alice.wait_for_message(timeout=5).sender == NUM_A

    alice.send(to=NUM_A, text=" stop ")
    confirm = alice.wait_for_message(timeout=5)
    assert confirm.sender == NUM_A and "unsubscribed from Support" in confirm.text
    assert _subscribed(gateway, ALICE) is False
    assert _subscribed(gateway, ALICE, ALERTS) is True
    stop_msg = gateway.store.db.q1(
        "SELECT * FROM messages WHERE direction = 'in' AND phone = ? ORDER BY id DESC", (ALICE,)
    )
    assert stop_msg["kind"] == "opt-out"

    with pytest.raises(SendRefused) as refused:
        gateway.services.outbox.submit("Are you there?", to=ALICE, short_code=SUPPORT)
    assert refused.value.field == "profile"
    assert "opted out" in refused.value.reason and "START" in refused.value.reason

    alice.send(to=NUM_A, text="Start")
    back = alice.wait_for_message(timeout=5)
    assert back.sender == NUM_A and "subscribed to Support again" in back.text
    assert _subscribed(gateway, ALICE) is True
    assert _actions(gateway, ALICE)[-2:] == ["opt_out", "opt_in"]
    acc = gateway.services.outbox.submit("Glad you're back", to=ALICE, short_code=SUPPORT)
    assert alice.wait_for_message(timeout=5).text == "Glad you're back"
    gateway.wait_status(acc.message_id, "delivered")


def test_help_is_answered_from_the_short_code_of_the_modem(gateway):
    bob = gateway.net.handset(BOB)
    bob.send(to=NUM_C, text="help")
    answer = bob.wait_for_message(timeout=5)
    assert answer.sender == NUM_C
    assert answer.text == "Alerts: reply STOP to unsubscribe, START to subscribe again."
    assert _subscribed(gateway, BOB, ALERTS) is True  # HELP changes nothing


def test_oops_right_after_stop_undoes_it(gateway):
    bob = gateway.net.handset(BOB)
    bob.send(to=NUM_A, text="UNSUBSCRIBE")
    assert "unsubscribed" in bob.wait_for_message(timeout=5).text
    assert _subscribed(gateway, BOB) is False
    bob.send(to=NUM_A, text="oops")
    undo = bob.wait_for_message(timeout=5)
    assert "your STOP was undone" in undo.text and undo.sender == NUM_A
    assert _subscribed(gateway, BOB) is True
    assert _actions(gateway, BOB) == ["opt_out", "undo_opt_out"]
    # OOPS again, not right after a STOP: an ordinary message for the team, nothing changes.
    # A second later on the network clock: the same text in the same second is the same PDU
    # (the SCTS has one-second precision), which the gateway stores once by design.
    gateway.net.clock.advance(1)
    undone_id = gateway.store.db.value("SELECT MAX(id) FROM messages WHERE body LIKE '%undone%'")
    bob.send(to=NUM_A, text="oops")
    last = wait_until(
        gateway.sub,
        lambda: gateway.store.db.q1(
            "SELECT * FROM messages WHERE direction = 'in' AND phone = ? AND id > ?",
            (BOB, undone_id),
        ),
        5,
        "the second oops",
    )
    assert last["kind"] == "reply" and last["agent_state"] == "open"
    assert _actions(gateway, BOB) == ["opt_out", "undo_opt_out"]
