"""Broadcasts through the store, the feeder and the dispatcher with fake modem links: audiences,
skipped recipients, merge fields and the longest expansion, the window, chat first, pause,
resume, cancel, schedules, per-recipient time zones, replies marked with their broadcast."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway.messaging.broadcasts import BroadcastService, SendRefused, expand, merge_fields
from gateway.messaging.outbound import PRIORITY_BULK
from gateway.store.audiences import AudienceError, Condition, Definition, parse_condition
from gateway.store.states import BroadcastState, MessageStatus, RecipientState

from .conftest import World

SC = "55123"


class Clock:
    """A clock the test moves (the dispatcher's and the feeder's)."""

    def __init__(self) -> None:
        self.at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


def _profiles(w: World, n: int, **custom) -> list[int]:
    return [
        w.store.profiles.add(f"+1555020{i:04d}", f"Pat{i} Lee", custom=dict(custom))
        for i in range(n)
    ]


def _wait(w: World, check, timeout: float = 8.0) -> None:
    """Wait on the bus until ``check()`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("condition not reached")
        w.sub.get(timeout=min(left, 0.5))


def _status(w: World, bid: int) -> dict:
    return w.services.broadcasts.status(bid)


@pytest.fixture
def feeding(world: World):
    world.services.broadcasts.start()
    yield world
    world.services.broadcasts.stop()


# -- audiences -----------------------------------------------------------------------------


def test_conditions_over_fields_custom_fields_lists_and_short_codes(world: World) -> None:
    s = world.store
    a = s.profiles.add(
        "+15550300001", "Ann Diaz", custom={"school": "Lincoln Elementary", "grade": 3}
    )
    b = s.profiles.add(
        "+15550300002", "Bob Ray", custom={"school": "lincoln elementary", "grade": "5"}
    )
    c = s.profiles.add("+15550300003", "Cy Oh", custom={"school": "Adams", "grade": 4})
    s.profiles.update(c, status="inactive")
    d = s.profiles.add("+15550300004", "Di", subscribed=False)
    au = s.audiences

    def ids(*texts: str, match: str = "all") -> set[int]:
        defn = Definition(tuple(parse_condition(t) for t in texts), match)
        preview = au.preview(defn)
        assert preview.count == len(preview.sample)
        return {r["id"] for r in preview.sample}

    assert ids("school = Lincoln Elementary") == {a, b}  # case does not matter
    assert ids("grade in 3,4,5") == {a, b, c}  # numbers and texts alike
    assert ids("grade in 3,4,5", "status = active") == {a, b}
    assert ids("school != Adams", "subscribed = no") == {d}
    assert ids("name starts with B", "name contains oh", match="any") == {b, c}
    assert ids("school is empty") == {d}
    assert ids("last_activity is empty") == {a, b, c, d}
    world.outbox.submit("hi", profile_id=a, short_code="55999")
    assert ids("short_code = 55999") == {a}
    assert ids("short_code != 55999", "status = active") == {b, d}
    assert ids("last_activity within 1") == {a}
    lst = au.create_list("Field trip")
    assert au.add_members(lst, [b, c, b]) == 2
    assert ids("list = field trip") == {b, c}
    assert ids("added after 2000-01-01") == {a, b, c, d}
    assert ids("opted_in before 2000-01-01") == set()


@pytest.mark.parametrize(
    "text",
    ["school", "status = maybe", "grade >> 3", "last_activity within soon", "added before May"],
)
def test_a_condition_that_cannot_be_read_says_why(text: str) -> None:
    with pytest.raises(AudienceError):
        parse_condition(text)


def test_segments_are_saved_by_unique_name(world: World) -> None:
    au = world.store.audiences
    d = Definition((Condition("status", "=", "active"),))
    au.save_segment("Active", d)
    assert Definition.from_json(au.segment_named("active")["definition"]) == d
    with pytest.raises(AudienceError, match="already exists"):
        au.save_segment("ACTIVE", d)


# -- creating ------------------------------------------------------------------------------


def test_create_counts_recipients_and_skips_opted_out_and_inactive(world: World) -> None:
    ids = _profiles(world, 5, school="Lincoln")
    world.store.profiles.update(ids[0], subscribed=False)
    world.store.profiles.update(ids[1], status="inactive")
    bs = world.services.broadcasts
    audience = bs.audience(conditions=bs.parse_where(["school=Lincoln"]))
    reply = bs.create("Hi {first_name}", short_code=SC, audience=audience, name="Hello")
    assert reply == {
        "ok": True,
        "id": reply["id"],
        "recipients": 3,
        "skipped": 2,
        "scheduled_for": None,
        "state": BroadcastState.SCHEDULED,
        "created": True,
    }
    assert world.store.broadcasts.skipped_reasons(reply["id"]) == {"opted_out": 1, "inactive": 1}
    campaign = world.store.campaigns.get(world.store.broadcasts.get(reply["id"])["campaign_id"])
    assert (campaign["kind"], campaign["name"]) == ("bulk", "Hello")


def test_the_audience_follows_the_subscription_to_the_broadcasts_own_short_code(
    world: World,
) -> None:
    """Issue 11: a profile that sent STOP to one short code is skipped by a broadcast from that
    short code and still reached from another; ``subscribed_to`` picks either set."""
    ids = _profiles(world, 3, school="Lincoln")
    world.store.subscriptions.set_one(ids[0], SC, False)  # STOP to 55123 only
    world.store.subscriptions.set_one(ids[1], "55999", False)  # STOP to the other one
    bs = world.services.broadcasts
    audience = bs.audience(conditions=bs.parse_where(["school=Lincoln"]))
    here = bs.create("Hi", short_code=SC, audience=audience, name="Here")
    there = bs.create("Hi", short_code="55999", audience=audience, name="There")
    assert (here["recipients"], here["skipped"]) == (2, 1)
    assert (there["recipients"], there["skipped"]) == (2, 1)
    au = world.store.audiences

    def ids_of(text: str) -> set[int]:
        return {r["id"] for r in au.preview(Definition((parse_condition(text),), "all")).sample}

    assert ids_of(f"subscribed_to = {SC}") == {ids[1], ids[2]}
    assert ids_of(f"subscribed_to != {SC}") == {ids[0]}
    assert ids_of("subscribed_to != 55999") == {ids[1]}


def test_a_broadcast_reaches_its_audience_expanded_at_bulk_priority(feeding: World) -> None:
    w = feeding
    w.up("a", "b")
    ids = _profiles(w, 30, school="Lincoln")
    bs = w.services.broadcasts
    bid = bs.create(
        "Hi {first_name} of {school}",
        short_code=SC,
        audience=bs.audience(conditions=bs.parse_where(["school=Lincoln"])),
    )["id"]
    _wait(w, lambda: _status(w, bid)["state"] == BroadcastState.DONE)
    st = _status(w, bid)
    assert (st["recipients"], st["sent"], st["queued"], st["failed"]) == (30, 30, 0, 0)
    rows = w.store.broadcasts.recipients_page(bid, limit=100)
    assert {r["profile_id"] for r in rows} == set(ids)
    assert all(r["state"] == RecipientState.QUEUED for r in rows)
    first = w.store.messages.get(rows[0]["message_id"])
    assert first["body"] == "Hi Pat0 of Lincoln"
    assert first["priority"] == PRIORITY_BULK and first["broadcast_id"] == bid
    assert len(w.links["a"].sent) + len(w.links["b"].sent) == 30


def test_a_broadcast_that_ends_records_its_completed_webhook_event(feeding: World) -> None:
    """Issue 12: a webhook of the short code that wants "broadcast" events gets one
    ``broadcast.completed`` with the final counts, recorded in the transaction that ends the
    broadcast; a cancelled one gets its own with ``state: cancelled``; another short code's
    webhook gets nothing."""
    w = feeding
    hooks = w.store.webhooks
    mine = hooks.add(SC, "http://127.0.0.1:9/mine", "s" * 32, ["broadcast"])
    other = hooks.add("55999", "http://127.0.0.1:9/other", "t" * 32, ["broadcast"])
    w.up("a")
    ids = _profiles(w, 4, school="Lincoln")
    w.store.profiles.update(ids[0], subscribed=False)
    bs = w.services.broadcasts
    audience = bs.audience(conditions=bs.parse_where(["school=Lincoln"]))
    bid = bs.create("Hi", short_code=SC, audience=audience, name="Done one")["id"]
    _wait(w, lambda: _status(w, bid)["state"] == BroadcastState.DONE)
    events = hooks.next_pending(mine.id)
    assert [e.type for e in events] == ["broadcast.completed"]
    data = json.loads(events[0].payload)
    assert (data["broadcast_id"], data["state"], data["name"]) == (bid, "done", "Done one")
    assert (data["recipients"], data["sent"], data["skipped"], data["failed"]) == (3, 3, 1, 0)
    later = bs.create("Later", short_code=SC, audience=audience, at="2030-01-01T09:00")["id"]
    bs.cancel(later)
    events = [json.loads(d.payload) for d in hooks.next_pending(mine.id)]
    assert [(e["broadcast_id"], e["state"]) for e in events] == [
        (bid, "done"),
        (later, "cancelled"),
    ]
    assert hooks.next_pending(other.id) == []


def test_the_queue_holds_one_window_of_a_broadcast_and_chat_goes_first(tmp_path) -> None:
    w = World(tmp_path)  # modems down: nothing leaves, the queue shows what the feeder put in
    try:
        ids = _profiles(w, 200)
        bs = w.services.broadcasts
        bid = bs.create("Bulk", short_code=SC, audience=bs.audience(conditions=[]))["id"]
        bs.feed_once()
        bs.feed_once()
        window = bs.window(SC)
        assert w.store.messages.queued_count() == window < 200
        assert _status(w, bid)["queued"] == 200
        chat = w.outbox.submit("a reply", profile_id=ids[150], short_code=SC)
        due = w.store.messages.due(datetime.now(UTC).isoformat(), limit=1)
        assert due[0]["id"] == chat.message_id  # priority 0 before every bulk message
    finally:
        w.close()


def test_pause_takes_back_what_no_modem_took_resume_goes_on_cancel_stops(tmp_path) -> None:
    w = World(tmp_path)
    try:
        _profiles(w, 50)
        bs = w.services.broadcasts
        bid = bs.create("Bulk", short_code=SC, audience=bs.audience(conditions=[]))["id"]
        bs.feed_once()
        assert w.store.messages.queued_count() > 0
        st = bs.pause(bid)
        assert st["state"] == BroadcastState.PAUSED and st["queued"] == 50
        assert w.store.messages.queued_count() == 0  # taken back, not failed
        bs.feed_once()
        assert w.store.messages.queued_count() == 0  # a paused broadcast is not fed
        with pytest.raises(SendRefused, match="cannot be paused"):
            bs.pause(bid)
        assert bs.resume(bid)["state"] == BroadcastState.SENDING
        bs.feed_once()
        queued = w.store.messages.queued_count()
        assert queued > 0
        # One message is with a modem already: a cancel leaves it, and everything else goes.
        taken = w.store.messages.due(datetime.now(UTC).isoformat(), limit=1)[0]["id"]
        assert w.store.messages.claim(taken, "a")
        st = bs.cancel(bid)
        assert st["state"] == BroadcastState.CANCELLED
        assert (st["cancelled"], st["queued"]) == (49, 1)
        assert w.store.messages.get(taken)["status"] == MessageStatus.SENDING
        assert w.store.messages.queued_count() == 0
        with pytest.raises(SendRefused, match="cancelled, not paused"):
            bs.resume(bid)
    finally:
        w.close()


def test_a_scheduled_broadcast_waits_for_its_time_in_its_zone(tmp_path) -> None:
    clock = Clock()
    w = World(tmp_path, clock=clock)
    try:
        _profiles(w, 3)
        bs = w.services.broadcasts
        reply = bs.create(
            "Later",
            short_code=SC,
            audience=bs.audience(conditions=[]),
            at="2026-12-03T09:00",
            timezone="America/New_York",  # 14:00 UTC, two hours after the clock
        )
        assert reply["scheduled_for"] == "2026-12-03T14:00:00.000000+00:00"
        wait = bs.feed_once()
        assert wait == pytest.approx(7200)
        assert w.store.messages.queued_count() == 0
        clock.at += timedelta(hours=2)
        bs.feed_once()
        assert _status(w, reply["id"])["state"] == BroadcastState.SENDING
        assert w.store.messages.queued_count() == 3
        with pytest.raises(SendRefused, match="in the past"):
            bs.create(
                "x", short_code=SC, audience=bs.audience(conditions=[]), at="2020-01-01T00:00"
            )
    finally:
        w.close()


def test_per_recipient_time_zone_sends_at_each_ones_wall_clock_time(tmp_path) -> None:
    clock = Clock()
    w = World(tmp_path, clock=clock)
    try:
        ny = w.store.profiles.add("+15550400001", "NY", custom={"timezone": "America/New_York"})
        la = w.store.profiles.add("+15550400002", "LA", custom={"timezone": "America/Los_Angeles"})
        other = w.store.profiles.add("+15550400003", "UTC", custom={"timezone": "Mars/Base"})
        bs = w.services.broadcasts
        bid = bs.create(
            "Morning",
            short_code=SC,
            audience=bs.audience(conditions=[]),
            at="2026-12-04T09:00",
            timezone="UTC",
            per_recipient_tz=True,
        )["id"]
        rows = {r["profile_id"]: r["send_at"] for r in w.store.broadcasts.recipients_page(bid)}
        assert rows[ny] == "2026-12-04T14:00:00.000000+00:00"
        assert rows[la] == "2026-12-04T17:00:00.000000+00:00"
        assert rows[other] == "2026-12-04T09:00:00.000000+00:00"  # an unknown zone: the broadcast's
        clock.at = datetime(2026, 12, 4, 14, 0, 1, tzinfo=UTC)
        wait = bs.feed_once()
        assert w.store.messages.queued_count() == 2  # UTC and New York, not yet Los Angeles
        assert wait == pytest.approx(3 * 3600 - 1)
    finally:
        w.close()


# -- text ----------------------------------------------------------------------------------


def test_merge_fields_and_the_longest_expansion_over_the_audience(world: World) -> None:
    s = world.store
    s.profiles.add("+15550500001", "Al", custom={"school": "A"})
    s.profiles.add("+15550500002", "Bo", custom={"school": "B" * 150})
    s.profiles.add("+15550500003", "Cé", custom={"school": "Zoë"})
    bs = world.services.broadcasts
    assert merge_fields("{first_name} {school} {first_name}") == ["first_name", "school"]
    everyone = bs.audience(conditions=[])
    longest = bs.longest("Hi {first_name} from {school}", everyone)
    assert longest.analysis.parts == 2  # 150 B's: the longest, though most are short
    only_short = bs.audience(conditions=bs.parse_where(["school in A,Zoë"]))
    assert bs.longest("Hi {first_name} from {school}", only_short).analysis.parts == 1
    with pytest.raises(SendRefused, match=r"Unknown merge field \{grade\}"):
        bs.check_body("Hi {grade}")
    too_long = "{school}" * 12
    with pytest.raises(SendRefused, match="longest expansion"):
        bs.create(too_long, short_code=SC, audience=everyone)
    row = {"name": " Ann  Lee", "phone": "+1555", "custom": '{"grade": 3}'}
    assert expand("{first_name}/{name}/{grade}/{missing}", row) == "Ann/Ann  Lee/3/"


def test_a_test_send_fills_the_fields_from_that_numbers_profile(world: World) -> None:
    world.store.profiles.add("+15550600001", "Tess Tester", custom={"school": "Hill"})
    bs = world.services.broadcasts
    reply = bs.send_test("Hi {first_name} at {school}", to="+1 555 060 0001", short_code=SC)
    msg = world.store.messages.get(reply["id"])
    assert msg["body"] == "Hi Tess at Hill" and msg["priority"] == 0
    assert msg["broadcast_id"] is None


# -- replies and the schema ----------------------------------------------------------------


def test_a_reply_is_marked_with_the_broadcast_it_answers(feeding: World) -> None:
    w = feeding
    w.up("a", "b")
    pid = _profiles(w, 1)[0]
    bs = w.services.broadcasts
    bid = bs.create("Poll: Y or N?", short_code=SC, audience=bs.audience(conditions=[]))["id"]
    _wait(w, lambda: _status(w, bid)["state"] == BroadcastState.DONE)
    reply = w.store.messages.add_inbound(
        profile_id=pid,
        phone="+15550200000",
        short_code=SC,
        modem_id="a",
        body="Y",
        encoding="gsm7",
        parts_total=1,
        status=MessageStatus.RECEIVED,
        kind="reply",
        received_at=datetime.now(UTC).isoformat(),
        agent_state=None,
    )
    other = w.store.messages.get(reply)
    marked = w.store.broadcasts.replied_to([other])
    assert marked[reply]["id"] == bid
    w.outbox.submit("thanks", profile_id=pid, short_code=SC)  # a one-to-one text after it
    later = w.store.messages.get(
        w.store.messages.add_inbound(
            profile_id=pid,
            phone="+15550200000",
            short_code=SC,
            modem_id="a",
            body="ok",
            encoding="gsm7",
            parts_total=1,
            status=MessageStatus.RECEIVED,
            kind="reply",
            received_at=datetime.now(UTC).isoformat(),
            agent_state=None,
        )
    )
    assert w.store.broadcasts.replied_to([later]) == {}


def test_the_schema_refuses_a_state_or_move_the_tables_forbid(world: World) -> None:
    _profiles(world, 1)
    bs = world.services.broadcasts
    bid = bs.create("x", short_code=SC, audience=bs.audience(conditions=[]))["id"]
    with (
        pytest.raises(sqlite3.IntegrityError, match="scheduled it may become"),
        world.store.db.tx() as c,
    ):
        c.execute("UPDATE broadcasts SET state = 'done' WHERE id = ?", (bid,))
    with pytest.raises(sqlite3.IntegrityError), world.store.db.tx() as c:
        c.execute("UPDATE broadcast_recipients SET state = 'bogus'")
    world.outbox.submit("hi", to="+15550200000", short_code=SC)
    assert world.store.db.check() is None  # the new tables pass the store's start-up check


def test_the_service_is_built_once_with_the_others(world: World) -> None:
    assert isinstance(world.services.broadcasts, BroadcastService)


def test_a_landline_or_a_text_grown_too_long_is_skipped_and_counted_when_fed(tmp_path) -> None:
    w = World(tmp_path)
    try:
        ok = w.store.profiles.add("+15550800001", "Ok", custom={"club": "Chess"})
        landline = w.store.profiles.add("+442079460000", "Office", custom={"club": "Chess"})
        grows = w.store.profiles.add("+15550800003", "Grows", custom={"club": "Go"})
        bs = w.services.broadcasts
        bid = bs.create("{club}", short_code=SC, audience=bs.audience(conditions=[]))["id"]
        assert _status(w, bid)["recipients"] == 3
        w.store.profiles.update(grows, custom={"club": "x" * 2000})  # after it was made
        bs.feed_once()
        st = _status(w, bid)
        assert (st["recipients"], st["skipped"], st["queued"]) == (1, 2, 1)
        assert w.store.broadcasts.skipped_reasons(bid) == {"not_mobile": 1, "too_long": 1}
        rows = {r["profile_id"]: r for r in w.store.broadcasts.recipients_page(bid)}
        assert rows[ok]["state"] == RecipientState.QUEUED
        assert rows[landline]["state"] == RecipientState.SKIPPED
    finally:
        w.close()


def test_the_control_ops_refuse_bad_requests_with_the_field(world: World) -> None:
    ops = world.services.broadcasts.control_ops()
    assert ops["broadcast.create"](
        {"text": "x", "short_code": "55123", "where": ["status=active"], "timezone": 3}
    ) == {
        "ok": False,
        "field": "timezone",
        "error": "timezone must be a string",
    }
    bad = ops["broadcast.create"]({"text": "x", "short_code": "55123", "where": "school=x"})
    assert bad["field"] == "where"
    bad = ops["broadcast.create"]({"text": "x", "short_code": "55123", "where": ["school"]})
    assert bad["ok"] is False and bad["field"] == "where" and "cannot read" in bad["error"]
    bad = ops["broadcast.create"]({"text": "x", "short_code": "nope", "where": ["status=active"]})
    assert bad["field"] == "short_code" and "There is no short code" in bad["error"]
    bad = ops["broadcast.create"](
        {"text": "x", "short_code": "55123", "where": ["status=active"], "at": "soon"}
    )
    assert bad["field"] == "at"
    bad = ops["broadcast.create"](
        {"text": "x", "short_code": "55123", "where": ["status=active"], "timezone": "Mars/Base"}
    )
    assert bad["field"] == "timezone"
    assert ops["broadcast.status"]({"id": "x"})["field"] == "id"
    assert ops["broadcast.pause"]({"id": 99})["error"] == "no broadcast with id 99"


def test_the_same_form_posted_twice_makes_one_broadcast(world: World) -> None:
    _profiles(world, 2)
    bs = world.services.broadcasts
    first = bs.create("x", short_code=SC, audience=bs.audience(conditions=[]), request_key="k1")
    again = bs.create("x", short_code=SC, audience=bs.audience(conditions=[]), request_key="k1")
    assert first["created"] and not again["created"] and again["id"] == first["id"]
    other = bs.create("x", short_code=SC, audience=bs.audience(conditions=[]), request_key="k2")
    assert other["id"] != first["id"]


def test_retention_leaves_a_finished_broadcasts_counts_as_they_ended(feeding: World) -> None:
    w = feeding
    w.up("a", "b")
    _profiles(w, 5)
    bs = w.services.broadcasts
    bid = bs.create("Old news", short_code=SC, audience=bs.audience(conditions=[]))["id"]
    _wait(w, lambda: _status(w, bid)["state"] == BroadcastState.DONE)
    before = _status(w, bid)
    removed = w.store.purge(messages_before="9999-12-31", raw_pdus_before=None)
    assert removed["messages"] == 5
    assert _status(w, bid) == before and before["sent"] == 5
