"""Subscription per short code, keywords and opt-in paths (issue 11): the rules, through
inbound texts as a modem hands them over (modem a is short code 55123, modem c is 55999)."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.messaging import optin
from gateway.messaging.optin import KeywordInvalid, Question
from gateway.messaging.outbound import SendRefused
from gateway.modem import pdu
from gateway.store import Store, migrations
from gateway.store.profiles import custom_fields
from gateway.store.times import now

from .conftest import World

HANDSET = "+15551230001"
SUPPORT, ALERTS = "55123", "55999"
MODEM_OF = {SUPPORT: "a", ALERTS: "c"}
_refs = iter(range(1, 10_000))


def text(world: World, code: str, body: str, *, sent: datetime | None = None) -> int:
    """The handset texts ``body`` to short code ``code``; returns the inbound message id. Each
    text gets its own network time stamp (by default a second apart, from now: the same text
    twice is two texts, not one PDU read twice)."""
    n = next(_refs)
    sent = sent or (now() + timedelta(seconds=n)).replace(microsecond=0)
    hexpdu = pdu.encode_deliver(HANDSET, body, reference=n % 256, timestamp=sent)[0]
    got = world.inbound.receive(MODEM_OF[code], hexpdu)
    assert got.message_id
    return got.message_id


def replies(world: World) -> list[str]:
    rows = world.store.db.q("SELECT body FROM messages WHERE direction = 'out' ORDER BY id")
    return [r["body"] for r in rows]


def profile(world: World):
    return world.store.profiles.by_phone(HANDSET)


def subscribed(world: World, code: str) -> bool:
    return world.store.subscriptions.subscribed(profile(world)["id"], code)


# -- subscription per short code -----------------------------------------------------------------


def test_stop_on_one_short_code_and_start_on_another_leave_each_its_own_state(
    world: World,
) -> None:
    world.store.profiles.add(HANDSET, "Ann")
    text(world, SUPPORT, "STOP")
    assert not subscribed(world, SUPPORT) and subscribed(world, ALERTS)
    text(world, ALERTS, "STOP")
    text(world, ALERTS, "start")
    assert not subscribed(world, SUPPORT) and subscribed(world, ALERTS)
    assert profile(world)["subscribed"] == 1  # the default of short codes with no row: unchanged
    pid = profile(world)["id"]
    with pytest.raises(SendRefused, match="opted out of 55123; they must text START to 55123"):
        world.outbox.submit("news", profile_id=pid, short_code=SUPPORT)
    assert world.outbox.submit("news", profile_id=pid, short_code=ALERTS).created
    history = world.store.opt_events.history(pid)
    assert [(e["action"], e["short_code"], e["all_codes"]) for e in history] == [
        ("opt_out", SUPPORT, 0),
        ("opt_out", ALERTS, 0),
        ("opt_in", ALERTS, 0),
    ]


def test_stop_all_opts_out_of_every_short_code_and_start_brings_back_one(world: World) -> None:
    world.store.profiles.add(HANDSET, "Ann")
    text(world, SUPPORT, "STOP")
    text(world, SUPPORT, "START")  # a row of its own for 55123, subscribed
    text(world, ALERTS, "Stop all")
    assert not subscribed(world, SUPPORT) and not subscribed(world, ALERTS)
    assert profile(world)["subscribed"] == 0
    assert "unsubscribed from all our numbers" in replies(world)[-1]
    last = world.store.opt_events.last(profile(world)["id"])
    assert (last["action"], last["short_code"], last["all_codes"]) == ("opt_out", ALERTS, 1)
    text(world, SUPPORT, "start")
    assert subscribed(world, SUPPORT) and not subscribed(world, ALERTS)


def test_oops_undoes_a_stop_as_wide_as_it_was(world: World) -> None:
    world.store.profiles.add(HANDSET, "Ann")
    text(world, SUPPORT, "STOP ALL")
    text(world, SUPPORT, "oops")
    assert subscribed(world, SUPPORT) and subscribed(world, ALERTS)
    text(world, ALERTS, "STOP")
    text(world, ALERTS, "oops")
    assert subscribed(world, ALERTS) and profile(world)["subscribed"] == 1


def _stop_means_all_on_alerts(config: Config) -> Config:
    """55999 configured as the law says in some countries: STOP ends every message."""
    sc = config.short_codes[1]
    keywords = dataclasses.replace(sc.keywords, opt_out=("END",), opt_out_all=("STOP",))
    alerts = dataclasses.replace(sc, keywords=keywords)
    return dataclasses.replace(config, short_codes=(config.short_codes[0], alerts))


def test_the_laws_wording_makes_stop_mean_all_on_a_short_code(tmp_path: Path) -> None:
    w = World(tmp_path, adjust=_stop_means_all_on_alerts)
    try:
        w.store.profiles.add(HANDSET, "Ann")
        text(w, SUPPORT, "stop")
        assert not subscribed(w, SUPPORT) and subscribed(w, ALERTS)
        text(w, ALERTS, "stop")
        assert not subscribed(w, SUPPORT) and not subscribed(w, ALERTS)
    finally:
        w.close()


def test_a_queued_text_is_failed_at_send_time_only_on_the_short_code_opted_out_of(
    world: World,
) -> None:
    pid = world.store.profiles.add(HANDSET, "Ann")
    to_support = world.outbox.submit("one", profile_id=pid, short_code=SUPPORT).message_id
    to_alerts = world.outbox.submit("two", profile_id=pid, short_code=ALERTS).message_id
    text(world, SUPPORT, "STOP")  # while both wait for a modem
    world.up("a", "c")
    assert world.wait_status(to_support, {"failed"}) == "failed"
    assert "opted out of 55123" in world.store.messages.get(to_support)["error"]
    assert world.wait_status(to_alerts, {"sent", "failed"}) == "sent"


def test_migration_6_keeps_who_opted_out_opted_out_of_every_short_code(tmp_path: Path) -> None:
    before = [m for m in migrations.MIGRATIONS if m[0] <= 4]
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(migrations, "MIGRATIONS", before)
        s = Store.open(tmp_path)
        out = s.profiles.add("+15551230001", "Out", subscribed=False)
        inn = s.profiles.add("+15551230002", "In")
        s.db.execute(
            "INSERT INTO opt_events (profile_id, short_code, action, source, created_at)"
            " VALUES (?, ?, 'opt_out', 'keyword', '2026-01-01T00:00:00+00:00')",
            (out, SUPPORT),
        )
        s.close()
    s = Store.open(tmp_path)
    try:
        for code in (SUPPORT, ALERTS, "77777"):
            assert not s.subscriptions.subscribed(out, code)
            assert s.subscriptions.subscribed(inn, code)
            where, params = s.subscriptions.textable_sql(code)
            ids = [r["id"] for r in s.db.q(f"SELECT p.id FROM profiles p WHERE {where}", params)]
            assert ids == [inn]
        (event,) = s.opt_events.history(out)
        assert event["all_codes"] == 1  # a STOP before per-short-code subscriptions meant all
    finally:
        s.close()


# -- keywords ------------------------------------------------------------------------------------


def add(world: World, word: str = "JOIN", **fields) -> None:
    fields.setdefault("reply", f"Welcome to {word}!")
    world.services.keywords.add(short_code=SUPPORT, word=word, actor="test", **fields)


def test_a_keyword_matches_the_first_word_ignoring_case_and_accents(world: World) -> None:
    add(world, "Inscríbeme", reply="¡Bienvenido!", campaign="Spring")
    world.store.profiles.add(HANDSET, "Ann")
    text(world, SUPPORT, "STOP")
    mid = text(world, SUPPORT, "INSCRIBEME ahora, por favor")
    msg = world.store.messages.get(mid)
    assert msg["kind"] == "keyword" and msg["agent_state"] is None  # not for the Inbox
    assert replies(world)[-1] == "¡Bienvenido!"
    assert subscribed(world, SUPPORT)  # the campaign's keyword subscribes to its short code
    reply = world.store.db.q1("SELECT * FROM messages WHERE direction = 'out' ORDER BY id DESC")
    assert world.store.campaigns.get(reply["campaign_id"])["name"] == "Spring"
    # Elsewhere in a text, or on another short code, it is an ordinary message for the team.
    for code, body in ((SUPPORT, "I want to inscribeme"), (ALERTS, "inscribeme")):
        other = world.store.messages.get(text(world, code, body))
        assert other["kind"] == "reply" and other["agent_state"] == "open"


def test_stop_start_and_help_keep_precedence_over_keywords(world: World) -> None:
    with pytest.raises(KeywordInvalid, match="opt-out keyword of 55123"):
        add(world, "stop")
    with pytest.raises(KeywordInvalid, match="help keyword"):
        add(world, "Help")
    with pytest.raises(KeywordInvalid, match="one word"):
        add(world, "join now")
    with pytest.raises(KeywordInvalid, match="unknown short code"):
        world.services.keywords.add(short_code="999", word="JOIN", reply="x", actor="t")
    add(world, "JOIN")
    with pytest.raises(KeywordInvalid, match="already has the keyword"):
        add(world, "join")
    with pytest.raises(KeywordInvalid) as bad:
        add(world, "SCHOOL", questions=[Question("phone", "Your phone?")])
    assert "profile column" in bad.value.errors["question_1"]


def test_double_opt_in_subscribes_only_after_y(world: World) -> None:
    add(world, "JOIN", campaign="News", double_opt_in=True, time_limit_minutes=60)
    world.store.profiles.add(HANDSET, "Ann")
    text(world, SUPPORT, "STOP")
    text(world, SUPPORT, "Join")
    assert "reply Y within 1 hour to confirm" in replies(world)[-1]
    assert not subscribed(world, SUPPORT)
    # Something else meanwhile is a message for the team; the path still waits.
    assert world.store.messages.get(text(world, SUPPORT, "what is this?"))["agent_state"] == "open"
    mid = text(world, SUPPORT, "y")
    assert world.store.messages.get(mid)["kind"] == "confirm"
    assert subscribed(world, SUPPORT) and replies(world)[-1] == "Welcome to JOIN!"
    (path,) = world.store.keyword_paths.of_profile(profile(world)["id"])
    assert path["state"] == "done"
    last = world.store.opt_events.last(profile(world)["id"])
    assert (last["action"], last["source"], last["message_id"]) == ("opt_in", "keyword", mid)


def _started_ago(monkeypatch, minutes: float) -> None:
    """Paths started from now on start ``minutes`` ago (the time limit runs from then)."""
    monkeypatch.setattr(optin, "now", lambda: now() - timedelta(minutes=minutes))


def test_double_opt_in_expires_and_a_late_y_goes_to_the_inbox(world: World, monkeypatch) -> None:
    add(world, "JOIN", campaign="News", double_opt_in=True, time_limit_minutes=5)
    world.store.profiles.add(HANDSET, "Ann")
    text(world, SUPPORT, "STOP")
    _started_ago(monkeypatch, 6)
    text(world, SUPPORT, "JOIN")
    monkeypatch.undo()
    mid = text(world, SUPPORT, "Y")
    assert world.store.messages.get(mid)["agent_state"] == "open"
    assert not subscribed(world, SUPPORT)
    (path,) = world.store.keyword_paths.of_profile(profile(world)["id"])
    assert path["state"] == "expired"


def test_the_housekeeper_records_an_expiry_when_it_happens(world: World, monkeypatch) -> None:
    add(world, "JOIN", campaign="News", double_opt_in=True, time_limit_minutes=5)
    _started_ago(monkeypatch, 60)
    text(world, SUPPORT, "JOIN")
    monkeypatch.undo()
    (path,) = world.store.keyword_paths.of_profile(profile(world)["id"])
    assert path["state"] == "confirming"  # nobody texted since: only the sweep can tell
    wait = world.inbound.optin.expire_due()
    (path,) = world.store.keyword_paths.of_profile(profile(world)["id"])
    assert path["state"] == "expired"
    assert wait is None  # no other open path


def test_a_y_sent_in_time_but_read_late_still_confirms(world: World, monkeypatch) -> None:
    """The gateway was down when the Y came; it was on the SIM and is read after the limit."""
    add(world, "JOIN", campaign="News", double_opt_in=True, time_limit_minutes=5)
    world.store.profiles.add(HANDSET, "Ann")
    text(world, SUPPORT, "STOP")
    _started_ago(monkeypatch, 10)
    text(world, SUPPORT, "JOIN")
    monkeypatch.undo()
    sent = (now() - timedelta(minutes=7)).astimezone(UTC).replace(microsecond=0)
    text(world, SUPPORT, "Y", sent=sent)
    assert subscribed(world, SUPPORT)


SCHOOL = [
    Question("school", "Which school?", ("Lincoln Elementary", "Washington")),
    Question("grade", "Which grade?", ("3", "4", "5"), "Grades 3, 4 or 5 only."),
]


def test_a_path_of_questions_fills_profile_fields_with_a_reply_to_invalid_answers(
    world: World,
) -> None:
    add(world, "SCHOOL", questions=SCHOOL, done_reply="Thanks, all set.")
    text(world, SUPPORT, "school")
    assert replies(world)[-2:] == ["Welcome to SCHOOL!", "Which school?"]
    text(world, SUPPORT, "Lincoln")
    assert replies(world)[-1].startswith("Please answer with one of: Lincoln Elementary")
    mid = text(world, SUPPORT, "  lincoln elementary ")
    assert world.store.messages.get(mid)["kind"] == "answer"
    assert replies(world)[-1] == "Which grade?"
    text(world, SUPPORT, "7")
    assert replies(world)[-1] == "Grades 3, 4 or 5 only."
    text(world, SUPPORT, "4")
    assert replies(world)[-1] == "Thanks, all set."
    assert custom_fields(profile(world)) == {"school": "Lincoln Elementary", "grade": "4"}
    # The path is over: the next text is for the team again.
    assert world.store.messages.get(text(world, SUPPORT, "thanks"))["agent_state"] == "open"


def test_the_way_out_and_stop_end_a_path(world: World) -> None:
    add(world, "SCHOOL", questions=SCHOOL, exit_word="exit", exit_reply="OK, stopped.")
    text(world, SUPPORT, "SCHOOL")
    text(world, SUPPORT, "Exit")
    assert replies(world)[-1] == "OK, stopped."
    assert subscribed(world, SUPPORT)  # the way out of questions is not an opt-out
    text(world, SUPPORT, "SCHOOL")
    text(world, SUPPORT, "STOP")
    assert not subscribed(world, SUPPORT)
    states = [p["state"] for p in world.store.keyword_paths.of_profile(profile(world)["id"])]
    assert states == ["cancelled", "cancelled"]
    assert custom_fields(profile(world)) == {}


def test_a_restart_in_the_middle_of_a_path_goes_on_where_it_was(tmp_path: Path) -> None:
    w = World(tmp_path)
    add(w, "SCHOOL", questions=SCHOOL)
    text(w, SUPPORT, "SCHOOL")
    text(w, SUPPORT, "Washington")
    w.close()
    # The answer to the second question arrived while the gateway was down: it is on the
    # SIM and read once the new process is up.
    w = World(tmp_path)
    try:
        text(w, SUPPORT, "5")
        assert custom_fields(profile(w)) == {"school": "Washington", "grade": "5"}
        (path,) = w.store.keyword_paths.of_profile(profile(w)["id"])
        assert path["state"] == "done"
    finally:
        w.close()


def test_removing_a_keyword_cancels_its_open_paths(world: World) -> None:
    add(world, "SCHOOL", questions=SCHOOL)
    text(world, SUPPORT, "SCHOOL")
    world.services.keywords.remove(short_code=SUPPORT, word="school", actor="test")
    (path,) = world.store.keyword_paths.of_profile(profile(world)["id"])
    assert path["state"] == "cancelled"
    assert world.store.messages.get(text(world, SUPPORT, "Lincoln"))["agent_state"] == "open"
    assert world.services.keywords.live() == []


def test_the_schema_holds_the_path_machine(world: World) -> None:
    add(world, "SCHOOL", questions=SCHOOL)
    text(world, SUPPORT, "SCHOOL")
    text(world, SUPPORT, "exit")
    (path,) = world.store.keyword_paths.of_profile(profile(world)["id"])
    with pytest.raises(
        sqlite3.IntegrityError, match=r"keyword_paths\.state: from cancelled it is final"
    ):
        world.store.db.execute(
            "UPDATE keyword_paths SET state = 'asking' WHERE id = ?", (path["id"],)
        )
    with pytest.raises(sqlite3.IntegrityError, match=r"keyword_paths\.state must be one of"):
        world.store.db.execute(
            "UPDATE keyword_paths SET state = 'paused' WHERE id = ?", (path["id"],)
        )


def test_an_inactive_profiles_keyword_goes_to_the_team(world: World) -> None:
    add(world, "JOIN", campaign="News")
    world.store.profiles.add(HANDSET, "Ann", status="inactive")
    msg = world.store.messages.get(text(world, SUPPORT, "join"))
    assert msg["kind"] == "reply" and msg["agent_state"] == "open"
    assert replies(world) == [] and world.store.keyword_paths.of_profile(profile(world)["id"]) == []


def test_an_edited_keyword_changes_the_paths_already_open(world: World) -> None:
    add(world, "SCHOOL", questions=SCHOOL[:1])
    text(world, SUPPORT, "SCHOOL")
    (kw,) = world.services.keywords.live()
    world.services.keywords.update(
        kw["id"],
        reply="Welcome!",
        actor="test",
        questions=[Question("school", "Your school?", ("Lincoln", "Roosevelt")), SCHOOL[1]],
    )
    text(world, SUPPORT, "roosevelt")
    assert replies(world)[-1] == "Which grade?"
    text(world, SUPPORT, "5")
    assert custom_fields(profile(world)) == {"school": "Roosevelt", "grade": "5"}
    with pytest.raises(optin.KeywordNotFound):
        world.services.keywords.update(999, reply="x", actor="test")


def test_a_path_that_waits_wakes_the_housekeeper(world: World) -> None:
    """So that its expiry is recorded when it happens, not at the housekeeper's next chore."""
    add(world, "JOIN", campaign="News", double_opt_in=True)
    world.inbound.stale_changed.clear()
    text(world, SUPPORT, "JOIN")
    assert world.inbound.stale_changed.is_set()


def test_a_keyword_with_nothing_to_ask_is_counted_and_leaves_an_open_path_alone(
    world: World,
) -> None:
    add(world, "HOURS", reply="Open 8-16 on weekdays.")
    add(world, "SCHOOL", questions=SCHOOL)
    text(world, SUPPORT, "SCHOOL")
    text(world, SUPPORT, "hours?")
    assert replies(world)[-1] == "Open 8-16 on weekdays."
    text(world, SUPPORT, "Lincoln Elementary")  # the path still waits for its answer
    assert custom_fields(profile(world)) == {"school": "Lincoln Elementary"}
    counts = {k["word"]: (k["started"], k["open"], k["done"]) for k in world.store.keywords.live()}
    assert counts == {"HOURS": (1, 0, 1), "SCHOOL": (1, 1, 0)}
