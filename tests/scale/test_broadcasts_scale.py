"""Segments and broadcasts at scale (issue 11): a segment's count and sample, over indexed
columns and over JSON custom fields, and creating a broadcast to every profile, on the store of
tests/scale/fill.py (2,000 profiles normally; 100,000 profiles and 1,000,000 messages with
``--long``, where the times asserted are the issue's). Query plans are asserted where an index
serves the condition; the JSON custom fields are read row by row, and their time is measured.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from gateway.config import parse_config
from gateway.services import build_services
from gateway.store import Store
from gateway.store.audiences import Definition, parse_condition
from gateway.store.states import BroadcastState

from .fill import SHORT_CODES, Shape, fill
from .harness import config_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shape(request: pytest.FixtureRequest) -> Shape:
    return Shape.full() if request.config.getoption("--long") else Shape.small()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, shape: Shape) -> Iterator:
    data_dir = tmp_path_factory.mktemp("bscale")
    Store.open(data_dir).close()
    fill(data_dir / "gateway.sqlite3", shape)
    s = build_services(parse_config(config_text(data_dir)), modems=False)
    yield s
    s.close()


def _definition(*texts: str) -> Definition:
    return Definition(tuple(parse_condition(t) for t in texts))


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


@pytest.mark.parametrize(
    ("condition", "index"),
    [
        ("status = inactive", "profiles_status"),
        ("subscribed = no", "profiles_subscribed"),
        (f"short_code = {SHORT_CODES[3]}", "profile_short_codes"),
        ("last_activity within 30", "profiles_last_message"),
        ("last_activity not within 300", "profiles_last_message"),
        ("added after 2024-06-01", "profiles_created"),
    ],
)
def test_indexed_conditions_are_served_by_their_index(services, condition: str, index: str):
    plan = " | ".join(services.store.audiences.explain(_definition(condition)))
    assert index in plan, plan
    assert not re.search(r"SCAN p\b", plan), plan


@pytest.mark.parametrize(
    "conditions",
    [
        ("school = School 3",),
        ("grade in 3,4,5",),
        ("school = School 3", "grade in 3,4,5", "status = active"),
        ("name contains an",),
    ],
)
def test_a_count_over_custom_fields_answers_in_well_under_a_second(
    services, shape: Shape, conditions: tuple[str, ...], record_property
) -> None:
    preview, took = _timed(services.store.audiences.preview, _definition(*conditions))
    record_property("seconds", round(took, 3))
    print(f"\n{' AND '.join(conditions)}: {preview.count} of {shape.profiles} in {took:.3f} s")
    assert preview.count > 0 and len(preview.sample) == min(20, preview.count)
    assert took < 0.5


def test_creating_a_broadcast_to_every_profile_takes_seconds(services, shape: Shape) -> None:
    bs = services.broadcasts
    code = services.config.short_codes[0].code
    reply, took = _timed(
        lambda: bs.create(
            "Hi {first_name}, school is closed Friday.",
            short_code=code,
            audience=bs.audience(conditions=[]),
        )
    )
    print(f"\nbroadcast to {shape.profiles} profiles created in {took:.2f} s: {reply}")
    assert reply["recipients"] + reply["skipped"] == shape.profiles
    assert took < 5.0
    _, took = _timed(bs.feed_once)
    print(f"first feeder pass: {took:.3f} s")
    assert took < 0.5
    status, took = _timed(bs.status, reply["id"])
    assert status["state"] == BroadcastState.SENDING and took < 0.01
    assert services.store.messages.queued_count() == bs.window(code)
    plan = " | ".join(
        r["detail"]
        for r in services.store.db.q(
            "EXPLAIN QUERY PLAN SELECT r.profile_id FROM broadcast_recipients r"
            " WHERE r.broadcast_id = ? AND r.state = 'pending' AND r.send_at <= ?"
            " ORDER BY r.send_at, r.profile_id LIMIT 10",
            (reply["id"], "9999"),
        )
    )
    assert "broadcast_recipients_pending" in plan and "TEMP B-TREE" not in plan, plan


def _statements(db, fn) -> list[str]:
    """The SELECT statements ``fn`` runs on this thread's connection (parameters filled in)."""
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    try:
        fn()
    finally:
        db.conn.set_trace_callback(None)
    return [q for q in seen if q.lstrip().upper().startswith("SELECT")]


def test_the_broadcast_pages_read_by_their_keys(services) -> None:
    """What the Broadcasts table (keyset by id), a broadcast's recipients (by its key), its
    counters (one row) and the mark of replies (the profile's own messages) really run: no
    temporary sort, no walk of a whole table or of a short code's messages."""
    store = services.store
    db = store.db
    bs = services.broadcasts
    code = services.config.short_codes[0].code
    bid = bs.create("x", short_code=code, audience=bs.audience(conditions=[]))["id"]
    inbound = db.q("SELECT * FROM messages WHERE direction = 'in' ORDER BY id DESC LIMIT 50")
    calls = [
        lambda: store.broadcasts.page(before=bid + 1, limit=51),
        lambda: store.broadcasts.recipients_page(bid, after=500, limit=51),
        lambda: bs.status(bid),
        lambda: store.broadcasts.replied_to(inbound),
    ]
    for call in calls:
        for sql in _statements(db, call):
            p = " | ".join(r["detail"] for r in db.q(f"EXPLAIN QUERY PLAN {sql}"))
            assert "TEMP B-TREE" not in p, (sql, p)
            assert not re.search(r"SCAN (messages|profiles|broadcast_recipients|[a-z])\b", p), (
                sql,
                p,
            )
            assert "messages_short_code" not in p, (sql, p)
    bs.cancel(bid)
