"""Keywords and opt-in paths end to end: the real daemon over the simulator, the keyword added
with ``gateway keyword add`` through the control socket, handsets texting the short codes'
numbers (issue 11)."""

from __future__ import annotations

import json

import pytest

from gateway.cli import main
from gateway.config import load_config
from gateway.store.profiles import custom_fields

from .harness import ALERTS, ALICE, BOB, NUM_A, NUM_C, SUPPORT, Gateway, make_config


@pytest.fixture
def running(tmp_path):
    config = make_config(tmp_path)
    gw = Gateway(load_config(config))
    gw.wait_up("a", "b", "c")
    yield config, gw
    gw.stop()


def keyword(capsys, config, *argv: str) -> dict:
    code = main(["keyword", *argv, "-c", str(config)])
    reply = json.loads(capsys.readouterr().out)
    assert code == (0 if reply["ok"] else 1)
    return reply


def test_a_handset_texts_a_keyword_answers_its_question_and_the_field_is_set(
    running, capsys
) -> None:
    config, gw = running
    added = keyword(
        capsys,
        config,
        "add",
        "School",
        "--short-code",
        SUPPORT,
        "--reply",
        "Welcome to the school list!",
        "--campaign",
        "Schools",
        "--ask",
        "school=Which school? Lincoln or Washington",
        "--choices",
        "school=Lincoln,Washington",
        "--done-reply",
        "Thanks, you are all set.",
    )
    assert added["keyword"]["word"] == "SCHOOL" and added["keyword"]["campaign"] == "Schools"
    alice = gw.net.handset(ALICE)
    alice.send(to=NUM_A, text="school please")
    assert alice.wait_for_message(timeout=5).text == "Welcome to the school list!"
    assert alice.wait_for_message(timeout=5).text == "Which school? Lincoln or Washington"
    gw.net.clock.advance(1)
    alice.send(to=NUM_A, text="Jefferson")
    wrong = alice.wait_for_message(timeout=5)
    assert wrong.sender == NUM_A and wrong.text.startswith("Please answer with one of: Lincoln")
    gw.net.clock.advance(1)
    alice.send(to=NUM_A, text="lincoln")
    assert alice.wait_for_message(timeout=5).text == "Thanks, you are all set."
    profile = gw.store.profiles.by_phone(ALICE)
    assert custom_fields(profile) == {"school": "Lincoln"}
    assert gw.store.subscriptions.subscribed(profile["id"], SUPPORT)
    # None of it waits in the Inbox: the keyword and its path answered.
    waiting = gw.store.db.value(
        "SELECT COUNT(*) FROM messages WHERE direction = 'in' AND agent_state IS NOT NULL"
    )
    assert waiting == 0
    (listed,) = keyword(capsys, config, "list")["keywords"]
    assert (listed["started"], listed["open"], listed["done"]) == (1, 0, 1)


def test_double_opt_in_from_a_handset_after_a_stop(running, capsys) -> None:
    config, gw = running
    keyword(
        capsys,
        config,
        "add",
        "JOIN",
        "--short-code",
        ALERTS,
        "--reply",
        "You will get our alerts.",
        "--double-opt-in",
        "--time-limit",
        "30",
    )
    bob = gw.net.handset(BOB)
    bob.send(to=NUM_C, text="STOP")
    assert "unsubscribed" in bob.wait_for_message(timeout=5).text
    gw.net.clock.advance(1)
    bob.send(to=NUM_C, text="Join")
    prompt = bob.wait_for_message(timeout=5)
    assert prompt.sender == NUM_C and "reply Y within 30 minutes to confirm" in prompt.text
    pid = gw.store.profiles.by_phone(BOB)["id"]
    assert not gw.store.subscriptions.subscribed(pid, ALERTS)
    gw.net.clock.advance(1)
    bob.send(to=NUM_C, text="y")
    assert bob.wait_for_message(timeout=5).text == "You will get our alerts."
    assert gw.store.subscriptions.subscribed(pid, ALERTS)
    acc = gw.services.outbox.submit("Storm warning", profile_id=pid, short_code=ALERTS)
    assert bob.wait_for_message(timeout=5).text == "Storm warning"
    gw.wait_status(acc.message_id, "delivered")
